import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AttestationError, CollateralUnavailable, type ErrorCode, InvalidArgument } from '../../errors.js';
import type { TokenKeyRotation } from './broker-kbs.js';

/** Largest answer read from the broker. */
const MAX_REPLY = 64 * 1024;

/**
 * Calls a running broker's `POST /v1/admin/token-keys/rotate` (what `vouchsafe token-keys rotate` does).
 * Throws the broker's refusal as an AttestationError with its code and reason; InvalidArgument
 * `admin.url`; CollateralUnavailable `admin.unreachable`, `admin.bad_response`.
 */
export function rotateTokenKeyOverHttp(o: {
  readonly url: string;
  readonly token: string;
  /** PEM CA for an https broker. */
  readonly ca?: string | Uint8Array;
  readonly timeoutMs?: number;
}): Promise<TokenKeyRotation> {
  let base: URL;
  try {
    base = new URL(o.url);
  } catch {
    throw new InvalidArgument('admin.url', `not a URL: ${o.url}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new InvalidArgument('admin.url', 'the broker URL must be http(s)://...');
  }
  const url = new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}/v1/admin/token-keys/rotate`);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<TokenKeyRotation>((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'POST',
        timeout: o.timeoutMs ?? 30_000,
        ...(o.ca !== undefined ? { ca: Buffer.from(o.ca) } : {}),
        headers: { authorization: `Bearer ${o.token}`, accept: 'application/json', 'content-length': '0' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_REPLY) req.destroy(new Error('reply too large'));
          else chunks.push(c);
        });
        res.on('error', () => reject(new CollateralUnavailable('admin.unreachable', 'connection failed')));
        res.on('end', () => {
          let body: { [k: string]: unknown } | undefined;
          try {
            const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            body = typeof v === 'object' && v !== null ? v : undefined;
          } catch {
            body = undefined;
          }
          if (
            res.statusCode === 200 &&
            body &&
            typeof body.kid === 'string' &&
            Array.isArray(body.published)
          ) {
            resolve(body as unknown as TokenKeyRotation);
          } else if (body && typeof body.code === 'string' && typeof body.reason === 'string') {
            reject(
              new AttestationError(
                body.code as ErrorCode,
                body.reason,
                typeof body.message === 'string' ? body.message : `HTTP ${res.statusCode}`,
              ),
            );
          } else {
            reject(
              new CollateralUnavailable(
                'admin.bad_response',
                `the broker answered HTTP ${res.statusCode} without the expected JSON`,
              ),
            );
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) =>
      reject(new CollateralUnavailable('admin.unreachable', `cannot reach the broker: ${e.message}`)),
    );
    req.end();
  });
}
