import type { KeyObject } from 'node:crypto';
import { KeyUsage, OID } from '../formats/x509/certificate.js';
import {
  subjectPublicKeyBits as spkiBits,
  keyIdentifier as spkiKeyIdentifier,
} from '../formats/x509/key-identifier.js';
import {
  boolean,
  type Der,
  explicit,
  implicitConstructed,
  implicitPrimitive,
  integer,
  namedBits,
  octetString,
  oid,
  sequence,
  setOf,
  utf8String,
} from './der.js';

/**
 * Certificate extensions the platform CA writes (RFC 5280 §4.2; TCG EK Credential Profile for TPM Family
 * 2.0, v2.5+ §3.2 for the TPM-specific ones). Each builder returns {oid, critical, value}; `value` is the
 * extension's DER (what goes inside extnValue's OCTET STRING).
 */

export interface CertExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** Object identifiers used by the CA: the RFC 5280 ones (src/formats/x509) and the TCG ones. */
export const CA_OID = {
  ...OID,
  caIssuers: '1.3.6.1.5.5.7.48.2',
  cRLNumber: OID.crlNumber,
  cRLReason: OID.crlReason,
  /** TCG: tcg-at-tpmManufacturer, tcg-at-tpmModel, tcg-at-tpmVersion (EK profile §3.1.2). */
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
  /** TCG: tcg-at-tpmSpecification (EK profile §3.2.12, in subjectDirectoryAttributes). */
  tpmSpecification: '2.23.133.2.16',
  /** TCG: tcg-kp-EKCertificate and tcg-kp-AIKCertificate (EK profile §3.2.16; AK: TCG IWG). */
  ekCertificate: '2.23.133.8.1',
  akCertificate: '2.23.133.8.3',
} as const;

/** The encoded Extension SEQUENCE { extnID, critical DEFAULT FALSE, extnValue }. */
export function encodeExtension(e: CertExtension): Der {
  return e.critical
    ? sequence(oid(e.oid), boolean(true), octetString(e.value))
    : sequence(oid(e.oid), octetString(e.value));
}

/** basicConstraints (§4.2.1.9): critical; cA TRUE with an optional pathLen, or empty for an end entity. */
export function basicConstraints(ca: boolean, pathLen?: number): CertExtension {
  const items: Der[] = [];
  if (ca) {
    items.push(boolean(true));
    if (pathLen !== undefined) items.push(integer(pathLen));
  }
  return { oid: CA_OID.basicConstraints, critical: true, value: sequence(...items) };
}

/** keyUsage (§4.2.1.3), critical. Bits per {@link KeyUsage}. */
export function keyUsage(bits: readonly number[]): CertExtension {
  return { oid: CA_OID.keyUsage, critical: true, value: namedBits(bits) };
}

export { KeyUsage };

/** extKeyUsage (§4.2.1.12). Non-critical, as in TCG and GCE EK/AK certificates. */
export function extKeyUsage(oids: readonly string[], critical = false): CertExtension {
  return { oid: CA_OID.extKeyUsage, critical, value: sequence(...oids.map(oid)) };
}

/** The subjectPublicKey BIT STRING contents of a DER SubjectPublicKeyInfo (MalformedEvidence `ca.spki`). */
export function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  return spkiBits(spki, 'ca.spki');
}

/** Key identifier per RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  return spkiKeyIdentifier(spki, 'ca.spki');
}

export function spkiOf(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: 'spki', format: 'der' }));
}

export function subjectKeyIdentifier(spki: Uint8Array): CertExtension {
  return { oid: CA_OID.subjectKeyIdentifier, critical: false, value: octetString(keyIdentifier(spki)) };
}

/** authorityKeyIdentifier with keyIdentifier [0] only (§4.2.1.1). */
export function authorityKeyIdentifier(keyId: Uint8Array): CertExtension {
  return {
    oid: CA_OID.authorityKeyIdentifier,
    critical: false,
    value: sequence(implicitPrimitive(0, keyId)),
  };
}

const uri = (u: string): Der => implicitPrimitive(6, new Uint8Array(Buffer.from(u, 'ascii')));

/** cRLDistributionPoints (§4.2.1.13): one DistributionPoint whose fullName lists the URIs. */
export function crlDistributionPoints(uris: readonly string[]): CertExtension {
  const fullName = implicitConstructed(0, ...uris.map(uri)); // DistributionPointName.fullName [0]
  const dp = sequence(explicit(0, fullName)); // DistributionPoint.distributionPoint [0]
  return { oid: CA_OID.crlDistributionPoints, critical: false, value: sequence(dp) };
}

/** authorityInfoAccess (§4.2.2.1) with one caIssuers URI. */
export function authorityInfoAccess(caIssuersUri: string): CertExtension {
  return {
    oid: CA_OID.authorityInfoAccess,
    critical: false,
    value: sequence(sequence(oid(CA_OID.caIssuers), uri(caIssuersUri))),
  };
}

/** What the TCG EK profile puts in the SAN directoryName (§3.1.2): values as the TPM reports them. */
export interface TpmDeviceInfo {
  /** `id:` and eight hex digits of TPM_PT_MANUFACTURER, e.g. `id:474F4F47` (GOOG). */
  readonly manufacturer: string;
  /** TPM model string, e.g. `vTPM`. */
  readonly model: string;
  /** `id:` and the firmware version in hex, e.g. `id:20160511`. */
  readonly version: string;
}

/** The TCG directoryName: three RDNs, one attribute each, UTF8String values (as in GCE and swtpm certs). */
export function tpmDirectoryName(info: TpmDeviceInfo): Der {
  const rdn = (type: string, value: string) => setOf(sequence(oid(type), utf8String(value)));
  return sequence(
    rdn(CA_OID.tpmManufacturer, info.manufacturer),
    rdn(CA_OID.tpmModel, info.model),
    rdn(CA_OID.tpmVersion, info.version),
  );
}

/**
 * subjectAltName with the TPM directoryName (GeneralName [4] EXPLICIT Name). The EK profile §3.2.9 makes it
 * critical because the subject is empty (RFC 5280 §4.2.1.6).
 */
export function tpmSubjectAltName(
  info: TpmDeviceInfo,
  critical: boolean,
  extra: readonly Der[] = [],
): CertExtension {
  return {
    oid: CA_OID.subjectAltName,
    critical,
    value: sequence(explicit(4, tpmDirectoryName(info)), ...extra),
  };
}

/** subjectAltName from encoded GeneralNames (requests), non-critical unless the subject is empty. */
export function subjectAltName(generalNames: readonly Der[], critical: boolean): CertExtension {
  return { oid: CA_OID.subjectAltName, critical, value: sequence(...generalNames) };
}

/** TPMSpecification ::= SEQUENCE { family UTF8String, level INTEGER, revision INTEGER } (EK profile §3.2.12). */
export interface TpmSpecification {
  readonly family: string;
  readonly level: number;
  readonly revision: number;
}

/** subjectDirectoryAttributes (§4.2.1.8) holding tcg-at-tpmSpecification; non-critical. */
export function tpmSpecificationAttributes(spec: TpmSpecification): CertExtension {
  const value = sequence(utf8String(spec.family), integer(spec.level), integer(spec.revision));
  const attribute = sequence(oid(CA_OID.tpmSpecification), setOf(value));
  return { oid: CA_OID.subjectDirectoryAttributes, critical: false, value: sequence(attribute) };
}

/** The Extensions SEQUENCE wrapped in [3] EXPLICIT, as TBSCertificate carries it. */
export function encodeExtensions(exts: readonly CertExtension[], tag = 3): Der {
  return explicit(tag, sequence(...exts.map(encodeExtension)));
}

/** A CRL entry / CRL extension list without the context tag. */
export function extensionList(exts: readonly CertExtension[]): Der {
  return sequence(...exts.map(encodeExtension));
}
