import { MalformedEvidence } from '../../errors.js';
import {
  bitString,
  boolean,
  cursor,
  type DerReason,
  derFail,
  octetString,
  oid,
  parseOne,
  sequence,
  smallUint,
  Tag,
  type Tlv,
} from '../der/reader.js';

/** Object identifiers of the RFC 5280 extensions (§4.2, §5.2, §5.3). */
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
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  invalidityDate: '2.5.29.24',
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

/** Reasons for a malformed extension list and for a repeated extension. */
export interface ExtensionReasons {
  readonly extensions: string;
  readonly duplicateExtension: string;
}

/**
 * Reads an Extensions SEQUENCE (RFC 5280 §4.1, §5.1): each SEQUENCE { extnID, critical BOOLEAN DEFAULT
 * FALSE, extnValue OCTET STRING }, no extension twice (§4.2). `strict` also enforces SIZE (1..MAX) and DER's
 * rule that a DEFAULT value (critical FALSE) is not encoded (X.690 §11.5).
 */
export function readExtensions(list: Tlv, reasons: ExtensionReasons, strict: boolean): Extension[] {
  const r = reasons.extensions;
  const items = sequence(list, r);
  if (strict && items.length === 0) derFail(r, 'structure', 'extensions must be one non-empty SEQUENCE');
  const seen = new Set<string>();
  const out: Extension[] = [];
  for (const item of items) {
    const e = cursor(item, r, Tag.Sequence);
    const id = oid(e.next(Tag.Oid, 'extnID'), r);
    const critTlv = e.optional(Tag.Boolean);
    const critical = critTlv ? boolean(critTlv, r) : false;
    if (strict && critTlv && !critical) derFail(r, 'structure', 'critical FALSE must be omitted in DER');
    const value = octetString(e.next(Tag.OctetString, 'extnValue'), r);
    e.end();
    if (seen.has(id))
      throw new MalformedEvidence(reasons.duplicateExtension, `extension ${id} appears twice`);
    seen.add(id);
    out.push({ oid: id, critical, value });
  }
  return out;
}

/** The extension with `oid`, if the list holds it. */
export function findExtension(
  cert: { readonly extensions: readonly Extension[] },
  oid: string,
): Extension | undefined {
  return cert.extensions.find((e) => e.oid === oid);
}

export interface BasicConstraints {
  readonly ca: boolean;
  readonly pathLen?: number;
}

/**
 * basicConstraints (RFC 5280 §4.2.1.9). `strict` refuses an encoded cA FALSE (DER's DEFAULT rule); the SNP
 * verifier reads AMD certificates without it and reports such a CA as "not a CA". Throws MalformedEvidence.
 */
export function readBasicConstraints(
  value: Uint8Array,
  strict = true,
  reason: DerReason = 'x509.extension.basic_constraints',
): BasicConstraints {
  const s = cursor(parseOne(value, reason, Tag.Sequence), reason);
  const caTlv = s.optional(Tag.Boolean);
  const ca = caTlv ? boolean(caTlv, reason) : false;
  if (strict && caTlv && !ca) derFail(reason, 'structure', 'cA FALSE must be omitted in DER');
  const pl = s.optional(Tag.Integer);
  s.end();
  return pl ? { ca, pathLen: smallUint(pl, reason, 255) } : { ca };
}

/**
 * keyUsage (RFC 5280 §4.2.1.3) as the set of bits set (see {@link KeyUsage}). Every bit of the octets is
 * read, the unused trailing ones too (DER requires them zero; both verifiers have always read them).
 * Throws MalformedEvidence.
 */
export function readKeyUsage(value: Uint8Array, reason: DerReason = 'x509.extension.key_usage'): Set<number> {
  const { bytes } = bitString(parseOne(value, reason, Tag.BitString), reason);
  const bits = new Set<number>();
  for (let i = 0; i < bytes.length * 8; i++) if ((bytes[i >> 3]! >> (7 - (i & 7))) & 1) bits.add(i);
  return bits;
}

/** extKeyUsage (RFC 5280 §4.2.1.12): the key purpose OIDs (at least one). Throws MalformedEvidence. */
export function readExtKeyUsage(
  value: Uint8Array,
  reason: DerReason = 'x509.extension.ext_key_usage',
): string[] {
  const list = sequence(parseOne(value, reason), reason);
  if (list.length === 0) derFail(reason, 'structure', 'extKeyUsage is empty');
  return list.map((o) => oid(o, reason));
}

/**
 * The SubjectAltName's GeneralName choices (RFC 5280 §4.2.1.6) as context tag numbers, e.g. [4] for a
 * directoryName. Throws MalformedEvidence `x509.extension.subject_alt_name`.
 */
export function subjectAltNameTags(ext: Extension): number[] {
  const reason = 'x509.extension.subject_alt_name';
  const names = sequence(parseOne(ext.value, reason), reason);
  if (names.length === 0) derFail(reason, 'structure', 'subjectAltName is empty');
  return names.map((g) => {
    if ((g.tag & 0xc0) !== 0x80) derFail(reason, 'structure', 'GeneralName must be context-tagged');
    return g.tag & 0x1f;
  });
}
