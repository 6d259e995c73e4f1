import { MalformedEvidence } from '../errors.js';

/**
 * The one base64 module: strict decoders for standard base64 (RFC 4648 §4, padded) and base64url
 * (RFC 4648 §5, unpadded, as JOSE uses it), and their encoders.
 *
 * Why strict: Buffer.from(s, 'base64') silently skips characters outside the alphabet, accepts either
 * alphabet, missing padding and whitespace, and ignores set trailing bits, so one byte string would have
 * many accepted spellings. The decoders here check the alphabet and padding first and then re-encode the
 * result, so exactly one spelling (the canonical one, as the Rust `base64` crate's strict engines and
 * Trustee's serializers produce) is accepted for each byte string. A failure never returns partial output.
 *
 * Each caller names its own error `reason` (the stable code its tests assert, e.g. `aproxy.base64`,
 * `kbs.evidence.base64`) and the `field` that appears in the message.
 */

/** Standard alphabet, length a multiple of 4, `=` padding only at the end. */
const STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** URL-safe alphabet, no padding. A length of 1 mod 4 cannot hold whole bytes. */
const URL_SAFE = /^[A-Za-z0-9_-]*$/;

/**
 * The decoded bytes in an ArrayBuffer of their own: Buffer.from(string) may place small results in Node's
 * shared allocation pool, and a view of it would expose other data through `.buffer`.
 */
const own = (b: Buffer): Uint8Array => new Uint8Array(b);

/**
 * Decodes canonical standard base64 with padding (RFC 4648 §4). The empty string decodes to no bytes.
 * Throws MalformedEvidence `reason` when `s` is not a string, uses another alphabet, lacks padding, or has
 * set trailing bits (non-canonical).
 */
export function decodeBase64(s: unknown, reason: string, field: string): Uint8Array {
  if (typeof s !== 'string' || !STD.test(s)) {
    throw new MalformedEvidence(reason, `${field}: not standard base64 with padding`);
  }
  const b = Buffer.from(s, 'base64');
  // Set trailing bits decode to the same bytes as the zero-bit spelling; re-encoding finds them.
  if (b.toString('base64') !== s) throw new MalformedEvidence(reason, `${field}: non-canonical base64`);
  return own(b);
}

/**
 * Decodes canonical base64url without padding (RFC 4648 §5, RFC 7515 §2 "Base64url Encoding"). The empty
 * string decodes to no bytes. Throws MalformedEvidence `reason` when `s` is not a string, holds `=`, `+`,
 * `/` or any other character outside the URL-safe alphabet, has a length of 1 mod 4, or has set trailing
 * bits (non-canonical).
 */
export function decodeBase64Url(s: unknown, reason: string, field: string): Uint8Array {
  if (typeof s !== 'string' || !URL_SAFE.test(s) || s.length % 4 === 1) {
    throw new MalformedEvidence(reason, `${field}: not base64url without padding`);
  }
  const b = Buffer.from(s, 'base64url');
  if (b.toString('base64url') !== s) throw new MalformedEvidence(reason, `${field}: non-canonical base64url`);
  return own(b);
}

/** Encodes bytes as standard base64 with padding (RFC 4648 §4). */
export function encodeBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/** Encodes bytes as base64url without padding (RFC 4648 §5), as JOSE uses it. */
export function encodeBase64Url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}
