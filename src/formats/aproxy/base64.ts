import { MalformedEvidence } from '../../errors.js';

/**
 * Standard base64 (RFC 4648 §4) with padding, decoded strictly, as the Rust `base64` crate's `STANDARD`
 * engine does for libaproxy's byte fields: only `A-Z a-z 0-9 + /`, length a multiple of 4, `=` padding
 * only at the end, and the unused bits of the last symbol zero (so every byte string has exactly one
 * encoding). The url-safe alphabet, missing padding and whitespace are all rejected.
 */
const STRICT_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes one byte field. Throws MalformedEvidence `aproxy.base64` naming the field; never returns partial
 * output (Buffer.from(s, 'base64') silently skips bad characters, so it is only used after the check).
 */
export function decodeBase64Std(s: string, field: string): Uint8Array {
  if (!STRICT_B64.test(s)) {
    throw new MalformedEvidence('aproxy.base64', `${field}: not canonical standard base64 with padding`);
  }
  const out = Buffer.from(s, 'base64');
  // Canonical form: non-zero trailing bits decode to the same bytes as the zero-bit form; re-encoding finds it.
  if (out.toString('base64') !== s) {
    throw new MalformedEvidence('aproxy.base64', `${field}: non-canonical base64 (trailing bits set)`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Encodes bytes as standard base64 with padding (serde + `BASE64_STANDARD`). */
export function encodeBase64Std(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/** Base64url without padding (RFC 4648 §5), as JOSE uses it. */
export function encodeBase64Url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}
