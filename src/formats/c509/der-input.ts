import { MalformedEvidence } from '../../errors.js';
import { type DerReason, parseOne, sequence, Tag, type Tlv } from '../der/reader.js';

/**
 * How the C509 converter reads DER (X.690): the project's strict reader (src/formats/der/reader.ts) with
 * C509's reasons, and a size bound on what it is given to convert.
 */

/**
 * C509's reason for each DER fault: `c509.der.truncated`, `c509.der.length`, `c509.der.indefinite_length`,
 * `c509.der.trailing_bytes`, `c509.der.structure`, `c509.der.integer`, ... and `c509.oid` for a bad OBJECT
 * IDENTIFIER.
 */
export const C509_DER: DerReason = (fault) => (fault === 'oid' ? 'c509.oid' : `c509.der.${fault}`);

/** Largest DER input converted (certificates and requests are a few KiB). */
const MAX_DER = 1 << 20;

/**
 * Parses exactly one element spanning all of `buf`. Throws MalformedEvidence `c509.der.too_large` over
 * 1 MiB, otherwise `c509.der.<fault>` (see {@link C509_DER}).
 */
export function parseDer(buf: Uint8Array): Tlv {
  if (buf.length > MAX_DER) throw new MalformedEvidence('c509.der.too_large', 'DER input too large');
  return parseOne(buf, C509_DER);
}

/**
 * Whether DER holds a PKCS#10 CertificationRequest rather than a Certificate, by its structure (RFC 2986
 * §4.1: CertificationRequestInfo is SEQUENCE { version INTEGER, subject, subjectPKInfo, [0] attributes };
 * a TBSCertificate has at least six fields, RFC 5280 §4.1). Read with the strict reader: malformed input
 * throws MalformedEvidence `c509.der.<fault>` here rather than being guessed at.
 */
export function isCertificationRequest(der: Uint8Array): boolean {
  const outer = sequence(parseDer(der), C509_DER);
  const info = sequence(outer[0], C509_DER);
  return info.length === 4 && info[0]!.tag === Tag.Integer;
}
