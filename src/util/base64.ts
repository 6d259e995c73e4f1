import { MalformedEvidence } from '../errors.js';

/**
 * The one base64 module: strict decoders for standard base64 (RFC 4648 §4, padded) and base64url
 * (RFC 4648 §5, unpadded, as JOSE uses it), and their encoders.
 *
 * Why strict: Buffer.from(s, 'base64') silently skips characters outside the alphabet, accepts either
 * alphabet, missing padding and whitespace, and ignores set trailing bits, so one byte string would have
 * many accepted spellings. The decoders here decode leniently, re-encode, and accept the input only when it
 * is that re-encoding (Buffer's encoder writes the one canonical spelling), so exactly one spelling (the
 * canonical one, as the Rust `base64` crate's strict engines and Trustee's serializers produce) is accepted
 * for each byte string. A failure never returns partial output. (Until 2026-12-07 a pattern check ran
 * first; it refused nothing the comparison does not, and cost more than the decoding on the hot path.)
 *
 * Each caller names its own error `reason` (the stable code its tests assert, e.g. `aproxy.base64`,
 * `kbs.evidence.base64`) and the `field` that appears in the message.
 */

/** Standard alphabet, length a multiple of 4, `=` padding only at the end (for the refusal's message). */
const STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** URL-safe alphabet, no padding; a length of 1 mod 4 cannot hold whole bytes (for the refusal's message). */
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
  if (typeof s !== 'string') throw notStandard(reason, field);
  const b = Buffer.from(s, 'base64');
  // The re-encoding is the one canonical spelling of the bytes, so comparing with it alone refuses
  // everything the lenient decoder let through (see the module comment); the pattern only picks the message.
  if (b.toString('base64') !== s) {
    if (!STD.test(s)) throw notStandard(reason, field);
    throw new MalformedEvidence(reason, `${field}: non-canonical base64`);
  }
  return own(b);
}

const notStandard = (reason: string, field: string) =>
  new MalformedEvidence(reason, `${field}: not standard base64 with padding`);

/**
 * Decodes canonical base64url without padding (RFC 4648 §5, RFC 7515 §2 "Base64url Encoding"). The empty
 * string decodes to no bytes. Throws MalformedEvidence `reason` when `s` is not a string, holds `=`, `+`,
 * `/` or any other character outside the URL-safe alphabet, has a length of 1 mod 4, or has set trailing
 * bits (non-canonical).
 */
export function decodeBase64Url(s: unknown, reason: string, field: string): Uint8Array {
  const b = typeof s === 'string' ? Buffer.from(s, 'base64url') : undefined;
  // As decodeBase64: the canonical re-encoding decides, the pattern only picks the message.
  if (b === undefined || b.toString('base64url') !== s) {
    if (typeof s !== 'string' || !URL_SAFE.test(s) || s.length % 4 === 1) {
      throw new MalformedEvidence(reason, `${field}: not base64url without padding`);
    }
    throw new MalformedEvidence(reason, `${field}: non-canonical base64url`);
  }
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
