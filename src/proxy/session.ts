import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { type AttestationError, ErrorCode, isAttestationError } from '../errors.js';
import { encodeAttestationResponse, parseAttestationRequest } from '../formats/aproxy/attestation.js';
import { encodeCommitResponse, parseCommitRequest } from '../formats/aproxy/commit.js';
import { encodeErrorReply } from '../formats/aproxy/error-reply.js';
import { expectArray, JsonNumber, parseJson } from '../formats/aproxy/json.js';
import { encodeLeaseResponse, type OpeningMessage, parseOpeningMessage } from '../formats/aproxy/lease.js';
import { encodeNegotiationResponse } from '../formats/aproxy/negotiation.js';
import type { LeaseRequest, ProtocolVersion } from '../formats/aproxy/types.js';
import { versionFromTuple } from '../formats/aproxy/types.js';
import { ctEqual } from '../util/bytes.js';
import type { BackendContext, ProxyBackend, RefusalError } from './backend.js';
import { FramedSocket, PeerClosed, ReadTimeout } from './framed-socket.js';

/** Per-session time limits (milliseconds). */
export interface ProxyTimeouts {
  /** Each frame from the guest must arrive whole within this (default 30 s). */
  readonly readMs: number;
  /** Each backend call (default 30 s). */
  readonly backendMs: number;
  /** The whole session, connect to close (default 120 s). */
  readonly sessionMs: number;
}

export const DEFAULT_TIMEOUTS: ProxyTimeouts = { readMs: 30_000, backendMs: 30_000, sessionMs: 120_000 };

export type SessionOutcome =
  | 'released'
  | 'committed'
  | 'renewed'
  | 'ended'
  | 'refused'
  | 'malformed'
  | 'unsupported'
  | 'backend_error'
  | 'timeout'
  | 'peer_closed';

export interface SessionOptions {
  readonly backend: ProxyBackend;
  readonly logger: Logger;
  readonly timeouts: ProxyTimeouts;
  readonly sessionId: string;
  readonly peer: string;
  /** Aborts when the proxy is closing. */
  readonly closing: AbortSignal;
}

/** What the guest is told: an ErrorCode value, a stable reason, and a message with no secrets. */
interface Refusal {
  readonly code: string;
  readonly reason: string;
  readonly message: string;
  readonly outcome: SessionOutcome;
}

class BackendTimeout extends Error {}

const CODES: readonly string[] = Object.values(ErrorCode);
const REASON = /^[a-z0-9_]+(?:\.[a-z0-9_]+)*$/;

/**
 * Serves one guest connection (reference svsm-protocol.md §2; docs/protocol.md): NegotiationRequest ->
 * NegotiationResponse -> AttestationRequest -> AttestationResponse, then for 0.1.0 read to EOF, for 0.2.0 an
 * optional Commit -> CommitResponse; or (0.2.0) a Heartbeat / End -> LeaseResponse on its own connection. Never throws: every failure ends this session only, as a 0.2.0
 * ErrorReply, a 0.1.0 `{"success":false}` (after negotiation) or a dropped connection (before it, as aproxy).
 */
export async function runSession(socket: Socket, o: SessionOptions): Promise<SessionOutcome> {
  const log = o.logger;
  const io = new FramedSocket(socket);
  const started = Date.now();
  const sessionTimer = setTimeout(() => {
    log.warn({ event: 'session_timeout', ms: o.timeouts.sessionMs }, 'session exceeded its time limit');
    socket.destroy();
  }, o.timeouts.sessionMs);
  const onClosing = () => socket.destroy();
  o.closing.addEventListener('abort', onClosing, { once: true });
  let outcome: SessionOutcome = 'peer_closed';
  try {
    outcome = await serve(io, o);
  } catch (e) {
    outcome = classify(e);
    log.info({ event: 'session_error', outcome, ...describe(e) }, 'session ended early');
  } finally {
    clearTimeout(sessionTimer);
    o.closing.removeEventListener('abort', onClosing);
    socket.end();
    socket.destroySoon();
    log.info({ event: 'session_end', outcome, ms: Date.now() - started }, 'session closed');
  }
  return outcome;
}

async function serve(io: FramedSocket, o: SessionOptions): Promise<SessionOutcome> {
  const log = o.logger;
  const readMs = o.timeouts.readMs;

  // The opening message: a NegotiationRequest, or (0.2.0) a Heartbeat / End on a connection of its own.
  // Until a version is known there is nobody to send an error to: drop, as aproxy does.
  const first = await io.read(readMs);
  if (first === undefined) return 'peer_closed';
  let opening: OpeningMessage;
  try {
    opening = parseOpeningMessage(first);
  } catch (e) {
    if (isAttestationError(e) && peekVersion(first) === '0.2.0') {
      await io.write(encodeErrorReply(refusalOf(e, 'malformed')));
    }
    throw e;
  }
  if (opening.kind === 'lease') return serveLease(io, o, opening.request);
  const version = versionFromTuple(opening.request.version);
  const tee = opening.request.tee;
  if (version === undefined) {
    // A guest speaking a version we do not know is told so in the 0.2.0 error format (0.1.0 guests never
    // send another version); aproxy would drop it.
    return unsupportedVersion(io, o, opening.request.version);
  }
  log.info({ event: 'negotiate', version, tee }, 'negotiation request');
  const refuse = async (r: Refusal): Promise<SessionOutcome> => {
    log.info({ event: 'refused', code: r.code, reason: r.reason }, 'refusing guest');
    if (version === '0.2.0') await io.write(encodeErrorReply(r));
    return r.outcome;
  };
  if (tee !== 'snp') {
    if (version === '0.1.0') return 'unsupported'; // aproxy: unsupported TEE -> error -> drop
    return refuse({
      code: ErrorCode.NotSupported,
      reason: 'aproxy.tee',
      message: 'only snp',
      outcome: 'unsupported',
    });
  }

  // NegotiationResponse from the backend.
  let negotiation: Awaited<ReturnType<ProxyBackend['negotiate']>>;
  let negotiationBytes: Uint8Array;
  try {
    negotiation = await callBackend(o, (ctx) => o.backend.negotiate({ tee: 'snp', version }, ctx));
    negotiationBytes = encodeNegotiationResponse(negotiation, version);
  } catch (e) {
    const r = backendFailure(e);
    if (version === '0.1.0') {
      log.warn({ event: 'backend_failed', step: 'negotiate', reason: r.reason }, 'backend failed');
      return r.outcome; // no 0.1.0 message can carry an error here; aproxy drops too
    }
    return refuse(r);
  }
  await io.write(negotiationBytes);

  // AttestationRequest.
  const failAttestation = async (r: Refusal): Promise<SessionOutcome> => {
    if (version === '0.1.0') {
      log.info({ event: 'refused', code: r.code, reason: r.reason }, 'refusing guest');
      await io.write(encodeAttestationResponse({ success: false, decryption: null, token: null }, '0.1.0'));
      return r.outcome;
    }
    return refuse(r);
  };
  const reqBytes = await io.read(readMs);
  if (reqBytes === undefined) return 'peer_closed';
  let req: ReturnType<typeof parseAttestationRequest>;
  try {
    req = parseAttestationRequest(reqBytes, version);
  } catch (e) {
    if (!isAttestationError(e)) throw e;
    return failAttestation(refusalOf(e, 'malformed'));
  }
  if (req.tee !== 'snp') {
    return failAttestation({
      code: ErrorCode.NotSupported,
      reason: 'aproxy.tee',
      message: 'only snp',
      outcome: 'unsupported',
    });
  }
  // Defense in depth only: the backend checks the challenge itself (the proxy is not trusted).
  if (!ctEqual(req.challenge, negotiation.challenge)) {
    return failAttestation({
      code: ErrorCode.BindingMismatch,
      reason: 'aproxy.challenge',
      message: 'challenge does not match the negotiated one',
      outcome: 'refused',
    });
  }

  let responseBytes: Uint8Array;
  try {
    const result = await callBackend(o, (ctx) =>
      o.backend.attest(
        {
          tee: 'snp',
          version,
          evidence: req.evidence,
          challenge: req.challenge,
          key: req.key,
          ...(version === '0.2.0' ? { stateCounter: req.stateCounter ?? null } : {}),
          ...(version === '0.2.0' && req.stateKeyVersion !== undefined
            ? { stateKeyVersion: req.stateKeyVersion }
            : {}),
        },
        ctx,
      ),
    );
    if (result.outcome === 'refused') return failAttestation(refusalFromBackend(result.error));
    responseBytes = encodeAttestationResponse(
      {
        success: true,
        secret: result.ciphertext,
        decryption: result.decryption,
        token: result.token ?? null,
        ...(version === '0.2.0'
          ? { identity: result.identity ?? null, signature: result.signature ?? null }
          : {}),
      },
      version,
    );
  } catch (e) {
    log.warn({ event: 'backend_failed', step: 'attest', ...describe(e) }, 'backend failed');
    return failAttestation(backendFailure(e));
  }
  await io.write(responseBytes);
  log.info({ event: 'released', version }, 'secret released to guest');

  if (version === '0.1.0') {
    await drain(io, readMs); // aproxy reads to EOF after the response
    return 'released';
  }

  // 0.2.0: an optional Commit.
  const commitBytes = await io.read(readMs);
  if (commitBytes === undefined) return 'released';
  let commit: ReturnType<typeof parseCommitRequest>;
  try {
    commit = parseCommitRequest(commitBytes);
  } catch (e) {
    if (!isAttestationError(e)) throw e;
    return refuse(refusalOf(e, 'malformed'));
  }
  let commitResponse: Uint8Array;
  try {
    const r = await callBackend(o, (ctx) =>
      o.backend.commit({ version: '0.2.0', ...commit, challenge: req.challenge }, ctx),
    );
    if (r.outcome === 'refused') return refuse(refusalFromBackend(r.error));
    commitResponse = encodeCommitResponse({ success: true, signature: r.signature ?? null });
  } catch (e) {
    log.warn({ event: 'backend_failed', step: 'commit', ...describe(e) }, 'backend failed');
    return refuse(backendFailure(e));
  }
  await io.write(commitResponse);
  log.info({ event: 'committed', counter: commit.counter.toString() }, 'state version committed');
  await drain(io, readMs);
  return 'committed';
}

/** Answers an unknown version with ERR_NOT_SUPPORTED `aproxy.version`. */
async function unsupportedVersion(
  io: FramedSocket,
  o: SessionOptions,
  tuple: readonly number[],
): Promise<SessionOutcome> {
  o.logger.info({ event: 'unsupported_version', version: tuple.join('.') }, 'unsupported protocol version');
  await io.write(
    encodeErrorReply({
      code: ErrorCode.NotSupported,
      reason: 'aproxy.version',
      message: 'supported protocol versions: 0.1.0, 0.2.0 (lease messages: 0.2.0)',
    }),
  );
  return 'unsupported';
}

/**
 * 0.2.0 Heartbeat / End (docs/protocol.md §6): one request, one reply (LeaseResponse or ErrorReply), then
 * wait for the guest to close. The backend decides; the proxy relays the acknowledgement and its signature.
 */
async function serveLease(io: FramedSocket, o: SessionOptions, req: LeaseRequest): Promise<SessionOutcome> {
  const log = o.logger;
  if (versionFromTuple(req.version) !== '0.2.0') return unsupportedVersion(io, o, req.version);
  log.info({ event: req.op, version: '0.2.0' }, 'lease request');
  const refuse = async (r: Refusal): Promise<SessionOutcome> => {
    log.info({ event: 'refused', step: req.op, code: r.code, reason: r.reason }, 'refusing guest');
    await io.write(encodeErrorReply(r));
    return r.outcome;
  };
  const backend = o.backend;
  if (!(req.op === 'heartbeat' ? backend.heartbeat : backend.end)) {
    return refuse({
      code: ErrorCode.NotSupported,
      reason: 'proxy.backend.lease_unsupported',
      message: "this proxy's key broker backend has no boot leases",
      outcome: 'unsupported',
    });
  }
  const input = {
    version: '0.2.0' as const,
    bootId: req.bootId,
    commitToken: req.commitToken,
    nonce: req.nonce,
  };
  let reply: Uint8Array;
  try {
    if (req.op === 'heartbeat') {
      const r = await callBackend(o, (ctx) => backend.heartbeat!(input, ctx));
      if (r.outcome === 'refused') return refuse(refusalFromBackend(r.error));
      reply = encodeLeaseResponse({
        op: 'heartbeat',
        leaseExpiresAt: r.leaseExpiresAt,
        signature: r.signature ?? null,
      });
    } else {
      const r = await callBackend(o, (ctx) => backend.end!(input, ctx));
      if (r.outcome === 'refused') return refuse(refusalFromBackend(r.error));
      reply = encodeLeaseResponse({ op: 'end', leaseExpiresAt: null, signature: r.signature ?? null });
    }
  } catch (e) {
    log.warn({ event: 'backend_failed', step: req.op, ...describe(e) }, 'backend failed');
    return refuse(backendFailure(e));
  }
  await io.write(reply);
  const outcome: SessionOutcome = req.op === 'heartbeat' ? 'renewed' : 'ended';
  log.info({ event: outcome }, req.op === 'heartbeat' ? 'lease renewed' : 'boot ended');
  await drain(io, o.timeouts.readMs);
  return outcome;
}

/** After the last reply: wait for the guest to close; a guest that keeps the channel open is cut at the deadline. */
async function drain(io: FramedSocket, ms: number): Promise<void> {
  try {
    await io.drainUntilEof(ms);
  } catch (e) {
    if (!(e instanceof ReadTimeout)) throw e;
  }
}

/** Runs a backend call with the backend timeout and the proxy's closing signal. */
async function callBackend<T>(o: SessionOptions, fn: (ctx: BackendContext) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new BackendTimeout()), o.timeouts.backendMs);
  const onClosing = () => ac.abort(new BackendTimeout());
  o.closing.addEventListener('abort', onClosing, { once: true });
  try {
    const aborted = new Promise<never>((_, reject) => {
      ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
    });
    aborted.catch(() => {});
    return await Promise.race([fn({ sessionId: o.sessionId, peer: o.peer, signal: ac.signal }), aborted]);
  } finally {
    clearTimeout(timer);
    o.closing.removeEventListener('abort', onClosing);
  }
}

function refusalOf(e: AttestationError, outcome: SessionOutcome): Refusal {
  return { code: e.code, reason: e.reason, message: e.message, outcome };
}

/** A refusal the backend chose: its code and reason pass through; an unknown code becomes a policy refusal. */
function refusalFromBackend(err: RefusalError): Refusal {
  const known = CODES.includes(err.code);
  const reasonOk = REASON.test(err.reason) && err.reason.length <= 128;
  return {
    code: known ? err.code : ErrorCode.PolicyRejected,
    reason: reasonOk ? err.reason : 'proxy.backend.refused',
    message: String(err.message ?? ''),
    outcome: 'refused',
  };
}

/** A backend that threw or timed out. The guest learns the category, not the backend's internals. */
function backendFailure(e: unknown): Refusal {
  if (e instanceof BackendTimeout) {
    return {
      code: ErrorCode.CollateralUnavailable,
      reason: 'proxy.backend.timeout',
      message: 'the key broker did not answer in time',
      outcome: 'backend_error',
    };
  }
  // A typed outage (e.g. the native backend's BrokerUnavailable, `native.*`): the guest learns its code and
  // reason, and the session counts as a backend error, not as a refusal.
  if (isAttestationError(e) && e.code === ErrorCode.CollateralUnavailable) {
    return {
      code: e.code,
      reason: REASON.test(e.reason) && e.reason.length <= 128 ? e.reason : 'proxy.backend.unavailable',
      message: 'the key broker is unavailable',
      outcome: 'backend_error',
    };
  }
  if (isAttestationError(e) && e.code !== ErrorCode.InvalidArgument) {
    return {
      code: e.code,
      reason: REASON.test(e.reason) && e.reason.length <= 128 ? e.reason : 'proxy.backend.refused',
      message: 'refused by the key broker',
      outcome: 'refused',
    };
  }
  return {
    code: ErrorCode.CollateralUnavailable,
    reason: isAttestationError(e) ? 'proxy.backend.invalid_result' : 'proxy.backend.unavailable',
    message: 'the key broker is unavailable',
    outcome: 'backend_error',
  };
}

function classify(e: unknown): SessionOutcome {
  if (e instanceof ReadTimeout) return 'timeout';
  if (e instanceof PeerClosed) return 'peer_closed';
  if (isAttestationError(e)) return 'malformed';
  return 'peer_closed';
}

/** Log fields for an error: code and reason, or the error's class; never its data. */
function describe(e: unknown): Record<string, string> {
  if (isAttestationError(e)) return { code: e.code, reason: e.reason };
  if (e instanceof Error) return { error: e.name, detail: e.message.slice(0, 200) };
  return { error: typeof e };
}

/**
 * Best effort: the version a malformed NegotiationRequest claims, to know whether it can take an ErrorReply.
 * Tries the strict parser, then (for JSON that does not parse at all) a textual match of `"version":[0,2,0]`.
 */
function peekVersion(payload: Uint8Array): ProtocolVersion | undefined {
  try {
    const v = parseJson(payload);
    if (!(v instanceof Map)) return undefined;
    const a = expectArray(v.get('version'), 'version');
    const nums = a.map((x) => (x instanceof JsonNumber ? Number(x.text) : Number.NaN));
    if (nums.length !== 3) return undefined;
    return versionFromTuple([nums[0]!, nums[1]!, nums[2]!]);
  } catch {
    const text = Buffer.from(payload.subarray(0, 4096)).toString('latin1');
    return /"version"\s*:\s*\[\s*0\s*,\s*2\s*,\s*0\s*\]/.test(text) ? '0.2.0' : undefined;
  }
}
