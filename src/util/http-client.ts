import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { InvalidArgument, Unavailable } from '../errors.js';

/**
 * The one HTTP(S) client every Vouchsafe caller of a broker or KBS uses (admin client, native and KBS proxy
 * backends): a base URL with an optional path prefix, a pinned CA for https, a connect deadline and a
 * deadline for the whole exchange, a bounded reply, no redirects followed, keep-alive connections.
 * Transport failures are {@link Unavailable} with the caller's reasons, so an unreachable service is never
 * reported as missing collateral.
 */
export interface HttpClientOptions {
  /** `http(s)://HOST[:PORT][/PREFIX]`: no credentials, query or fragment. Request paths go under it. */
  readonly baseUrl: string;
  /** PEM CA certificate(s) the server's certificate must chain to (https only; default the system CAs). */
  readonly ca?: string | Uint8Array;
  /** TCP connect plus TLS handshake must finish within this, ms (default 10 000; node transport only). */
  readonly connectTimeoutMs?: number;
  /** The whole exchange, connect to last byte, ms (default 30 000). */
  readonly timeoutMs?: number;
  /** Largest reply body read, bytes (default 1 MiB); a larger one is `reasons.badResponse`. */
  readonly maxReplyBytes?: number;
  /**
   * Connections open to the server at once (default 64; node transport only); requests beyond wait for a
   * free one, inside `timeoutMs`. A host proxy relaying a thousand guests that boot together would otherwise
   * open a thousand connections, and a broker closes those over its own cap (`maxConnections`, 512).
   */
  readonly maxSockets?: number;
  /** Stable reasons of the Unavailable errors this client throws, named for the service it calls. */
  readonly reasons: UnavailableReasons;
  /** Reason of the InvalidArgument thrown for bad options (default `http.config`). */
  readonly configReason?: string;
  /** Replaces node:http(s), e.g. in tests; cannot be combined with `ca`. */
  readonly fetch?: typeof globalThis.fetch;
}

export interface UnavailableReasons {
  /** Connection refused, DNS, TLS handshake (e.g. a certificate that does not chain to the pinned CA). */
  readonly unreachable: string;
  /** A deadline expired, or the caller's signal aborted the exchange. */
  readonly timeout: string;
  /** A reply over `maxReplyBytes`. */
  readonly badResponse: string;
}

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Appended to the base URL, e.g. `/v1/challenge` (may carry a query). */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Aborts the exchange (then `reasons.timeout`). */
  readonly signal?: AbortSignal;
}

export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

export interface HttpClient {
  /** The checked base URL. */
  readonly baseUrl: URL;
  /** One exchange. Any status is a reply; only transport failures throw (Unavailable). */
  request(r: HttpRequest): Promise<HttpReply>;
  /**
   * Sends `body` (if any) as JSON and parses the reply as JSON (`body` undefined when it is not JSON).
   * Throws as {@link HttpClient.request}.
   */
  json(
    method: HttpRequest['method'],
    path: string,
    body?: unknown,
    o?: { readonly headers?: Readonly<Record<string, string>>; readonly signal?: AbortSignal },
  ): Promise<{ readonly status: number; readonly body: unknown; readonly headers: Headers }>;
  /** Closes idle keep-alive connections. */
  close(): void;
}

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  timeoutMs: 30_000,
  maxReplyBytes: 1 << 20,
  maxSockets: 64,
} as const;

/**
 * Creates a client. Throws InvalidArgument (`configReason`) for a URL that is not http(s) or carries
 * credentials, a query or a fragment; a non-positive deadline or bound; a CA with an http URL or with an
 * injected fetch.
 */
export function createHttpClient(o: HttpClientOptions): HttpClient {
  const why = o.configReason ?? 'http.config';
  const base = checkBaseUrl(o.baseUrl, why);
  const limits = {
    connectTimeoutMs: o.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    timeoutMs: o.timeoutMs ?? DEFAULTS.timeoutMs,
    maxReplyBytes: o.maxReplyBytes ?? DEFAULTS.maxReplyBytes,
    maxSockets: o.maxSockets ?? DEFAULTS.maxSockets,
  };
  for (const [k, v] of Object.entries(limits)) {
    if (!(Number.isSafeInteger(v) && v > 0))
      throw new InvalidArgument(why, `${k} must be a positive integer`);
  }
  if (o.ca !== undefined && base.protocol !== 'https:') {
    throw new InvalidArgument(why, 'a pinned CA needs an https:// URL');
  }
  if (o.ca !== undefined && o.fetch !== undefined) {
    throw new InvalidArgument(why, 'a pinned CA cannot be combined with an injected fetch');
  }
  const prefix = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
  const transport = o.fetch
    ? viaFetch(o.fetch, limits.maxReplyBytes, o.reasons)
    : viaNode(base, o.ca, limits, o.reasons);

  const request = async (r: HttpRequest): Promise<HttpReply> => {
    const d = deadline(limits.timeoutMs, r.signal);
    try {
      return await transport.send(new URL(`${prefix}${r.path}`), r, d.signal);
    } catch (e) {
      if (e instanceof Unavailable) throw e;
      if (d.signal.aborted) {
        throw new Unavailable(
          o.reasons.timeout,
          d.expired() ? `no complete answer within ${limits.timeoutMs} ms` : 'the request was cancelled',
        );
      }
      throw new Unavailable(o.reasons.unreachable, `cannot reach ${base.host}: ${describe(e)}`);
    } finally {
      d.done();
    }
  };

  return {
    baseUrl: base,
    request,
    async json(method, path, body, opts = {}) {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const reply = await request({
        method,
        path,
        headers: {
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
        ...(payload !== undefined ? { body: payload } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      return { status: reply.status, body: parseJson(reply.body), headers: reply.headers };
    },
    close: () => transport.close(),
  };
}

/** Checks a service base URL: http(s), no credentials, query or fragment. Throws InvalidArgument `reason`. */
export function checkBaseUrl(url: string, reason: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgument(reason, `not a URL: ${url}`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.search || u.hash) {
    throw new InvalidArgument(reason, 'the URL must be http(s)://HOST[:PORT][/PATH]');
  }
  return u;
}

function parseJson(b: Uint8Array): unknown {
  if (b.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(b).toString('utf8'));
  } catch {
    return undefined;
  }
}

function describe(e: unknown): string {
  const x = e as NodeJS.ErrnoException | undefined;
  return String(x?.code ?? x?.message ?? 'error').slice(0, 200);
}

/** An AbortSignal that fires at the deadline or when `outer` aborts; `expired` tells which. */
function deadline(ms: number, outer: AbortSignal | undefined) {
  const ac = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    ac.abort();
  }, ms);
  const onOuter = () => ac.abort();
  if (outer?.aborted) ac.abort();
  else outer?.addEventListener('abort', onOuter, { once: true });
  return {
    signal: ac.signal,
    expired: () => expired,
    done: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}

interface Transport {
  send(url: URL, r: HttpRequest, signal: AbortSignal): Promise<HttpReply>;
  close(): void;
}

function tooLarge(reasons: UnavailableReasons, max: number): Unavailable {
  return new Unavailable(reasons.badResponse, `the reply is larger than ${max} bytes`);
}

function viaNode(
  base: URL,
  ca: string | Uint8Array | undefined,
  limits: { connectTimeoutMs: number; maxReplyBytes: number; maxSockets: number },
  reasons: UnavailableReasons,
): Transport {
  const https = base.protocol === 'https:';
  const { maxSockets } = limits;
  const agent = https
    ? new HttpsAgent({ keepAlive: true, maxSockets, ...(ca !== undefined ? { ca: Buffer.from(ca) } : {}) })
    : new HttpAgent({ keepAlive: true, maxSockets });
  const send = https ? httpsRequest : httpRequest;
  return {
    close: () => agent.destroy(),
    send: (url, r, signal) =>
      new Promise<HttpReply>((resolve, reject) => {
        const body = typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : r.body;
        const req = send(
          url,
          {
            method: r.method,
            agent,
            signal,
            headers: { ...r.headers, 'content-length': String(body?.length ?? 0) },
          },
          (res: IncomingMessage) => {
            const declared = Number(res.headers['content-length'] ?? 0);
            if (declared > limits.maxReplyBytes) {
              reject(tooLarge(reasons, limits.maxReplyBytes));
              res.destroy();
              return;
            }
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (c: Buffer) => {
              size += c.length;
              if (size > limits.maxReplyBytes) {
                reject(tooLarge(reasons, limits.maxReplyBytes));
                res.destroy();
              } else chunks.push(c);
            });
            res.on('end', () => {
              const headers = new Headers();
              for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
                headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
              }
              resolve({ status: res.statusCode ?? 0, headers, body: new Uint8Array(Buffer.concat(chunks)) });
            });
            res.on('error', reject);
            res.on('aborted', () => reject(new Error('aborted')));
          },
        );
        // The connect deadline covers TCP and, for https, the TLS handshake; a reused socket is connected.
        req.on('socket', (s: Socket) => {
          if (!s.connecting) return;
          const t = setTimeout(() => {
            req.destroy();
            reject(new Unavailable(reasons.timeout, `no connection within ${limits.connectTimeoutMs} ms`));
          }, limits.connectTimeoutMs);
          s.once(https ? 'secureConnect' : 'connect', () => clearTimeout(t));
          s.once('close', () => clearTimeout(t));
        });
        req.on('error', reject);
        req.end(body);
      }),
  };
}

function viaFetch(fetchImpl: typeof globalThis.fetch, max: number, reasons: UnavailableReasons): Transport {
  return {
    close: () => {},
    async send(url, r, signal) {
      const res = await fetchImpl(url, {
        method: r.method,
        ...(r.headers ? { headers: r.headers } : {}),
        ...(r.body !== undefined ? { body: r.body } : {}),
        // As the node transport: a 3xx is returned as it is, never followed.
        redirect: 'manual',
        signal,
      });
      if (Number(res.headers.get('content-length') ?? 0) > max) {
        await res.body?.cancel();
        throw tooLarge(reasons, max);
      }
      const chunks: Uint8Array[] = [];
      let size = 0;
      if (res.body) {
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.length;
          if (size > max) {
            await reader.cancel();
            throw tooLarge(reasons, max);
          }
          chunks.push(value);
        }
      }
      return { status: res.status, headers: res.headers, body: new Uint8Array(Buffer.concat(chunks)) };
    },
  };
}
