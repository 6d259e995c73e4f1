import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ErrorCode, isAttestationError } from '../errors.js';
import { encodeAttestationResponse, parseAttestationRequest } from '../formats/aproxy/attestation.js';
import { encodeCommitResponse, parseCommitRequest } from '../formats/aproxy/commit.js';
import { type Dialect, sniffDialect } from '../formats/aproxy/dialect.js';
import { type DialectBinding, RAW_SHA512 } from '../formats/aproxy/dialect-binding.js';
import { encodeErrorReply } from '../formats/aproxy/error-reply.js';
import { expectArray, JsonNumber, parseJson } from '../formats/aproxy/json.js';
import { encodeLeaseResponse, parseOpeningMessage } from '../formats/aproxy/lease.js';
import { encodeNegotiationResponse } from '../formats/aproxy/negotiation.js';
import { encodeNegotiationResponse1122, parseAttestationRequest1122 } from '../formats/aproxy/pr1122.js';
import type {
  LeaseRequest,
  NegotiationRequest,
  NegotiationResponse,
  ProtocolVersion,
} from '../formats/aproxy/types.js';
import { versionFromTuple } from '../formats/aproxy/types.js';
import { ctEqual } from '../util/bytes.js';
import type { BackendContext, ProxyBackend } from './backend.js';
import { type BufferBudget, BufferBudgetExceeded } from './buffer-budget.js';
import { type ProxyForwarder, serveForwarding } from './forward-session.js';
import { FramedSocket, PeerClosed, ReadTimeout } from './framed-socket.js';
import {
  BackendTimeout,
  backendFailure,
  describeError,
  type Refusal,
  refusalFromBackend,
  refusalOf,
} from './refusal.js';

/** Per-session time limits (milliseconds). */
export interface ProxyTimeouts {
  /**
   * The opening frame (NegotiationRequest, Heartbeat or End) must arrive whole within this (default 5 s;
   * never more than readMs). Short, because a connection that has said nothing holds a slot for free.
   */
  readonly firstFrameMs: number;
  /** Each later frame from the guest must arrive whole within this (default 30 s). */
  readonly readMs: number;
  /** Each backend call (default 30 s). */
  readonly backendMs: number;
  /** The whole session, connect to close (default 120 s). */
  readonly sessionMs: number;
}

export const DEFAULT_TIMEOUTS: ProxyTimeouts = {
  firstFrameMs: 5_000,
  readMs: 30_000,
  backendMs: 30_000,
  sessionMs: 120_000,
};

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
  | 'peer_closed'
  /** Closed because the proxy's shared receive budget was spent (`proxy.buffer_budget`). */
  | 'overloaded'
  /** The guest spoke another dialect than its listener's (`proxy.dialect.mismatch`). */
  | 'dialect_mismatch';

export interface SessionOptions {
  readonly backend: ProxyBackend;
  readonly logger: Logger;
  readonly timeouts: ProxyTimeouts;
  readonly sessionId: string;
  readonly peer: string;
  /** Aborts when the proxy is closing. */
  readonly closing: AbortSignal;
  /** The proxy-wide receive budget this session's buffered bytes are charged to. */
  readonly budget?: BufferBudget;
  /** The listener's dialect (default `main`; docs/protocol.md "Dialects"). */
  readonly dialect?: Dialect;
  /** Required for a `pr1203` listener: where its ProxyRequests go. */
  readonly forwarder?: ProxyForwarder;
}

/**
 * Serves one guest connection (reference svsm-protocol.md §2; docs/protocol.md): NegotiationRequest ->
 * NegotiationResponse -> AttestationRequest -> AttestationResponse, then for 0.1.0 read to EOF, for 0.2.0 an
 * optional Commit -> CommitResponse; or (0.2.0) a Heartbeat / End -> LeaseResponse on its own connection. Never throws: every failure ends this session only, as a 0.2.0
 * ErrorReply, a 0.1.0 `{"success":false}` (after negotiation) or a dropped connection (before it, as aproxy).
 */
export async function runSession(socket: Socket, o: SessionOptions): Promise<SessionOutcome> {
  const log = o.logger;
  const io = new FramedSocket(socket, o.budget);
  const started = Date.now();
  const sessionTimer = setTimeout(() => {
    log.warn({ event: 'session_timeout', ms: o.timeouts.sessionMs }, 'session exceeded its time limit');
    socket.destroy();
  }, o.timeouts.sessionMs);
  const onClosing = () => socket.destroy();
  o.closing.addEventListener('abort', onClosing, { once: true });
  let outcome: SessionOutcome = 'peer_closed';
  try {
    outcome = await serve({ io, o, log });
  } catch (e) {
    outcome = classify(e);
    const level = outcome === 'overloaded' ? 'warn' : 'info';
    log[level]({ event: 'session_error', outcome, ...describeError(e) }, 'session ended early');
  } finally {
    clearTimeout(sessionTimer);
    o.closing.removeEventListener('abort', onClosing);
    io.release();
    socket.end();
    socket.destroySoon();
    log.info({ event: 'session_end', outcome, ms: Date.now() - started }, 'session closed');
  }
  return outcome;
}

/** One connection being served. */
interface Session {
  readonly io: FramedSocket;
  readonly o: SessionOptions;
  readonly log: Logger;
}

/** After negotiation: the version spoken and the challenge the backend issued. */
interface Negotiated extends Session {
  readonly dialect: Dialect;
  readonly version: ProtocolVersion;
  readonly negotiation: NegotiationResponse;
}

/** What a message handler decides: the next handler to run, or the session's outcome. */
type Next = { readonly run: () => Promise<Next> } | { readonly outcome: SessionOutcome };

/**
 * The session as a chain of message handlers; this loop only dispatches. Each handler reads its message,
 * answers it, and names what comes next (reference svsm-protocol.md §2 for the 0.1.0 order).
 */
async function serve(s: Session): Promise<SessionOutcome> {
  let next: Next = { run: () => onOpening(s) };
  while ('run' in next) next = await next.run();
  return next.outcome;
}

const done = (outcome: SessionOutcome): Next => ({ outcome });

/** After the last reply: wait for the guest to close, then end with `outcome`. */
const drainThen = (s: Session, outcome: SessionOutcome): Next => ({
  run: async () => {
    await drain(s.io, s.o.timeouts.readMs);
    return done(outcome);
  },
});

/**
 * The opening message: a NegotiationRequest, or (0.2.0) a Heartbeat / End on a connection of its own. It
 * has the short first-frame deadline. Until a version is known there is nobody to send an error to: drop,
 * as aproxy does (a 0.2.0-looking opening gets an ErrorReply).
 */
async function onOpening(s: Session): Promise<Next> {
  const { io, o } = s;
  const first = await io.read(Math.min(o.timeouts.firstFrameMs, o.timeouts.readMs));
  if (first === undefined) return done('peer_closed');
  let opening: ReturnType<typeof parseOpeningMessage>;
  const unknown: string[] = [];
  try {
    opening = parseOpeningMessage(first, unknown);
    logUnknownFields(s.log, 'NegotiationRequest', unknown);
  } catch (e) {
    if (isAttestationError(e) && peekVersion(first) === '0.2.0') {
      await io.write(encodeErrorReply(refusalOf(e, 'malformed')));
    }
    throw e;
  }
  const opened = opening;
  const dialect = o.dialect ?? 'main';
  if (dialect !== 'main') return { run: () => onProposalOpening(s, dialect, opened) };
  if (opened.kind === 'lease') return { run: () => onLease(s, opened.request) };
  return { run: () => onNegotiation(s, opened.request, 'main') };
}

/**
 * The opening on a listener of one of the proposals (svsm PR #1122, PR #1203): both send main's
 * NegotiationRequest with version [0,1,0] and drop any other version, as their aproxy does; neither has an
 * error message, so every refusal here closes the connection.
 */
async function onProposalOpening(
  s: Session,
  dialect: 'pr1122' | 'pr1203',
  opened: ReturnType<typeof parseOpeningMessage>,
): Promise<Next> {
  const { log, o } = s;
  if (opened.kind === 'lease') {
    log.info(
      {
        event: 'refused',
        reason: 'proxy.dialect.mismatch',
        listener_dialect: dialect,
        guest_dialect: 'main',
      },
      'a 0.2.0 lease request on a listener of another dialect',
    );
    return done('dialect_mismatch');
  }
  const { version, tee } = opened.request;
  if (versionFromTuple(version) !== '0.1.0' || tee !== 'snp') {
    log.info({ event: 'unsupported_version', version: version.join('.'), tee, dialect }, 'not served');
    return done('unsupported');
  }
  if (dialect === 'pr1122') return { run: () => onNegotiation(s, opened.request, 'pr1122') };
  const forwarder = o.forwarder;
  if (!forwarder) {
    log.error({ event: 'backend_failed', reason: 'proxy.forward.unconfigured' }, 'no forwarder for pr1203');
    return done('backend_error');
  }
  log.info({ event: 'negotiate', version: '0.1.0', tee, dialect }, 'config request');
  const outcome = await serveForwarding(s.io, forwarder, o.timeouts.readMs, log, (fn) => callBackend(o, fn));
  return done(outcome);
}

/** NegotiationRequest -> the backend's challenge and parameters -> NegotiationResponse. */
async function onNegotiation(
  s: Session,
  request: NegotiationRequest,
  dialect: 'main' | 'pr1122',
): Promise<Next> {
  const { io, o, log } = s;
  const version = versionFromTuple(request.version);
  const tee = request.tee;
  if (version === undefined) {
    // A guest speaking a version we do not know is told so in the 0.2.0 error format (0.1.0 guests never
    // send another version); aproxy would drop it.
    return done(await unsupportedVersion(s, request.version));
  }
  log.info({ event: 'negotiate', version, tee }, 'negotiation request');
  if (tee !== 'snp') {
    if (version === '0.1.0') return done('unsupported'); // aproxy: unsupported TEE -> error -> drop
    return done(
      await refuse(s, version, {
        code: ErrorCode.NotSupported,
        reason: 'aproxy.tee',
        message: 'only snp',
        outcome: 'unsupported',
      }),
    );
  }
  let negotiation: NegotiationResponse;
  let negotiationBytes: Uint8Array;
  try {
    negotiation = await callBackend(o, (ctx) =>
      o.backend.negotiate({ tee: 'snp', version, ...(dialect === 'main' ? {} : { dialect }) }, ctx),
    );
    negotiationBytes =
      dialect === 'pr1122'
        ? encodeNegotiationResponse1122({ challenge: negotiation.challenge, ...bindingFor1122(negotiation) })
        : encodeNegotiationResponse(negotiation, version);
  } catch (e) {
    const r = backendFailure(e);
    if (version === '0.1.0') {
      log.warn({ event: 'backend_failed', step: 'negotiate', reason: r.reason }, 'backend failed');
      return done(r.outcome); // no 0.1.0 message can carry an error here; aproxy drops too
    }
    return done(await refuse(s, version, r));
  }
  await io.write(negotiationBytes);
  const negotiated: Negotiated = { ...s, version, negotiation, dialect };
  return { run: () => onAttestation(negotiated) };
}

/** AttestationRequest -> the backend's decision -> AttestationResponse (the released secret, or a refusal). */
async function onAttestation(s: Negotiated): Promise<Next> {
  const { io, o, log, version, negotiation, dialect } = s;
  const reqBytes = await io.read(o.timeouts.readMs);
  if (reqBytes === undefined) {
    // A guest of another dialect cannot read our reply and hangs up here: say so in the log.
    if (version === '0.1.0')
      log.info({ event: 'closed_after_negotiation', dialect }, 'guest left after negotiation');
    return done('peer_closed');
  }
  let req: ReturnType<typeof parseAttestationRequest>;
  const unknown: string[] = [];
  try {
    req =
      dialect === 'pr1122'
        ? parseAttestationRequest1122(reqBytes, unknown)
        : parseAttestationRequest(reqBytes, version, unknown);
    logUnknownFields(log, 'AttestationRequest', unknown);
  } catch (e) {
    if (!isAttestationError(e)) throw e;
    const seen = version === '0.1.0' ? sniffDialect(reqBytes) : undefined;
    if (seen !== undefined && seen !== dialect) {
      return done(
        await failAttestation(s, {
          code: ErrorCode.NotSupported,
          reason: 'proxy.dialect.mismatch',
          message: `this listener speaks ${dialect}; the guest sent a ${seen} message`,
          outcome: 'dialect_mismatch',
        }),
      );
    }
    return done(await failAttestation(s, refusalOf(e, 'malformed')));
  }
  if (req.tee !== 'snp') {
    return done(
      await failAttestation(s, {
        code: ErrorCode.NotSupported,
        reason: 'aproxy.tee',
        message: 'only snp',
        outcome: 'unsupported',
      }),
    );
  }
  // Defense in depth only: the backend checks the challenge itself (the proxy is not trusted).
  if (!ctEqual(req.challenge, negotiation.challenge)) {
    return done(
      await failAttestation(s, {
        code: ErrorCode.BindingMismatch,
        reason: 'aproxy.challenge',
        message: 'challenge does not match the negotiated one',
        outcome: 'refused',
      }),
    );
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
          ...(version === '0.2.0'
            ? { stateCounter: req.stateCounter ?? null, stateDigest: req.stateDigest ?? null }
            : {}),
          ...(version === '0.2.0' && req.stateKeyVersion !== undefined
            ? { stateKeyVersion: req.stateKeyVersion }
            : {}),
        },
        ctx,
      ),
    );
    if (result.outcome === 'refused') return done(await failAttestation(s, refusalFromBackend(result.error)));
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
    log.warn({ event: 'backend_failed', step: 'attest', ...describeError(e) }, 'backend failed');
    return done(await failAttestation(s, backendFailure(e)));
  }
  await io.write(responseBytes);
  log.info({ event: 'released', version }, 'secret released to guest');
  // 0.1.0: aproxy reads to EOF after the response. 0.2.0: an optional Commit may follow.
  if (version === '0.1.0') return drainThen(s, 'released');
  const challenge = req.challenge;
  return { run: () => onCommit(s, challenge) };
}

/** 0.2.0 Commit (optional; EOF instead ends the session as released) -> the backend -> CommitResponse. */
async function onCommit(s: Negotiated, challenge: Uint8Array): Promise<Next> {
  const { io, o, log } = s;
  const commitBytes = await io.read(o.timeouts.readMs);
  if (commitBytes === undefined) return done('released');
  let commit: ReturnType<typeof parseCommitRequest>;
  try {
    commit = parseCommitRequest(commitBytes);
  } catch (e) {
    if (!isAttestationError(e)) throw e;
    return done(await refuse(s, '0.2.0', refusalOf(e, 'malformed')));
  }
  let commitResponse: Uint8Array;
  try {
    const r = await callBackend(o, (ctx) =>
      o.backend.commit({ version: '0.2.0', ...commit, challenge }, ctx),
    );
    if (r.outcome === 'refused') return done(await refuse(s, '0.2.0', refusalFromBackend(r.error)));
    commitResponse = encodeCommitResponse({ success: true, signature: r.signature ?? null });
  } catch (e) {
    log.warn({ event: 'backend_failed', step: 'commit', ...describeError(e) }, 'backend failed');
    return done(await refuse(s, '0.2.0', backendFailure(e)));
  }
  await io.write(commitResponse);
  log.info({ event: 'committed', counter: commit.counter.toString() }, 'state version committed');
  return drainThen(s, 'committed');
}

/**
 * 0.2.0 Heartbeat / End (docs/protocol.md §6): one request, one reply (LeaseResponse or ErrorReply), then
 * wait for the guest to close. The backend decides; the proxy relays the acknowledgement and its signature.
 */
async function onLease(s: Session, req: LeaseRequest): Promise<Next> {
  const { io, o, log } = s;
  if (versionFromTuple(req.version) !== '0.2.0') return done(await unsupportedVersion(s, req.version));
  log.info({ event: req.op, version: '0.2.0' }, 'lease request');
  const refuseLease = async (r: Refusal): Promise<Next> => {
    log.info({ event: 'refused', step: req.op, code: r.code, reason: r.reason }, 'refusing guest');
    await io.write(encodeErrorReply(r));
    return done(r.outcome);
  };
  const backend = o.backend;
  if (!(req.op === 'heartbeat' ? backend.heartbeat : backend.end)) {
    return refuseLease({
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
      if (r.outcome === 'refused') return refuseLease(refusalFromBackend(r.error));
      reply = encodeLeaseResponse({
        op: 'heartbeat',
        leaseExpiresAt: r.leaseExpiresAt,
        signature: r.signature ?? null,
      });
    } else {
      const r = await callBackend(o, (ctx) => backend.end!(input, ctx));
      if (r.outcome === 'refused') return refuseLease(refusalFromBackend(r.error));
      reply = encodeLeaseResponse({ op: 'end', leaseExpiresAt: null, signature: r.signature ?? null });
    }
  } catch (e) {
    log.warn({ event: 'backend_failed', step: req.op, ...describeError(e) }, 'backend failed');
    return refuseLease(backendFailure(e));
  }
  await io.write(reply);
  const outcome: SessionOutcome = req.op === 'heartbeat' ? 'renewed' : 'ended';
  log.info({ event: outcome }, req.op === 'heartbeat' ? 'lease renewed' : 'boot ended');
  return drainThen(s, outcome);
}

/**
 * What a PR #1122 guest is told to bind: the backend's own binding, or its params when they are exactly
 * svsm main's KBS order (SHA-512 RawBinary). Anything else cannot be said in PR #1122's vocabulary.
 */
function bindingFor1122(n: { params: readonly string[]; binding?: DialectBinding }): DialectBinding {
  if (n.binding) return n.binding;
  if (n.params.length === 2 && n.params[0] === 'EcPublicKeyBytes' && n.params[1] === 'Challenge')
    return RAW_SHA512;
  throw new TypeError('backend params cannot be expressed as a PR #1122 hash_algo/payload_format');
}

/** Logs a refusal and, for 0.2.0, sends it as an ErrorReply (0.1.0 has no error message: the caller drops). */
async function refuse(s: Session, version: ProtocolVersion, r: Refusal): Promise<SessionOutcome> {
  s.log.info({ event: 'refused', code: r.code, reason: r.reason }, 'refusing guest');
  if (version === '0.2.0') await s.io.write(encodeErrorReply(r));
  return r.outcome;
}

/** A refused AttestationRequest: 0.2.0 ErrorReply, or the aproxy-compatible 0.1.0 `{"success":false}`. */
async function failAttestation(s: Negotiated, r: Refusal): Promise<SessionOutcome> {
  if (s.version === '0.1.0') {
    s.log.info({ event: 'refused', code: r.code, reason: r.reason }, 'refusing guest');
    await s.io.write(encodeAttestationResponse({ success: false, decryption: null, token: null }, '0.1.0'));
    return r.outcome;
  }
  return refuse(s, s.version, r);
}

/** Answers an unknown version with ERR_NOT_SUPPORTED `aproxy.version`. */
async function unsupportedVersion(s: Session, tuple: readonly number[]): Promise<SessionOutcome> {
  s.log.info({ event: 'unsupported_version', version: tuple.join('.') }, 'unsupported protocol version');
  await s.io.write(
    encodeErrorReply({
      code: ErrorCode.NotSupported,
      reason: 'aproxy.version',
      message: 'supported protocol versions: 0.1.0, 0.2.0 (lease messages: 0.2.0)',
    }),
  );
  return 'unsupported';
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

function classify(e: unknown): SessionOutcome {
  if (e instanceof ReadTimeout) return 'timeout';
  if (e instanceof PeerClosed) return 'peer_closed';
  if (e instanceof BufferBudgetExceeded) return 'overloaded';
  if (isAttestationError(e)) return 'malformed';
  return 'peer_closed';
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

/**
 * Logs the fields of a guest message that this proxy ignored (docs/protocol.md §4): aproxy ignores them
 * too, and a field a newer SVSM adds must not break only Vouchsafe. Names only (never values), at most
 * 16, each cut to 64 characters, so a hostile guest cannot make one log line large.
 */
function logUnknownFields(log: Logger, message: string, unknown: readonly string[]): void {
  if (unknown.length === 0) return;
  log.info(
    {
      event: 'unknown_fields',
      message,
      fields: unknown.slice(0, 16).map((f) => f.slice(0, 64)),
      count: unknown.length,
    },
    'guest message has fields this proxy does not read: ignored',
  );
}
