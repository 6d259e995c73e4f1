import { bitStringBytes, cursor, type DerReason, parseOne, Tag, type Tlv } from '../der/reader.js';
import type { AlgorithmIdentifier } from './algorithm.js';

/** What certificates and CRLs share (RFC 5280 §4.1, §5.1): signed bytes, two algorithm copies, a signature. */
export interface SignedStructure {
  readonly der: Uint8Array;
  /** The exact TBSCertificate / TBSCertList bytes the issuer signed. */
  readonly tbs: Uint8Array;
  /** The outer signatureAlgorithm (parameters included, e.g. RSASSA-PSS-params). */
  readonly signatureAlgorithm: AlgorithmIdentifier;
  /** The algorithm copy inside the signed bytes (RFC 5280 §4.1.1.2, §5.1.1.2: must equal the outer one). */
  readonly tbsSignatureAlgorithm: AlgorithmIdentifier;
  /** The signature BIT STRING's bytes (no unused-bits byte; unused bits are refused). */
  readonly signatureValue: Uint8Array;
}

/** SEQUENCE { tbs SEQUENCE, signatureAlgorithm SEQUENCE, signatureValue BIT STRING }, nothing after it. */
export function readSigned(
  der: Uint8Array,
  reason: DerReason,
): { tbs: Tlv; signatureAlgorithm: Tlv; signatureValue: Uint8Array } {
  const top = cursor(parseOne(der, reason, Tag.Sequence), reason);
  const tbs = top.next(Tag.Sequence, 'tbs');
  const signatureAlgorithm = top.next(Tag.Sequence, 'signatureAlgorithm');
  const signatureValue = bitStringBytes(top.next(Tag.BitString, 'signatureValue'), reason);
  top.end();
  return { tbs, signatureAlgorithm, signatureValue };
}
