import {
  type Der,
  explicit,
  implicitPrimitive,
  integer,
  oid,
  sequence,
  setOf,
  utf8String,
} from '../formats/der/writer.js';
import { type Extension, OID } from '../formats/x509/extensions.js';

/**
 * The extensions only the platform CA writes (RFC 5280 §4.2; TCG EK Credential Profile for TPM Family 2.0,
 * v2.5+ §3.2 for the TPM-specific ones). The generic ones (basicConstraints, keyUsage, key identifiers,
 * cRLDistributionPoints, cRLNumber) and the Extension encoding are src/formats/x509/extension-builders.ts,
 * shared with the SNP simulator. Each builder returns an {@link Extension}: `value` is the extension's DER
 * (what goes inside extnValue's OCTET STRING).
 */

/** Object identifiers only the CA uses: the caIssuers access method and the TCG ones. */
export const CA_OID = {
  /** id-ad-caIssuers (RFC 5280 §4.2.2.1). */
  caIssuers: '1.3.6.1.5.5.7.48.2',
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

/** extKeyUsage (§4.2.1.12). Non-critical, as in TCG and GCE EK/AK certificates. */
export function extKeyUsage(oids: readonly string[], critical = false): Extension {
  return { oid: OID.extKeyUsage, critical, value: sequence(...oids.map((o) => oid(o))) };
}

/** authorityInfoAccess (§4.2.2.1) with one caIssuers URI (GeneralName uniformResourceIdentifier [6]). */
export function authorityInfoAccess(caIssuersUri: string): Extension {
  const uri = implicitPrimitive(6, new Uint8Array(Buffer.from(caIssuersUri, 'ascii')));
  return {
    oid: OID.authorityInfoAccess,
    critical: false,
    value: sequence(sequence(oid(CA_OID.caIssuers), uri)),
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
): Extension {
  return {
    oid: OID.subjectAltName,
    critical,
    value: sequence(explicit(4, tpmDirectoryName(info)), ...extra),
  };
}

/** TPMSpecification ::= SEQUENCE { family UTF8String, level INTEGER, revision INTEGER } (EK profile §3.2.12). */
export interface TpmSpecification {
  readonly family: string;
  readonly level: number;
  readonly revision: number;
}

/** subjectDirectoryAttributes (§4.2.1.8) holding tcg-at-tpmSpecification; non-critical. */
export function tpmSpecificationAttributes(spec: TpmSpecification): Extension {
  const value = sequence(utf8String(spec.family), integer(spec.level), integer(spec.revision));
  const attribute = sequence(oid(CA_OID.tpmSpecification), setOf(value));
  return { oid: OID.subjectDirectoryAttributes, critical: false, value: sequence(attribute) };
}
