import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { InvalidArgument } from '../errors.js';
import type { ProxyBackend } from './backend.js';
import {
  type ChannelAddress,
  formatChannelAddress,
  parseChannelAddress,
  removeStaleUnixSocket,
} from './listen-address.js';
import { DEFAULT_TIMEOUTS, type ProxyTimeouts, runSession, type SessionOutcome } from './session.js';

export interface ProxyOptions {
  /** `unix:PATH` or `tcp:HOST:PORT` (port 0 picks a free port; see `RunningProxy.address`). */
  readonly listen: string;
  readonly backend: ProxyBackend;
  readonly logger: Logger;
  readonly timeouts?: Partial<ProxyTimeouts>;
  /** Connections served at once; more are refused by the kernel backlog / closed (default 1024). */
  readonly maxSessions?: number;
  /** How long close() lets running sessions finish before cutting them (default 5 s). */
  readonly closeGraceMs?: number;
}

export interface RunningProxy {
  /** The bound address, e.g. `tcp:127.0.0.1:40123` or `unix:/run/vouchsafe/aproxy.sock`. */
  readonly address: string;
  /** Sessions in progress. */
  activeSessions(): number;
  /** Counts of finished sessions by outcome (for metrics and tests). */
  outcomes(): Readonly<Record<string, number>>;
  /** Stops accepting, lets running sessions finish (up to the grace period), then cuts them; removes the unix socket. */
  close(): Promise<void>;
}

/**
 * Starts the host attestation proxy (docs/protocol.md): accepts guests on a unix socket or TCP, serves each
 * connection as an independent session against `backend`, and never lets one session's failure (a
 * malformed or silent guest, a backend outage) affect another or the listener. Logs are structured (pino)
 * and carry session ids, versions, outcomes and error reasons, never challenges, keys, reports or secrets.
 *
 * For a unix socket, a stale socket file is removed first only if nothing listens on it
 * (removeStaleUnixSocket). Throws InvalidArgument `proxy.address`, `proxy.listen.*`, `proxy.timeouts`.
 */
export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const addr = parseChannelAddress(opts.listen);
  const timeouts: ProxyTimeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  for (const [k, v] of Object.entries(timeouts)) {
    if (!(Number.isFinite(v) && v > 0)) throw new InvalidArgument('proxy.timeouts', `${k} must be > 0 ms`);
  }
  const grace = opts.closeGraceMs ?? 5000;
  const closing = new AbortController();
  // Every session (and each of its backend calls) listens for close(); thousands at once is expected.
  setMaxListeners(0, closing.signal);
  const sessions = new Set<Socket>();
  const running = new Set<Promise<SessionOutcome>>();
  const counts: Record<string, number> = Object.create(null);
  const log = opts.logger.child({ component: 'aproxy' });

  const server: Server = createServer({ allowHalfOpen: false, pauseOnConnect: false }, (socket) => {
    const sessionId = randomBytes(8).toString('hex');
    const peer = socket.remoteAddress ? `tcp:${socket.remoteAddress}:${socket.remotePort}` : 'unix';
    sessions.add(socket);
    socket.on('error', () => {}); // reported through the session's reads and writes
    const p = runSession(socket, {
      backend: opts.backend,
      logger: log.child({ session: sessionId, peer }),
      timeouts,
      sessionId,
      peer,
      closing: closing.signal,
    })
      .then((outcome) => {
        counts[outcome] = (counts[outcome] ?? 0) + 1;
        return outcome;
      })
      .finally(() => {
        sessions.delete(socket);
        running.delete(p);
      });
    running.add(p);
  });
  server.maxConnections = opts.maxSessions ?? 1024;
  server.on('error', (e) => log.error({ event: 'listener_error', error: e.message }, 'listener error'));

  if (addr.kind === 'unix') {
    if (await removeStaleUnixSocket(addr.path)) {
      log.warn({ event: 'stale_socket_removed', path: addr.path }, 'removed a stale socket file');
    }
  }
  await listen(server, addr);
  const bound = boundAddress(server, addr);
  log.info({ event: 'listening', address: bound }, 'attestation proxy listening');

  let closed: Promise<void> | undefined;
  return {
    address: bound,
    activeSessions: () => sessions.size,
    outcomes: () => ({ ...counts }),
    close() {
      closed ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
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
        for (const s of sessions) s.destroy();
        await Promise.allSettled([...running]);
        await stopped;
        if (addr.kind === 'unix') await unlink(addr.path).catch(() => {});
        log.info({ event: 'closed' }, 'attestation proxy closed');
      })();
      return closed;
    },
  };
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
