import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { InvalidArgument } from '../../../errors.js';
import { BrokerUnavailable } from './errors.js';

/** The broker's answer: status and parsed JSON body (undefined when the body is not JSON). */
export interface JsonReply {
  readonly status: number;
  readonly body: unknown;
}

/** POSTs JSON to a path under the broker URL and returns the reply; throws BrokerUnavailable on transport failure. */
export type PostJson = (path: string, body: unknown, signal: AbortSignal) => Promise<JsonReply>;

/** Largest reply accepted from the broker (a sealed 32-byte key is well under 4 KiB). */
const MAX_REPLY = 1024 * 1024;

export interface ClientOptions {
  readonly brokerUrl: string;
  /** PEM CA certificate(s) the broker's TLS certificate must chain to (https only). */
  readonly brokerCa?: string | Uint8Array;
  readonly timeoutMs: number;
  readonly fetch?: typeof globalThis.fetch;
}

/** Checks the broker URL: http(s), no credentials, query or fragment. */
export function checkBrokerUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgument('native.broker_url', `not a URL: ${url}`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.search || u.hash) {
    throw new InvalidArgument('native.broker_url', 'the broker URL must be http(s)://HOST[:PORT][/PATH]');
  }
  return u;
}

/**
 * A JSON-over-HTTP(S) client for the broker: node:http(s) with keep-alive and an optional CA (or an
 * injected fetch, for tests and custom transports), a deadline for the whole exchange, and a bounded reply.
 */
export function createPostJson(o: ClientOptions): PostJson {
  const base = checkBrokerUrl(o.brokerUrl);
  if (!(Number.isFinite(o.timeoutMs) && o.timeoutMs > 0)) {
    throw new InvalidArgument('native.timeout', 'timeoutMs must be > 0');
  }
  if (o.brokerCa !== undefined && base.protocol !== 'https:') {
    throw new InvalidArgument('native.broker_ca', 'a broker CA needs an https:// broker URL');
  }
  if (o.fetch) {
    if (o.brokerCa !== undefined) {
      throw new InvalidArgument('native.broker_ca', 'brokerCa cannot be combined with an injected fetch');
    }
    return viaFetch(base, o.timeoutMs, o.fetch);
  }
  return viaNode(base, o);
}

/** The URL of an API path under the broker URL (which may have a path prefix). */
function endpoint(base: URL, path: string): URL {
  return new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}${path}`);
}

function withDeadline(
  timeoutMs: number,
  outer: AbortSignal,
): { signal: AbortSignal; timedOut: () => boolean; done: () => void } {
  const ac = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    ac.abort();
  }, timeoutMs);
  const onOuter = () => ac.abort();
  if (outer.aborted) ac.abort();
  else outer.addEventListener('abort', onOuter, { once: true });
  return {
    signal: ac.signal,
    timedOut: () => expired || outer.aborted,
    done: () => {
      clearTimeout(timer);
      outer.removeEventListener('abort', onOuter);
    },
  };
}

function parseReply(status: number, text: Buffer): JsonReply {
  let body: unknown;
  try {
    body = JSON.parse(text.toString('utf8'));
  } catch {
    body = undefined;
  }
  return { status, body };
}

function viaNode(base: URL, o: ClientOptions): PostJson {
  const https = base.protocol === 'https:';
  const agent = https
    ? new HttpsAgent({
        keepAlive: true,
        ...(o.brokerCa !== undefined ? { ca: Buffer.from(o.brokerCa) } : {}),
      })
    : new HttpAgent({ keepAlive: true });
  const send = https ? httpsRequest : httpRequest;
  return (path, body, outer) =>
    new Promise<JsonReply>((resolve, reject) => {
      const payload = Buffer.from(JSON.stringify(body), 'utf8');
      const d = withDeadline(o.timeoutMs, outer);
      const fail = (e: unknown) => {
        d.done();
        reject(
          d.timedOut()
            ? new BrokerUnavailable(
                'native.broker_timeout',
                `the broker did not answer within ${o.timeoutMs} ms`,
              )
            : new BrokerUnavailable(
                'native.broker_unreachable',
                `cannot reach the broker: ${(e as NodeJS.ErrnoException)?.code ?? (e as Error)?.message ?? 'error'}`,
              ),
        );
      };
      const req = send(
        endpoint(base, path),
        {
          method: 'POST',
          agent,
          signal: d.signal,
          headers: {
            'content-type': 'application/json',
            'content-length': payload.length,
            accept: 'application/json',
          },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_REPLY) {
              d.done();
              reject(new BrokerUnavailable('native.bad_response', 'the broker reply is too large'));
              res.destroy();
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => {
            d.done();
            resolve(parseReply(res.statusCode ?? 0, Buffer.concat(chunks)));
          });
          res.on('error', fail);
          res.on('aborted', () => fail(new Error('aborted')));
        },
      );
      req.on('error', fail);
      req.end(payload);
    });
}

function viaFetch(base: URL, timeoutMs: number, fetchImpl: typeof globalThis.fetch): PostJson {
  return async (path, body, outer) => {
    const d = withDeadline(timeoutMs, outer);
    try {
      const res = await fetchImpl(endpoint(base, path), {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        signal: d.signal,
      });
      const buf = Buffer.from(await res.arrayBuffer());
      if (buf.length > MAX_REPLY)
        throw new BrokerUnavailable('native.bad_response', 'the broker reply is too large');
      return parseReply(res.status, buf);
    } catch (e) {
      if (e instanceof BrokerUnavailable) throw e;
      if (d.timedOut()) {
        throw new BrokerUnavailable(
          'native.broker_timeout',
          `the broker did not answer within ${timeoutMs} ms`,
        );
      }
      throw new BrokerUnavailable(
        'native.broker_unreachable',
        `cannot reach the broker: ${(e as Error)?.message}`,
      );
    } finally {
      d.done();
    }
  };
}
