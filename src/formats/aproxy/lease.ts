import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { encodeBase64 } from '../../util/base64.js';
import { checkBootId } from './commit.js';
import { encodeJson } from './encode.js';
import { parseErrorReply } from './error-reply.js';
import {
  bytesField,
  checkLength,
  checkTimestamp,
  expectBoundedString,
  LIMITS,
  parseTimestamp,
  parseVersionTuple,
} from './fields.js';
import { expectBool, expectObject, expectString, type JsonValue, parseJson } from './json.js';
import { parseNegotiationRequest } from './negotiation.js';
import {
  type ErrorReply,
  type LeaseOp,
  type LeaseRequest,
  type LeaseResponse,
  type NegotiationRequest,
  P384_SIGNATURE_SIZE,
  VERSION_TUPLES,
} from './types.js';

const BOOT_ID = /^[A-Za-z0-9._:-]+$/;
const OPS: readonly string[] = ['heartbeat', 'end'] satisfies LeaseOp[];

/**
 * 0.2.0 Heartbeat / End (guest -> proxy -> backend; docs/protocol.md §6), the first and only request of
 * its own connection:
 * `{"version":[0,2,0],"op":"heartbeat"|"end","bootId":s,"commitToken":b64,"nonce":b64}`.
 * It carries `op` and no `tee`: an aproxy 0.1.0 peer fails to read it as a NegotiationRequest (serde:
 * missing field `tee`) and drops the connection, and no 0.1.0 message has an `op` field. The version is
 * returned as sent; the proxy answers anything but [0,2,0] with ERR_NOT_SUPPORTED `aproxy.version`.
 * Throws MalformedEvidence `aproxy.*`.
 */
export function parseLeaseRequest(payload: Uint8Array | JsonValue): LeaseRequest {
  const v = payload instanceof Uint8Array ? parseJson(payload) : payload;
  const o = expectObject(v, 'LeaseRequest', ['version', 'op', 'bootId', 'commitToken', 'nonce']);
  const version = parseVersionTuple(o.get('version'), 'version');
  const op = expectString(o.get('op'), 'op');
  if (!OPS.includes(op)) throw new MalformedEvidence('aproxy.field.value', 'op: not heartbeat or end');
  const bootId = expectBoundedString(o.get('bootId'), 'bootId', ...LIMITS.bootId);
  if (!BOOT_ID.test(bootId)) throw new MalformedEvidence('aproxy.field.value', 'bootId: invalid characters');
  return {
    version,
    op: op as LeaseOp,
    bootId,
    commitToken: bytesField(o.get('commitToken'), 'commitToken', ...LIMITS.commitToken),
    nonce: bytesField(o.get('nonce'), 'nonce', ...LIMITS.nonce),
  };
}

/** Encodes a Heartbeat / End request (always version [0,2,0]); checks sizes (InvalidArgument). */
export function encodeLeaseRequest(r: Omit<LeaseRequest, 'version'>): Uint8Array {
  if (!OPS.includes(r.op)) throw new InvalidArgument('aproxy.encode.op', 'op must be heartbeat or end');
  checkBootId(r.bootId);
  checkLength(r.commitToken, 'commitToken', ...LIMITS.commitToken);
  checkLength(r.nonce, 'nonce', ...LIMITS.nonce);
  return encodeJson({
    version: [...VERSION_TUPLES['0.2.0']],
    op: r.op,
    bootId: r.bootId,
    commitToken: encodeBase64(r.commitToken),
    nonce: encodeBase64(r.nonce),
  });
}

/**
 * 0.2.0 LeaseResponse: `{"success":true,"op":"heartbeat"|"end","leaseExpiresAt":<integer ms>|null,
 * "signature":b64|null}` (`leaseExpiresAt` is an integer for heartbeat, null for end), or an ErrorReply.
 * `expected` is the op the guest sent; a response for another op is `aproxy.field.value`.
 */
export function parseLeaseResponse(payload: Uint8Array, expected: LeaseOp): LeaseResponse | ErrorReply {
  const v = parseJson(payload);
  if (v instanceof Map && v.has('error')) return parseErrorReply(v);
  const o = expectObject(v, 'LeaseResponse', ['success', 'op', 'leaseExpiresAt', 'signature']);
  if (expectBool(o.get('success'), 'success') !== true) {
    throw new MalformedEvidence('aproxy.field.value', 'LeaseResponse without error must succeed');
  }
  if (expectString(o.get('op'), 'op') !== expected) {
    throw new MalformedEvidence('aproxy.field.value', `op: expected ${expected}`);
  }
  const at = o.get('leaseExpiresAt');
  let leaseExpiresAt: number | null;
  if (expected === 'heartbeat') leaseExpiresAt = parseTimestamp(at, 'leaseExpiresAt');
  else if (at === null) leaseExpiresAt = null;
  else throw new MalformedEvidence('aproxy.field.value', 'leaseExpiresAt: null for end');
  const sig = o.get('signature');
  return {
    success: true,
    op: expected,
    leaseExpiresAt,
    signature: sig === null ? null : bytesField(sig, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE),
  };
}

export function encodeLeaseResponse(r: Omit<LeaseResponse, 'success'>): Uint8Array {
  if (!OPS.includes(r.op)) throw new InvalidArgument('aproxy.encode.op', 'op must be heartbeat or end');
  if ((r.op === 'heartbeat') !== (r.leaseExpiresAt !== null)) {
    throw new InvalidArgument(
      'aproxy.encode.lease',
      'heartbeat answers carry leaseExpiresAt; end answers none',
    );
  }
  if (r.leaseExpiresAt !== null) checkTimestamp(r.leaseExpiresAt, 'leaseExpiresAt');
  if (r.signature) checkLength(r.signature, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE);
  return encodeJson({
    success: true,
    op: r.op,
    leaseExpiresAt: r.leaseExpiresAt,
    signature: r.signature ? encodeBase64(r.signature) : null,
  });
}

/** The first message of a guest connection: a NegotiationRequest (attestation) or a lease request. */
export type OpeningMessage =
  | { readonly kind: 'negotiation'; readonly request: NegotiationRequest }
  | { readonly kind: 'lease'; readonly request: LeaseRequest };

/**
 * Reads the first frame of a connection (docs/protocol.md §3): an object with an `op` field is a lease
 * request, anything else must be a NegotiationRequest. The lease request (Vouchsafe's own, versioned by
 * us) refuses unknown fields; a NegotiationRequest ignores them as serde does and lists them in `unknown`.
 * Throws MalformedEvidence `aproxy.*`.
 */
export function parseOpeningMessage(payload: Uint8Array, unknown: string[] = []): OpeningMessage {
  const v = parseJson(payload);
  if (v instanceof Map && v.has('op')) return { kind: 'lease', request: parseLeaseRequest(v) };
  return { kind: 'negotiation', request: parseNegotiationRequest(v, unknown) };
}
