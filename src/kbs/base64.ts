import { MalformedEvidence } from '../errors.js';

/**
 * Strict base64 decoders for RCAR fields. Buffer.from(s, 'base64') skips bad characters silently, so the
 * alphabet and padding are checked first and the result re-encoded to reject non-canonical trailing bits.
 */

const STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const URL = /^[A-Za-z0-9_-]*$/;

/** Standard base64 with padding (RFC 4648 §4), canonical. Throws MalformedEvidence `reason`. */
export function decodeStdBase64(s: unknown, reason: string, field: string): Uint8Array {
  if (typeof s !== 'string' || !STD.test(s)) {
    throw new MalformedEvidence(reason, `${field}: not standard base64 with padding`);
  }
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw new MalformedEvidence(reason, `${field}: non-canonical base64`);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Base64url without padding (RFC 4648 §5, as JOSE uses it), canonical. Throws MalformedEvidence `reason`. */
export function decodeBase64Url(s: unknown, reason: string, field: string): Uint8Array {
  if (typeof s !== 'string' || !URL.test(s) || s.length % 4 === 1) {
    throw new MalformedEvidence(reason, `${field}: not base64url without padding`);
  }
  const b = Buffer.from(s, 'base64url');
  if (b.toString('base64url') !== s) throw new MalformedEvidence(reason, `${field}: non-canonical base64url`);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export const encodeStdBase64 = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

export const encodeBase64Url = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
