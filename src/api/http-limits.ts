import type { Server } from 'node:http';
import { InvalidArgument } from '../errors.js';

/**
 * Limits on the broker's HTTP server sockets. Node and fastify leave most of them off (0), which lets a
 * client that sends half a request, or simply opens sockets, hold descriptors for as long as it likes: the
 * broker then refuses new clients once the process's descriptor limit is reached.
 */
export interface HttpLimits {
  /** Time to receive a request's complete headers (Node `server.headersTimeout`). Default 10 000 ms. */
  readonly headersTimeoutMs: number;
  /** Time to receive a whole request, body included (Node `server.requestTimeout`). Default 30 000 ms. */
  readonly requestTimeoutMs: number;
  /** An idle socket (no bytes either way) is destroyed after this (fastify `connectionTimeout`). Default 60 000 ms. */
  readonly connectionTimeoutMs: number;
  /** A kept-alive socket with no request is closed after this (fastify `keepAliveTimeout`). Default 5 000 ms. */
  readonly keepAliveTimeoutMs: number;
  /** Requests served on one socket before it is closed; 0: no limit. Default 1 000. */
  readonly maxRequestsPerSocket: number;
  /**
   * Open sockets at once (Node `server.maxConnections`); sockets over it are closed on accept. Default 512,
   * below the common 1 024 descriptor limit so the store, KDS and logs keep theirs.
   */
  readonly maxConnections: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  connectionTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 1_000,
  maxConnections: 512,
});

/**
 * Fills in the defaults and checks the values. Throws InvalidArgument `api.http_limits` for a value that is
 * not a positive integer (maxRequestsPerSocket may be 0) or headers allowed longer than the whole request
 * (Node refuses that combination).
 */
export function resolveHttpLimits(given: Partial<HttpLimits> = {}): HttpLimits {
  const l = { ...DEFAULT_HTTP_LIMITS, ...given };
  for (const [k, v] of Object.entries(l)) {
    const min = k === 'maxRequestsPerSocket' ? 0 : 1;
    if (!Number.isSafeInteger(v) || v < min) {
      throw new InvalidArgument('api.http_limits', `${k} must be an integer >= ${min}`);
    }
  }
  if (l.headersTimeoutMs > l.requestTimeoutMs) {
    throw new InvalidArgument('api.http_limits', 'headersTimeoutMs must not exceed requestTimeoutMs');
  }
  return l;
}

/** The fastify options that carry the limits (the rest is set on the server by applyHttpLimits). */
export function fastifyLimitOptions(l: HttpLimits) {
  return {
    connectionTimeout: l.connectionTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    maxRequestsPerSocket: l.maxRequestsPerSocket,
    // Node checks the header and request deadlines on this interval (default 30 s, longer than the
    // deadlines themselves): a quarter of the shorter one, between 10 ms and 1 s.
    http: { connectionsCheckingInterval: checkingInterval(l) },
  };
}

/** What fastify does not set from its options: the header deadline and the connection cap. */
export function applyHttpLimits(server: Server, l: HttpLimits): void {
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.maxConnections = l.maxConnections;
}

export function checkingInterval(l: HttpLimits): number {
  return Math.min(1_000, Math.max(10, Math.floor(Math.min(l.headersTimeoutMs, l.requestTimeoutMs) / 4)));
}
