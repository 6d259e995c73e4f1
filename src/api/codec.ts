import { MalformedEvidence } from '../errors.js';
import { decodeBase64Std, encodeBase64Std } from '../formats/aproxy/base64.js';

/**
 * Request/response encoding of the /v1 API: byte fields are standard base64 with padding (decoded
 * strictly: canonical form only), counters decimal strings, HOST_DATA hex. Throws MalformedEvidence
 * `api.base64`, `api.counter`.
 */
export function b64(s: string, field: string): Uint8Array {
  try {
    return decodeBase64Std(s, field);
  } catch {
    throw new MalformedEvidence('api.base64', `${field}: not canonical standard base64`);
  }
}

export const toB64 = encodeBase64Std;

export function counter(s: string, field: string): bigint {
  if (!/^(?:0|[1-9][0-9]{0,19})$/.test(s))
    throw new MalformedEvidence('api.counter', `${field}: not a decimal counter`);
  return BigInt(s);
}
