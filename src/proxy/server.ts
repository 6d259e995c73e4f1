import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { InvalidArgument } from '../errors.js';
import { type Dialect, isDialect } from '../formats/aproxy/dialect.js';
import { Admission, type AdmissionKey } from './admission.js';
import type { ProxyBackend } from './backend.js';
import { BufferBudget } from './buffer-budget.js';
import type { ProxyForwarder } from './forward-session.js';
import {
  type ChannelAddress,
  formatChannelAddress,
  parseChannelAddress,
  removeStaleUnixSocket,
} from './listen-address.js';
import { DEFAULT_TIMEOUTS, type ProxyTimeouts, runSession, type SessionOutcome } from './session.js';

/** Admission and memory limits (docs/protocol.md §8, "Limits"). */
export interface ProxyLimits {
  /** Sessions served at once, over all listeners (default 1024). */
  readonly maxSessions: number;
  /**
   * Connections one TCP peer address may hold, served or waiting (default 32); more are closed at once
   * (`proxy.limit.peer`). Unix-socket peers have no address: see maxSessionsPerListener.
   */
  readonly maxSessionsPerPeer: number;
  /**
   * Connections one listener may hold, served or waiting (default: none, only the global limits). With one
   * unix socket per VM (docs/protocol.md §1) this is the per-VM cap (`proxy.limit.listener`).
   */
  readonly maxSessionsPerListener?: number;
  /** Connections that may wait for a free slot when all maxSessions are taken (default 1024). */
  readonly maxQueued: number;
  /** How long a connection may wait for a slot before it is closed (default 10 s). */
  readonly queueWaitMs: number;
  /** Bytes received and not yet consumed, over all sessions (default 64 MiB; a session needs up to ~2 MiB). */
  readonly maxBufferedBytes: number;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  maxSessions: 1024,
  maxSessionsPerPeer: 32,
  maxQueued: 1024,
  queueWaitMs: 10_000,
  maxBufferedBytes: 64 * 1024 * 1024,
};

export interface ProxyOptions {
  /**
   * `unix:PATH` or `tcp:HOST:PORT` (port 0 picks a free port; see `RunningProxy.addresses`), or several:
   * e.g. one unix socket per VM, each its own peer for maxSessionsPerListener.
   */
  readonly listen: string | readonly string[];
  /**
   * The message dialect of each listener (docs/protocol.md "Dialects"): one for all, or one per `listen`
   * address in the same order (default `main`). The guests' opening message is the same in all three, so
   * the operator names it.
   */
  readonly dialect?: Dialect | readonly Dialect[];
  /** Where `pr1203` listeners forward (required when one is configured). */
  readonly forwarder?: ProxyForwarder;
  readonly backend: ProxyBackend;
  readonly logger: Logger;
  readonly timeouts?: Partial<ProxyTimeouts>;
  readonly limits?: Partial<ProxyLimits>;
  /** How long close() lets running sessions finish before cutting them (default 5 s). */
  readonly closeGraceMs?: number;
}

export interface RunningProxy {
  /** The first bound address, e.g. `tcp:127.0.0.1:40123` or `unix:/run/vouchsafe/aproxy.sock`. */
  readonly address: string;
  /** Every bound address, in the order given. */
  readonly addresses: readonly string[];
  /** Sessions in progress. */
  activeSessions(): number;
  /** Connections waiting for a free slot. */
  queuedConnections(): number;
  /** Bytes received from guests and not yet consumed, over all sessions. */
  bufferedBytes(): number;
  /**
   * Counts of finished sessions by outcome, and of connections turned away by reason (`proxy.limit.*`), for
   * metrics and tests.
   */
  outcomes(): Readonly<Record<string, number>>;
  /** Stops accepting, lets running sessions finish (up to the grace period), then cuts them; removes unix sockets. */
  close(): Promise<void>;
}

/**
 * Starts the host attestation proxy (docs/protocol.md): accepts guests on unix sockets or TCP, serves each
 * connection as an independent session against `backend`, and never lets one session's failure (a
 * malformed or silent guest, a backend outage) affect another or the listener. Logs are structured (pino)
 * and carry session ids, versions, outcomes and error reasons, never challenges, keys, reports or secrets.
 *
 * One peer cannot take the host's attestations down: a connection must send its opening frame within
 * `timeouts.firstFrameMs`; a TCP peer address holds at most `limits.maxSessionsPerPeer` connections and a
 * listener at most `limits.maxSessionsPerListener`; connections beyond `limits.maxSessions` wait in a
 * bounded queue for a bounded time instead of being closed; and the bytes buffered across all sessions are
 * bounded by `limits.maxBufferedBytes` (the session that would overrun it is closed, `proxy.buffer_budget`).
 *
 * For a unix socket, a stale socket file is removed first only if nothing listens on it
 * (removeStaleUnixSocket). Throws InvalidArgument `proxy.address`, `proxy.listen.*`, `proxy.timeouts`,
 * `proxy.limits`.
 */
export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const listens = typeof opts.listen === 'string' ? [opts.listen] : [...opts.listen];
  if (listens.length === 0) throw new InvalidArgument('proxy.address', 'no listen address');
  const addrs = listens.map(parseChannelAddress);
  const dialects = resolveDialects(opts.dialect, listens.length);
  if (dialects.includes('pr1203') && !opts.forwarder) {
    throw new InvalidArgument('proxy.dialect', 'a pr1203 listener needs a forwarder');
  }
  const timeouts: ProxyTimeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  for (const [k, v] of Object.entries(timeouts)) {
    if (!(Number.isFinite(v) && v > 0)) throw new InvalidArgument('proxy.timeouts', `${k} must be > 0 ms`);
  }
  const limits = resolveLimits(opts.limits);
  const grace = opts.closeGraceMs ?? 5000;
  const closing = new AbortController();
  // Every session (and each of its backend calls) listens for close(); thousands at once is expected.
  setMaxListeners(0, closing.signal);
  const sockets = new Set<Socket>();
  const running = new Set<Promise<SessionOutcome>>();
  const counts: Record<string, number> = Object.create(null);
  const count = (k: string) => {
    counts[k] = (counts[k] ?? 0) + 1;
  };
  const log = opts.logger.child({ component: 'aproxy' });
  const budget = new BufferBudget(limits.maxBufferedBytes);
  const admission = new Admission({
    maxActive: limits.maxSessions,
    maxQueued: limits.maxQueued,
    queueWaitMs: limits.queueWaitMs,
  });

  const accept = (listener: string, dialect: Dialect, socket: Socket) => {
    const sessionId = randomBytes(8).toString('hex');
    const peer = socket.remoteAddress ? `tcp:${socket.remoteAddress}:${socket.remotePort}` : 'unix';
    const slog = log.child({ session: sessionId, peer, ...(addrs.length > 1 ? { listener } : {}) });
    sockets.add(socket);
    socket.on('error', () => {}); // reported through the session's reads and writes
    let started = false;
    let refused = false;
    const ticket = admission.offer({
      keys: admissionKeys(listener, socket, limits),
      start: () => {
        started = true;
        if (socket.destroyed) {
          ticket.done();
          sockets.delete(socket);
          return;
        }
        socket.resume();
        const p = runSession(socket, {
          backend: opts.backend,
          logger: slog,
          timeouts,
          sessionId,
          peer,
          closing: closing.signal,
          budget,
          dialect,
          ...(opts.forwarder ? { forwarder: opts.forwarder } : {}),
        })
          .then((outcome) => {
            count(outcome);
            return outcome;
          })
          .finally(() => {
            ticket.done();
            sockets.delete(socket);
            running.delete(p);
          });
        running.add(p);
      },
      refuse: (reason) => {
        refused = true;
        count(reason);
        slog.warn(
          { event: 'connection_refused', reason, queued: admission.queuedCount },
          'connection turned away',
        );
        sockets.delete(socket);
        socket.destroy();
      },
    });
    // A connection that gives up while it waits frees its place in the queue and its peer's share.
    socket.once('close', () => {
      if (!started) {
        ticket.done();
        sockets.delete(socket);
      }
    });
    if (!started && !refused) {
      slog.info({ event: 'queued', queued: admission.queuedCount }, 'all session slots taken; waiting');
    }
  };

  const servers: Server[] = [];
  const bound: string[] = [];
  try {
    for (const [i, addr] of addrs.entries()) {
      // pauseOnConnect: a connection that waits for a slot is not read, so it costs no buffer memory.
      const server: Server = createServer({ allowHalfOpen: false, pauseOnConnect: true });
      server.on('error', (e) => log.error({ event: 'listener_error', error: e.message }, 'listener error'));
      if (addr.kind === 'unix') {
        if (await removeStaleUnixSocket(addr.path)) {
          log.warn({ event: 'stale_socket_removed', path: addr.path }, 'removed a stale socket file');
        }
      }
      await listen(server, addr);
      servers.push(server);
      const name = boundAddress(server, addr);
      bound.push(name);
      const dialect = dialects[i]!;
      server.on('connection', (socket: Socket) => accept(name, dialect, socket));
      log.info({ event: 'listening', address: name, dialect }, 'attestation proxy listening');
    }
  } catch (e) {
    for (const [i, server] of servers.entries()) {
      server.close();
      const a = addrs[i]!;
      if (a.kind === 'unix') await unlink(a.path).catch(() => {});
    }
    throw e;
  }

  let closed: Promise<void> | undefined;
  return {
    address: bound[0]!,
    addresses: bound,
    activeSessions: () => admission.activeCount,
    queuedConnections: () => admission.queuedCount,
    bufferedBytes: () => budget.charged,
    outcomes: () => ({ ...counts }),
    close() {
      closed ??= (async () => {
        const stopped = servers.map(
          (server) => new Promise<void>((resolve) => server.close(() => resolve())),
        );
        admission.close();
        if (running.size > 0) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            Promise.allSettled([...running]),
            new Promise((r) => {
              timer = setTimeout(r, grace);
            }),
          ]);
          clearTimeout(timer);
        }
        closing.abort();
        for (const s of sockets) s.destroy();
        await Promise.allSettled([...running]);
        await Promise.all(stopped);
        for (const a of addrs) if (a.kind === 'unix') await unlink(a.path).catch(() => {});
        log.info({ event: 'closed' }, 'attestation proxy closed');
      })();
      return closed;
    },
  };
}

function resolveLimits(given: Partial<ProxyLimits> | undefined): ProxyLimits {
  const limits: ProxyLimits = { ...DEFAULT_LIMITS, ...given };
  for (const [k, v] of Object.entries(limits)) {
    if (k === 'maxSessionsPerListener' && v === undefined) continue;
    const min = k === 'maxQueued' ? 0 : 1;
    if (!(Number.isSafeInteger(v) && v >= min)) {
      throw new InvalidArgument('proxy.limits', `${k} must be an integer >= ${min}`);
    }
  }
  return limits;
}

/**
 * The keys a connection is counted under: its listener, and for TCP its peer's address (without the
 * port, and an IPv4-mapped IPv6 address as IPv4, so that one host is one peer however it connects).
 */
function admissionKeys(listener: string, socket: Socket, limits: ProxyLimits): AdmissionKey[] {
  const keys: AdmissionKey[] = [];
  if (limits.maxSessionsPerListener !== undefined) {
    keys.push({
      key: `listener:${listener}`,
      limit: limits.maxSessionsPerListener,
      refusal: 'proxy.limit.listener',
    });
  }
  const ip = socket.remoteAddress;
  if (ip) {
    const norm = ip.toLowerCase().startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip.toLowerCase();
    keys.push({ key: `tcp:${norm}`, limit: limits.maxSessionsPerPeer, refusal: 'proxy.limit.peer' });
  }
  return keys;
}

function listen(server: Server, addr: ChannelAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(
        new InvalidArgument(
          'proxy.listen.failed',
          `cannot listen on ${formatChannelAddress(addr)}: ${e.code}`,
        ),
      );
    };
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      resolve();
    };
    if (addr.kind === 'unix') server.listen(addr.path, done);
    else server.listen(addr.port, addr.host, done);
  });
}

function boundAddress(server: Server, addr: ChannelAddress): string {
  if (addr.kind === 'unix') return formatChannelAddress(addr);
  const a = server.address();
  if (a && typeof a === 'object') return formatChannelAddress({ kind: 'tcp', host: a.address, port: a.port });
  return formatChannelAddress(addr);
}

/** One dialect per listener. Throws InvalidArgument `proxy.dialect`. */
function resolveDialects(d: Dialect | readonly Dialect[] | undefined, n: number): Dialect[] {
  const list = d === undefined ? ['main'] : typeof d === 'string' ? [d] : [...d];
  if (list.length !== 1 && list.length !== n) {
    throw new InvalidArgument('proxy.dialect', 'give one dialect, or one per listen address');
  }
  for (const x of list) {
    if (!isDialect(x))
      throw new InvalidArgument('proxy.dialect', `unknown dialect ${String(x).slice(0, 32)}`);
  }
  return list.length === n ? (list as Dialect[]) : Array<Dialect>(n).fill(list[0] as Dialect);
}
