import { createHash } from 'node:crypto';
import { bitString, cursor, parseOne, Tag } from '../der/reader.js';

/**
 * The subjectPublicKey BIT STRING contents of a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). Throws
 * MalformedEvidence `reason` (default `x509.spki`).
 */
export function subjectPublicKeyBits(spki: Uint8Array, reason = 'x509.spki'): Uint8Array {
  const s = cursor(parseOne(spki, reason, Tag.Sequence), reason);
  s.next(Tag.Sequence, 'algorithm');
  const bits = bitString(s.next(Tag.BitString, 'subjectPublicKey'), reason).bytes;
  s.end();
  return bits;
}

/** Key identifier per RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits (AMD and the CA use it). */
export function keyIdentifier(spki: Uint8Array, reason?: string): Uint8Array {
  return new Uint8Array(createHash('sha1').update(subjectPublicKeyBits(spki, reason)).digest());
}
