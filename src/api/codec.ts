import { MalformedEvidence } from '../errors.js';

/**
 * Request encoding of the /v1 API that is not base64: counters are decimal strings. (Byte fields are
 * standard base64 with padding, decoded strictly by src/util/base64.ts with reason `api.base64`.) Throws
 * MalformedEvidence `api.counter`.
 */
export function counter(s: string, field: string): bigint {
  if (!/^(?:0|[1-9][0-9]{0,19})$/.test(s))
    throw new MalformedEvidence('api.counter', `${field}: not a decimal counter`);
  return BigInt(s);
}
