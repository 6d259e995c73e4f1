import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { encodeBase64 } from '../../util/base64.js';
import { encodeJson } from './encode.js';
import { parseErrorReply } from './error-reply.js';
import {
  bytesField,
  checkLength,
  expectBoundedString,
  formatCounter,
  LIMITS,
  parseCounter,
} from './fields.js';
import { expectBool, expectObject, parseJson } from './json.js';
import {
  type CommitRequest,
  type CommitResponse,
  type ErrorReply,
  P384_SIGNATURE_SIZE,
  STATE_DIGEST_SIZE,
} from './types.js';

/** Boot ids are opaque broker-chosen strings; this keeps them printable and log-safe. */
const BOOT_ID = /^[A-Za-z0-9._:-]+$/;

/**
 * 0.2.0 Commit (guest -> proxy -> backend), sent after the guest has durably written state version
 * `counter`: `{"bootId":s,"commitToken":b64,"counter":"<decimal u64>","stateDigest":"<b64 32 B>"}`. The
 * commit token came inside the encrypted secret payload, so only the attested guest can produce it; the
 * state digest (SHA-256 of the sealed file written) is recorded with the counter, so that another file
 * carrying the same counter is refused at the next boot.
 */
export function parseCommitRequest(payload: Uint8Array): CommitRequest {
  const o = expectObject(parseJson(payload), 'Commit', ['bootId', 'commitToken', 'counter', 'stateDigest']);
  const bootId = expectBoundedString(o.get('bootId'), 'bootId', ...LIMITS.bootId);
  if (!BOOT_ID.test(bootId)) throw new MalformedEvidence('aproxy.field.value', 'bootId: invalid characters');
  return {
    bootId,
    commitToken: bytesField(o.get('commitToken'), 'commitToken', ...LIMITS.commitToken),
    counter: parseCounter(o.get('counter'), 'counter'),
    stateDigest: bytesField(o.get('stateDigest'), 'stateDigest', STATE_DIGEST_SIZE, STATE_DIGEST_SIZE),
  };
}

export function encodeCommitRequest(c: CommitRequest): Uint8Array {
  checkBootId(c.bootId);
  checkLength(c.commitToken, 'commitToken', ...LIMITS.commitToken);
  checkLength(c.stateDigest, 'stateDigest', STATE_DIGEST_SIZE, STATE_DIGEST_SIZE);
  return encodeJson({
    bootId: c.bootId,
    commitToken: encodeBase64(c.commitToken),
    counter: formatCounter(c.counter, 'counter'),
    stateDigest: encodeBase64(c.stateDigest),
  });
}

export function checkBootId(bootId: string): void {
  const n = typeof bootId === 'string' ? Buffer.byteLength(bootId, 'utf8') : 0;
  if (n < LIMITS.bootId[0] || n > LIMITS.bootId[1] || !BOOT_ID.test(bootId)) {
    throw new InvalidArgument('aproxy.encode.boot_id', 'bootId: 1..128 characters of [A-Za-z0-9._:-]');
  }
}

/** 0.2.0 CommitResponse: `{"success":true,"signature":b64|null}`, or an ErrorReply. */
export function parseCommitResponse(payload: Uint8Array): CommitResponse | ErrorReply {
  const v = parseJson(payload);
  if (v instanceof Map && v.has('error')) return parseErrorReply(v);
  const o = expectObject(v, 'CommitResponse', ['success', 'signature']);
  if (expectBool(o.get('success'), 'success') !== true) {
    throw new MalformedEvidence('aproxy.field.value', 'CommitResponse without error must succeed');
  }
  const sig = o.get('signature');
  return {
    success: true,
    signature: sig === null ? null : bytesField(sig, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE),
  };
}

export function encodeCommitResponse(r: CommitResponse): Uint8Array {
  if (r.signature) checkLength(r.signature, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE);
  return encodeJson({ success: true, signature: r.signature ? encodeBase64(r.signature) : null });
}
