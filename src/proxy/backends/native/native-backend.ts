import { AttestationError, ErrorCode, MalformedEvidence } from '../../../errors.js';
import { decodeBase64Std, encodeBase64Std } from '../../../formats/aproxy/base64.js';
import {
  type AesGcmData,
  type EcPublicKey,
  GCM_IV_SIZE,
  GCM_TAG_SIZE,
  type InstanceIdentity,
  type NegotiationParam,
  P384_SIGNATURE_SIZE,
  P521_COORD_SIZE,
  WRAPPED_CEK_SIZE,
} from '../../../formats/aproxy/types.js';
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
import { BrokerUnavailable } from './errors.js';
import { type ClientOptions, createPostJson, type JsonReply } from './http-client.js';

export type NativeBackendOptions = ClientOptions;

const CODES: readonly string[] = Object.values(ErrorCode);
const PARAMS: readonly string[] = [
  'Challenge',
  'EcPublicKeyBytes',
  'StateCounter',
  'Domain',
  'StateDigest',
];

/**
 * The host proxy's native backend: each guest step is one call to the broker's /v1 API (docs/api.md):
 * negotiate -> POST /v1/challenge, attest -> POST /v1/attest, commit -> POST /v1/commit, heartbeat ->
 * POST /v1/heartbeat, end -> POST /v1/end (with the guest's nonce, so the broker signs the
 * acknowledgement). The proxy is not
 * trusted, and this backend decides nothing: the broker checks the challenge, the REPORT_DATA binding and
 * everything else, and seals the key to the guest's key itself.
 *
 * A refusal by the broker (a 4xx, or 501/503, with the API's `{code, reason, message}`) becomes the guest's
 * refusal with the same code and reason. A broker that cannot be reached or answers nonsense becomes a
 * typed {@link BrokerUnavailable} (ERR_COLLATERAL_UNAVAILABLE, `native.*`), which the proxy turns into an
 * error for that guest only. `brokerCa` (PEM) pins the CA of an https broker; `timeoutMs` bounds every
 * call (connect to last byte); `fetch` replaces the node:http(s) transport (then without `brokerCa`).
 * Throws InvalidArgument `native.broker_url`, `native.timeout`, `native.broker_ca` for bad options.
 */
export function createNativeBackend(opts: NativeBackendOptions): ProxyBackend {
  const post = createPostJson(opts);

  return {
    async negotiate(req: NegotiateInput, ctx: BackendContext): Promise<NegotiateResult> {
      const r = await post('/v1/challenge', { tee: req.tee, version: req.version }, ctx.signal);
      const refusal = refusalOf(r);
      if (refusal) throw new AttestationError(refusal.code as ErrorCode, refusal.reason, refusal.message);
      return readReply(() => {
        const o = object(r.body, 'reply');
        const params = o.params;
        if (
          !Array.isArray(params) ||
          params.length > 16 ||
          !params.every((p) => PARAMS.includes(p as string))
        ) {
          throw new MalformedEvidence('native.bad_response', 'params');
        }
        return { challenge: bytes(o.challenge, 'challenge', 1, 1024), params: params as NegotiationParam[] };
      });
    },

    async attest(req: AttestInput, ctx: BackendContext): Promise<AttestationResult> {
      const body: Record<string, unknown> = {
        tee: req.tee,
        version: req.version,
        report: encodeBase64Std(req.evidence.report),
        ...(req.evidence.certsBuf && req.evidence.certsBuf.length > 0
          ? { certTable: encodeBase64Std(req.evidence.certsBuf) }
          : {}),
        challenge: encodeBase64Std(req.challenge),
        key: { x: encodeBase64Std(req.key.x), y: encodeBase64Std(req.key.y) },
      };
      if (req.version === '0.2.0') {
        body.stateCounter =
          req.stateCounter === null || req.stateCounter === undefined ? null : req.stateCounter.toString(10);
        body.stateDigest = req.stateDigest ? encodeBase64Std(req.stateDigest) : null;
        if (req.stateKeyVersion !== undefined) body.stateKeyVersion = req.stateKeyVersion;
      }
      const r = await post('/v1/attest', body, ctx.signal);
      const refusal = refusalOf(r);
      if (refusal) return { outcome: 'refused', error: refusal };
      return readReply(() => {
        const o = object(r.body, 'reply');
        const d = object(o.decryption, 'decryption');
        const decryption: AesGcmData = {
          epk: ecKey(d.epk, 'decryption.epk'),
          wrappedCek: bytes(d.wrappedCek, 'wrappedCek', WRAPPED_CEK_SIZE, WRAPPED_CEK_SIZE),
          aad: bytes(d.aad, 'aad', 1, 4096),
          iv: bytes(d.iv, 'iv', GCM_IV_SIZE, GCM_IV_SIZE),
          tag: bytes(d.tag, 'tag', GCM_TAG_SIZE, GCM_TAG_SIZE),
        };
        return {
          outcome: 'released' as const,
          ciphertext: bytes(o.ciphertext, 'ciphertext', 1, 512 * 1024),
          decryption,
          token: null,
          identity: o.identity === null || o.identity === undefined ? null : identity(o.identity),
          signature:
            o.signature === null || o.signature === undefined
              ? null
              : bytes(o.signature, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE),
        };
      });
    },

    async commit(req: CommitInput, ctx: BackendContext): Promise<CommitResult> {
      const r = await post(
        '/v1/commit',
        {
          bootId: req.bootId,
          commitToken: encodeBase64Std(req.commitToken),
          counter: req.counter.toString(10),
          stateDigest: encodeBase64Std(req.stateDigest),
          challenge: encodeBase64Std(req.challenge),
        },
        ctx.signal,
      );
      const refusal = refusalOf(r);
      if (refusal) return { outcome: 'refused', error: refusal };
      return readReply(() => {
        const o = object(r.body, 'reply');
        return {
          outcome: 'committed' as const,
          signature:
            o.signature === null || o.signature === undefined
              ? null
              : bytes(o.signature, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE),
        };
      });
    },

    async heartbeat(req: LeaseInput, ctx: BackendContext): Promise<HeartbeatResult> {
      const r = await post('/v1/heartbeat', leaseBody(req), ctx.signal);
      const refusal = refusalOf(r);
      if (refusal) return { outcome: 'refused', error: refusal };
      return readReply(() => {
        const o = object(r.body, 'reply');
        const at = o.leaseExpiresAt;
        if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) throw new Error('leaseExpiresAt');
        return { outcome: 'renewed' as const, leaseExpiresAt: at, signature: signatureOf(o) };
      });
    },

    async end(req: LeaseInput, ctx: BackendContext): Promise<EndResult> {
      const r = await post('/v1/end', leaseBody(req), ctx.signal);
      const refusal = refusalOf(r);
      if (refusal) return { outcome: 'refused', error: refusal };
      return readReply(() => {
        const o = object(r.body, 'reply');
        if (o.ended !== true) throw new Error('ended');
        return { outcome: 'ended' as const, signature: signatureOf(o) };
      });
    },
  };
}

function leaseBody(req: LeaseInput): Record<string, string> {
  return {
    bootId: req.bootId,
    commitToken: encodeBase64Std(req.commitToken),
    nonce: encodeBase64Std(req.nonce),
  };
}

function signatureOf(o: Record<string, unknown>): Uint8Array | null {
  return o.signature === null || o.signature === undefined
    ? null
    : bytes(o.signature, 'signature', P384_SIGNATURE_SIZE, P384_SIGNATURE_SIZE);
}

/**
 * The broker's refusal, or undefined for a 200. Anything that is not a refusal in the API's shape (a
 * 5xx, a wrong URL, a proxy page) throws BrokerUnavailable.
 */
function refusalOf(r: JsonReply): RefusalError | undefined {
  if (r.status === 200) return undefined;
  const b = r.body as { code?: unknown; reason?: unknown; message?: unknown } | undefined;
  const shaped =
    typeof b === 'object' &&
    b !== null &&
    typeof b.code === 'string' &&
    CODES.includes(b.code) &&
    typeof b.reason === 'string' &&
    typeof b.message === 'string';
  const refusalStatus =
    (r.status >= 400 && r.status < 500 && r.status !== 404 && r.status !== 405) ||
    r.status === 501 ||
    r.status === 503;
  if (!shaped || !refusalStatus) {
    throw new BrokerUnavailable('native.broker_error', `the broker answered HTTP ${r.status}`);
  }
  return { code: b.code as string, reason: b.reason as string, message: (b.message as string).slice(0, 512) };
}

/** Runs a reply decoder; a reply that does not decode is the broker's fault, not the guest's. */
function readReply<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new BrokerUnavailable(
      'native.bad_response',
      `unexpected reply from the broker: ${(e as Error).message}`,
    );
  }
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function bytes(v: unknown, what: string, min: number, max: number): Uint8Array {
  if (typeof v !== 'string') throw new Error(`${what} is not a string`);
  const b = decodeBase64Std(v, what);
  if (b.length < min || b.length > max) throw new Error(`${what}: ${b.length} bytes`);
  return b;
}

function ecKey(v: unknown, what: string): EcPublicKey {
  const o = object(v, what);
  return {
    x: bytes(o.x, `${what}.x`, P521_COORD_SIZE, P521_COORD_SIZE),
    y: bytes(o.y, `${what}.y`, P521_COORD_SIZE, P521_COORD_SIZE),
  };
}

function identity(v: unknown): InstanceIdentity {
  const o = object(v, 'identity');
  const s = (k: string) => {
    const x = o[k];
    if (typeof x !== 'string' || x.length === 0 || x.length > 256) throw new Error(`identity.${k}`);
    return x;
  };
  return {
    project: s('project'),
    zone: s('zone'),
    instanceId: s('instanceId'),
    instanceName: s('instanceName'),
  };
}
