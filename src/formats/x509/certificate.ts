import { MalformedEvidence } from '../../errors.js';
import {
  bitString,
  booleanOf,
  Cls,
  childrenOf,
  decodeTlv,
  integerBytes,
  is,
  octets,
  oidOf,
  raw,
  seq,
  smallUnsigned,
  Tag,
  type Tlv,
  timeOf,
} from './tlv.js';

/**
 * A minimal, strict X.509 v3 certificate decoder (RFC 5280 §4.1): the fields path validation and extension
 * readers need, each as a view of the exact DER. It checks structure, not signatures or validity (that is
 * the verifier's job). Reasons: `x509.certificate` for the outer structure, `x509.extension.<name>` for a
 * malformed known extension.
 */

export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  subjectDirectoryAttributes: '2.5.29.9',
  nameConstraints: '2.5.29.30',
  policyConstraints: '2.5.29.36',
  inhibitAnyPolicy: '2.5.29.54',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
} as const;

export interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  /** extnValue's contents (the DER of the extension's own type). */
  readonly value: Uint8Array;
}

/** KeyUsage bits (RFC 5280 §4.2.1.3), bit 0 = digitalSignature. */
export const KeyUsage = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;

export interface Certificate {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  /** The outer signatureAlgorithm: its OID and full AlgorithmIdentifier DER (parameters included). */
  readonly signatureAlgorithm: { readonly oid: string; readonly der: Uint8Array };
  /** The signature BIT STRING's bytes (no unused-bits byte). */
  readonly signatureValue: Uint8Array;
  readonly version: number;
  readonly serialNumber: Uint8Array;
  /** The DER of the issuer and subject Names (compared byte-for-byte when chaining). */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly extensions: readonly Extension[];
  /** basicConstraints, when present. */
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLen?: number };
  /** keyUsage bit set (index = KeyUsage value), when present. */
  readonly keyUsage?: ReadonlySet<number>;
  readonly extKeyUsage?: readonly string[];
}

const R = 'x509.certificate';

function readExtensions(t: Tlv): Extension[] {
  const outer = childrenOf(t, `${R}.extensions`);
  const list = seq(outer[0], `${R}.extensions`);
  if (outer.length !== 1 || list.length === 0) {
    throw new MalformedEvidence(`${R}.extensions`, 'extensions must be one non-empty SEQUENCE');
  }
  const seen = new Set<string>();
  const out: Extension[] = [];
  for (const e of list) {
    const f = seq(e, `${R}.extensions`);
    const oid = oidOf(f[0], `${R}.extensions`);
    let critical = false;
    let i = 1;
    if (is(f[1], Cls.universal, Tag.boolean)) {
      critical = booleanOf(f[1], `${R}.extensions`);
      // DER: a DEFAULT value is never encoded (X.690 §11.5).
      if (!critical) throw new MalformedEvidence(`${R}.extensions`, 'critical FALSE must be omitted in DER');
      i = 2;
    }
    if (f.length !== i + 1) throw new MalformedEvidence(`${R}.extensions`, 'extension has extra fields');
    const v = octets(f[i], `${R}.extensions`);
    if (seen.has(oid))
      throw new MalformedEvidence(`${R}.duplicate_extension`, `extension ${oid} appears twice`);
    seen.add(oid);
    out.push({ oid, critical, value: v });
  }
  return out;
}

function readBasicConstraints(v: Uint8Array): { ca: boolean; pathLen?: number } {
  const reason = 'x509.extension.basic_constraints';
  const f = seq(decodeTlv(v, reason), reason);
  let i = 0;
  let ca = false;
  if (is(f[i], Cls.universal, Tag.boolean)) {
    ca = booleanOf(f[i], reason);
    if (!ca) throw new MalformedEvidence(reason, 'cA FALSE must be omitted in DER');
    i++;
  }
  let pathLen: number | undefined;
  if (i < f.length) {
    pathLen = smallUnsigned(f[i], reason, 255);
    i++;
  }
  if (i !== f.length) throw new MalformedEvidence(reason, 'basicConstraints has extra fields');
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

function readKeyUsage(v: Uint8Array): Set<number> {
  const reason = 'x509.extension.key_usage';
  const { bytes } = bitString(decodeTlv(v, reason), reason);
  const bits = new Set<number>();
  for (let i = 0; i < bytes.length * 8; i++) if ((bytes[i >> 3]! >> (7 - (i & 7))) & 1) bits.add(i);
  return bits;
}

function readExtKeyUsage(v: Uint8Array): string[] {
  const reason = 'x509.extension.ext_key_usage';
  const list = seq(decodeTlv(v, reason), reason);
  if (list.length === 0) throw new MalformedEvidence(reason, 'extKeyUsage is empty');
  return list.map((o) => oidOf(o, reason));
}

/**
 * Decodes a DER X.509 certificate. Throws MalformedEvidence `x509.certificate` (structure, non-DER),
 * `x509.certificate.signature_algorithm`, `x509.certificate.validity`, `.extensions`, `.duplicate_extension`, `.version`,
 * `x509.extension.basic_constraints`, `.key_usage`, `.ext_key_usage`.
 */
export function parseCertificate(der: Uint8Array): Certificate {
  const top = seq(decodeTlv(der, R), R);
  if (top.length !== 3)
    throw new MalformedEvidence(R, 'Certificate must be SEQUENCE { tbs, algorithm, signature }');
  const sigAlg = seq(top[1], R);
  const sigValue = bitString(top[2], R);
  if (sigValue.unused !== 0) throw new MalformedEvidence(R, 'signature BIT STRING has unused bits');
  const tbsNode = top[0]!;
  const tbs = seq(tbsNode, R);
  let i = 0;
  let version = 1;
  if (is(tbs[0], Cls.context, 0)) {
    const v = childrenOf(tbs[0], `${R}.version`);
    if (v.length !== 1) throw new MalformedEvidence(`${R}.version`, 'bad version field');
    version = smallUnsigned(v[0], `${R}.version`, 2) + 1;
    // DER: v1 (the DEFAULT) is never encoded explicitly.
    if (version === 1) throw new MalformedEvidence(`${R}.version`, 'explicit v1 is not DER');
    i = 1;
  }
  const serial = integerBytes(tbs[i], R);
  seq(tbs[i + 1], R);
  // RFC 5280 §4.1.1.2: the signed and the outer algorithm identifiers must be identical.
  if (Buffer.compare(raw(tbs[i + 1]!), raw(top[1]!)) !== 0) {
    throw new MalformedEvidence(
      `${R}.signature_algorithm`,
      'TBSCertificate.signature differs from signatureAlgorithm',
    );
  }
  const issuer = tbs[i + 2];
  const validity = seq(tbs[i + 3], `${R}.validity`);
  const subject = tbs[i + 4];
  const spki = tbs[i + 5];
  seq(issuer, R);
  seq(subject, R);
  seq(spki, R);
  if (validity.length !== 2) throw new MalformedEvidence(`${R}.validity`, 'validity must hold two times');
  let extensions: Extension[] = [];
  let seenExtensions = false;
  for (const extra of tbs.slice(i + 6)) {
    if (version >= 2 && !seenExtensions && (is(extra, Cls.context, 1) || is(extra, Cls.context, 2))) continue;
    if (version === 3 && !seenExtensions && is(extra, Cls.context, 3)) {
      extensions = readExtensions(extra);
      seenExtensions = true;
      continue;
    }
    throw new MalformedEvidence(R, 'unexpected field in TBSCertificate');
  }
  const find = (oid: string) => extensions.find((e) => e.oid === oid);
  const bc = find(OID.basicConstraints);
  const ku = find(OID.keyUsage);
  const eku = find(OID.extKeyUsage);
  return {
    der,
    tbs: raw(tbsNode),
    signatureAlgorithm: { oid: oidOf(sigAlg[0], R), der: raw(top[1]!) },
    signatureValue: sigValue.bytes,
    version,
    serialNumber: serial,
    issuer: raw(issuer!),
    subject: raw(subject!),
    notBefore: timeOf(validity[0], `${R}.validity`),
    notAfter: timeOf(validity[1], `${R}.validity`),
    subjectPublicKeyInfo: raw(spki!),
    extensions,
    ...(bc ? { basicConstraints: readBasicConstraints(bc.value) } : {}),
    ...(ku ? { keyUsage: readKeyUsage(ku.value) } : {}),
    ...(eku ? { extKeyUsage: readExtKeyUsage(eku.value) } : {}),
  };
}

/** The extension with `oid`, if the certificate carries it. */
export function findExtension(cert: Certificate, oid: string): Extension | undefined {
  return cert.extensions.find((e) => e.oid === oid);
}

/**
 * The SubjectAltName's GeneralName choices (RFC 5280 §4.2.1.6) as context tag numbers, e.g. [4] for a
 * directoryName. Throws MalformedEvidence `x509.extension.subject_alt_name`.
 */
export function subjectAltNameTags(ext: Extension): number[] {
  const reason = 'x509.extension.subject_alt_name';
  const names = seq(decodeTlv(ext.value, reason), reason);
  if (names.length === 0) throw new MalformedEvidence(reason, 'subjectAltName is empty');
  return names.map((g) => {
    if (g.cls !== Cls.context) throw new MalformedEvidence(reason, 'GeneralName must be context-tagged');
    return g.tag;
  });
}

/** True when a Name (RDNSequence DER) is empty, as in TCG EK/AK certificates with a critical SAN. */
export function isEmptyName(nameDer: Uint8Array): boolean {
  return nameDer.length === 2 && nameDer[0] === 0x30 && nameDer[1] === 0x00;
}
