import { ErrorCode, InvalidArgument, MalformedEvidence } from '../../errors.js';
import { encodeJson } from './encode.js';
import { LIMITS } from './fields.js';
import { expectBool, expectBoundedString, expectObject, type JsonValue, parseJson } from './json.js';
import type { ErrorReply } from './types.js';

/**
 * 0.2.0 ErrorReply (proxy -> guest, in place of any reply): `{"success":false,"error":{"code":C,
 * "reason":R,"message":M}}`. `code` is one of the ErrorCode values (src/errors.ts), `reason` a stable dotted
 * lower-case reason, `message` human text that carries no secrets. 0.1.0 has no error message: the proxy
 * drops the connection or answers `{"success":false,...}` as aproxy does (docs/protocol.md).
 */
const CODES: readonly string[] = Object.values(ErrorCode);
const REASON = /^[a-z0-9_]+(?:\.[a-z0-9_]+)*$/;

export function parseErrorReply(v: JsonValue | Uint8Array): ErrorReply {
  const o = expectObject(v instanceof Uint8Array ? parseJson(v) : v, 'ErrorReply', ['success', 'error']);
  if (expectBool(o.get('success'), 'success') !== false) {
    throw new MalformedEvidence('aproxy.field.value', 'ErrorReply: success must be false');
  }
  const e = expectObject(o.get('error'), 'error', ['code', 'reason', 'message']);
  const code = expectBoundedString(e.get('code'), 'error.code', 1, 64);
  if (!CODES.includes(code)) throw new MalformedEvidence('aproxy.field.value', 'error.code: unknown code');
  const reason = expectBoundedString(e.get('reason'), 'error.reason', ...LIMITS.errorReason);
  if (!REASON.test(reason))
    throw new MalformedEvidence('aproxy.field.value', 'error.reason: not a dotted reason');
  const message = expectBoundedString(e.get('message'), 'error.message', ...LIMITS.errorMessage);
  return { success: false, error: { code, reason, message } };
}

/** Encodes an ErrorReply; an unknown code or a malformed reason is a programming error (InvalidArgument). */
export function encodeErrorReply(error: { code: string; reason: string; message: string }): Uint8Array {
  if (!CODES.includes(error.code))
    throw new InvalidArgument('aproxy.encode.code', `unknown code ${error.code}`);
  if (!REASON.test(error.reason) || error.reason.length > LIMITS.errorReason[1]) {
    throw new InvalidArgument('aproxy.encode.reason', 'reason must be dotted lower case, at most 128 bytes');
  }
  let message = error.message;
  while (Buffer.byteLength(message, 'utf8') > LIMITS.errorMessage[1]) message = message.slice(0, -16);
  return encodeJson({ success: false, error: { code: error.code, reason: error.reason, message } });
}

/** True when a parsed reply is an ErrorReply. */
export function isErrorReply(r: object): r is ErrorReply {
  return 'error' in r && (r as ErrorReply).success === false;
}
