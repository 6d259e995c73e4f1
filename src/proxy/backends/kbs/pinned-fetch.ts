import type { IncomingMessage } from 'node:http';
import { Agent, request } from 'node:https';
import { Readable } from 'node:stream';

/**
 * A `fetch` for KbsProxyBackend over node:https that trusts only the given CA certificate(s) (PEM), so
 * `vouchsafe proxy --protocol kbs --broker-ca FILE` pins the KBS's CA as the native backend does (Node's
 * global fetch cannot take a CA). It does what the backend needs and no more: GET and POST with string
 * bodies, headers, an AbortSignal, https only; it never follows redirects (a 3xx is returned as is, which
 * the backend refuses). Keep-alive connections are reused.
 */
export function createPinnedFetch(ca: string | Uint8Array): typeof globalThis.fetch {
  const agent = new Agent({ keepAlive: true, ca: Buffer.from(ca) });
  const pinned = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      if (url.protocol !== 'https:') {
        reject(new TypeError('a pinned CA needs an https:// KBS URL'));
        return;
      }
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => {
        headers[k] = v;
      });
      const body = typeof init.body === 'string' ? Buffer.from(init.body, 'utf8') : undefined;
      if (init.body !== undefined && init.body !== null && body === undefined) {
        reject(new TypeError('only string bodies are supported'));
        return;
      }
      if (body) headers['content-length'] = String(body.length);
      const req = request(
        url,
        { method: init.method ?? 'GET', agent, headers, ...(init.signal ? { signal: init.signal } : {}) },
        (res: IncomingMessage) => {
          const h = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
            h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          const status = res.statusCode ?? 500;
          const noBody = status === 204 || status === 304 || init.method === 'HEAD';
          if (noBody) res.resume();
          resolve(
            new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
              status,
              headers: h,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return pinned as typeof globalThis.fetch;
}
