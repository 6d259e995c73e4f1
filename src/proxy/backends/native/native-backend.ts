import type { Static, TSchema } from '@sinclair/typebox';
import type { AttestationError } from '../../../errors.js';
import { Unavailable } from '../../../errors.js';
import {
  type AesGcmData,
  type EcPublicKey,
  GCM_IV_SIZE,
  GCM_TAG_SIZE,
  P384_SIGNATURE_SIZE,
  P521_COORD_SIZE,
  WRAPPED_CEK_SIZE,
} from '../../../formats/aproxy/types.js';
import type { PlatformIdentity } from '../../../formats/platform-identity.js';
import { decodeBase64, encodeBase64 } from '../../../util/base64.js';
import { createHttpClient } from '../../../util/http-client.js';
import { errorFromReply, replyAs } from '../../../wire/decode.js';
import {
  AttestResponse,
  ChallengeResponse,
  CommitResponse,
  EndResponse,
  HeartbeatResponse,
} from '../../../wire/schemas.js';
import type {
  AttestationResult,
  AttestInput,
  BackendContext,
  CommitInput,
  CommitResult,
  EndResult,
  HeartbeatResult,
  LeaseInput,
  NegotiateInput,
  NegotiateResult,
  ProxyBackend,
  RefusalError,
} from '../../backend.js';

export interface NativeBackendOptions {
  readonly brokerUrl: string;
  /** PEM CA certificate(s) the broker's TLS certificate must chain to (https only). */
  readonly brokerCa?: string | Uint8Array;
  /** Deadline of each call, connect to last byte, ms. */
  readonly timeoutMs: number;
  /** Deadline of the TCP connect and TLS handshake, ms (default 10 000, at most `timeoutMs`). */
  readonly connectTimeoutMs?: number;
  /** Replaces the node:http(s) transport (tests, custom transports); not with `brokerCa`. */
  readonly fetch?: typeof globalThis.fetch;
}

/** Largest reply accepted from the broker (a sealed 32-byte key is well under 4 KiB). */
const MAX_REPLY = 1024 * 1024;

/** The Unavailable reasons of this backend (docs/api.md "The native proxy backend"). */
export const NATIVE_UNAVAILABLE = {
  unreachable: 'native.broker_unreachable',
  timeout: 'native.broker_timeout',
  badResponse: 'native.bad_response',
  /** The broker answered 5xx (other than 501/503 refusals), or the route does not exist (wrong URL). */
  brokerError: 'native.broker_error',
} as const;

/**
 * The host proxy's native backend: each guest step is one call to the broker's /v1 API (docs/api.md):
 * negotiate -> POST /v1/challenge, attest -> POST /v1/attest, commit -> POST /v1/commit, heartbeat ->
 * POST /v1/heartbeat, end -> POST /v1/end (with the guest's nonce, so the broker signs the
 * acknowledgement). The proxy is not trusted, and this backend decides nothing: the broker checks the
 * challenge, the REPORT_DATA binding and everything else, and seals the key to the guest's key itself.
 *
 * Calls go through the one HTTP client (src/util/http-client.ts): `brokerCa` (PEM) pins the CA of an https
 * broker, `timeoutMs` bounds every call (connect to last byte), `connectTimeoutMs` the connection, replies
 * are bounded to 1 MiB. Replies are checked against the same schemas the broker serves them with
 * (wire/schemas.ts). A refusal by the broker (a 4xx, or 501/503, with the API's `{code, reason, message}`)
 * becomes the guest's refusal with the same code and reason. A broker that cannot be reached or answers
 * nonsense is Unavailable (ERR_UNAVAILABLE, {@link NATIVE_UNAVAILABLE}), which the proxy turns into an
 * error for that guest only. Throws InvalidArgument `native.config` for bad options.
 */
export function createNativeBackend(opts: NativeBackendOptions): ProxyBackend {
  const client = createHttpClient({
    baseUrl: opts.brokerUrl,
    timeoutMs: opts.timeoutMs,
    connectTimeoutMs: Math.min(opts.connectTimeoutMs ?? 10_000, opts.timeoutMs),
    maxReplyBytes: MAX_REPLY,
    reasons: NATIVE_UNAVAILABLE,
    configReason: 'native.config',
    ...(opts.brokerCa !== undefined ? { ca: opts.brokerCa } : {}),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });

  /** POSTs `body`; returns the reply as the route's schema, or the broker's refusal. */
  const call = async <S extends TSchema>(
    path: string,
    body: unknown,
    schema: S,
    ctx: BackendContext,
  ): Promise<{ ok: Static<S> } | { refusal: RefusalError; error: AttestationError }> => {
    const r = await client.json('POST', path, body, { signal: ctx.signal });
    const err = errorFromReply(r.status, r.body, NATIVE_UNAVAILABLE.brokerError);
    if (err instanceof Unavailable) throw err;
    if (err) return { refusal: refusalOf(err), error: err };
    return { ok: replyAs(schema, r.body, NATIVE_UNAVAILABLE.badResponse) };
  };

  return {
    async negotiate(req: NegotiateInput, ctx: BackendContext): Promise<NegotiateResult> {
      const r = await call('/v1/challenge', { tee: req.tee, version: req.version }, ChallengeResponse, ctx);
      // Thrown as the typed error it is, so the proxy passes the broker's code and reason on to the guest
      // (a plain object would reach it as an untyped failure, proxy.backend.unavailable).
      if ('refusal' in r) throw r.error;
      return { challenge: bytes(r.ok.challenge, 'challenge', 1, 1024), params: r.ok.params };
    },

    async attest(req: AttestInput, ctx: BackendContext): Promise<AttestationResult> {
      const body: Record<string, unknown> = {
        tee: req.tee,
        version: req.version,
        report: encodeBase64(req.evidence.report),
        ...(req.evidence.certsBuf && req.evidence.certsBuf.length > 0
          ? { certTable: encodeBase64(req.evidence.certsBuf) }
          : {}),
        challenge: encodeBase64(req.challenge),
        key: { x: encodeBase64(req.key.x), y: encodeBase64(req.key.y) },
      };
      if (req.version === '0.2.0') {
        body.stateCounter =
          req.stateCounter === null || req.stateCounter === undefined ? null : req.stateCounter.toString(10);
        body.stateDigest = req.stateDigest ? encodeBase64(req.stateDigest) : null;
        if (req.stateKeyVersion !== undefined) body.stateKeyVersion = req.stateKeyVersion;
      }
      const r = await call('/v1/attest', body, AttestResponse, ctx);
      if ('refusal' in r) return { outcome: 'refused', error: r.refusal };
      const o = r.ok;
      const d = o.decryption;
      const decryption: AesGcmData = {
        epk: ecKey(d.epk, 'decryption.epk'),
        wrappedCek: bytes(d.wrappedCek, 'wrappedCek', WRAPPED_CEK_SIZE, WRAPPED_CEK_SIZE),
        aad: bytes(d.aad, 'aad', 1, 4096),
        iv: bytes(d.iv, 'iv', GCM_IV_SIZE, GCM_IV_SIZE),
        tag: bytes(d.tag, 'tag', GCM_TAG_SIZE, GCM_TAG_SIZE),
      };
      return {
        outcome: 'released',
        ciphertext: bytes(o.ciphertext, 'ciphertext', 1, 512 * 1024),
        decryption,
        token: null,
        identity: o.identity === null ? null : identity(o.identity),
        signature: signatureOf(o.signature),
      };
    },

    async commit(req: CommitInput, ctx: BackendContext): Promise<CommitResult> {
      const body = {
        bootId: req.bootId,
        commitToken: encodeBase64(req.commitToken),
        counter: req.counter.toString(10),
        stateDigest: encodeBase64(req.stateDigest),
        challenge: encodeBase64(req.challenge),
      };
      const r = await call('/v1/commit', body, CommitResponse, ctx);
      if ('refusal' in r) return { outcome: 'refused', error: r.refusal };
      return { outcome: 'committed', signature: signatureOf(r.ok.signature) };
    },

    async heartbeat(req: LeaseInput, ctx: BackendContext): Promise<HeartbeatResult> {
      const r = await call('/v1/heartbeat', leaseBody(req), HeartbeatResponse, ctx);
      if ('refusal' in r) return { outcome: 'refused', error: r.refusal };
      const at = r.ok.leaseExpiresAt;
      if (!Number.isSafeInteger(at) || at < 0) throw badResponse('leaseExpiresAt');
      return { outcome: 'renewed', leaseExpiresAt: at, signature: signatureOf(r.ok.signature) };
    },

    async end(req: LeaseInput, ctx: BackendContext): Promise<EndResult> {
      const r = await call('/v1/end', leaseBody(req), EndResponse, ctx);
      if ('refusal' in r) return { outcome: 'refused', error: r.refusal };
      return { outcome: 'ended', signature: signatureOf(r.ok.signature) };
    },
  };
}

/** The refusal as the guest will see it: code, reason and (bounded) message only. */
function refusalOf(e: AttestationError): RefusalError {
  return { code: e.code, reason: e.reason, message: e.message.slice(0, 512) };
}

function leaseBody(req: LeaseInput): Record<string, string> {
  return {
    bootId: req.bootId,
    commitToken: encodeBase64(req.commitToken),
    nonce: encodeBase64(req.nonce),
  };
}

function badResponse(what: string): Unavailable {
  return new Unavailable(NATIVE_UNAVAILABLE.badResponse, `unexpected reply from the broker: ${what}`);
}

function signatureOf(v: string | null | undefined): Uint8Array | null {
  return v === null || v === undefined
    ? null
    : bytes(v, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE);
}

/** A base64 field the schema has checked, decoded, with the exact byte bounds the schema cannot state. */
function bytes(v: string, what: string, min: number, max: number): Uint8Array {
  let b: Uint8Array;
  try {
    b = decodeBase64(v, 'aproxy.base64', what);
  } catch {
    throw badResponse(`${what} is not base64`);
  }
  if (b.length < min || b.length > max) throw badResponse(`${what}: ${b.length} bytes`);
  return b;
}

function ecKey(v: { x: string; y: string }, what: string): EcPublicKey {
  return {
    x: bytes(v.x, `${what}.x`, P521_COORD_SIZE, P521_COORD_SIZE),
    y: bytes(v.y, `${what}.y`, P521_COORD_SIZE, P521_COORD_SIZE),
  };
}

function identity(o: PlatformIdentity): PlatformIdentity {
  for (const k of ['project', 'zone', 'instanceId', 'instanceName'] as const) {
    if (o[k].length === 0 || o[k].length > 256) throw badResponse(`identity.${k}`);
  }
  return { project: o.project, zone: o.zone, instanceId: o.instanceId, instanceName: o.instanceName };
}
