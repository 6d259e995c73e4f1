import { InvalidArgument, isAttestationError } from '../../../errors.js';
import { type DialectBinding, RAW_SHA512 } from '../../../formats/aproxy/dialect-binding.js';
import {
  type ConfigResponse,
  isSafeEndpoint,
  PR1203_LIMITS,
  type ProxyRequest,
  stringifyJsonValue,
} from '../../../formats/aproxy/pr1203.js';
import { createHttpClient, type HttpClient } from '../../../util/http-client.js';
import type { BackendContext } from '../../backend.js';
import { KBS_UNAVAILABLE } from './backend.js';
import { CookieJar } from './cookie-jar.js';

/** PR #1203 aproxy's default endpoints (tools/aproxy/src/main.rs). */
export const PR1203_DEFAULT_ENDPOINTS = {
  auth: '/kbs/v0/auth',
  attest: '/kbs/v0/attest',
  resource: '/kbs/v0/resource/default/sample/test',
} as const;

export interface KbsForwarderOptions {
  /** The KBS base URL (http or https), as for KbsProxyBackend. */
  readonly url: string;
  readonly ca?: string | Uint8Array;
  readonly fetch?: typeof globalThis.fetch;
  /** Deadline of each forwarded exchange, ms (default 30 000). */
  readonly timeoutMs?: number;
  /** What the ConfigResponse tells the guest to bind (default SHA-512 RawBinary; Trustee: SHA-384 JwsJson). */
  readonly binding?: DialectBinding;
  readonly authEndpoint?: string;
  readonly attestEndpoint?: string;
  readonly resourceEndpoint?: string;
  /** Largest forwarded request body, bytes of JSON (default 64 KiB; an SNP attest body is about 3 KiB). */
  readonly maxRequestBytes?: number;
}

/** Which of the three allowed exchanges a request was. */
export type ForwardStep = 'auth' | 'attest' | 'resource';

export type ForwardResult =
  | {
      readonly outcome: 'forwarded';
      readonly step: ForwardStep;
      readonly status: number;
      readonly body: string;
    }
  /** Not forwarded: the guest gets `status` and an empty body; `reason` is logged. */
  | { readonly outcome: 'refused'; readonly status: number; readonly reason: string }
  /** The KBS could not be asked; the guest gets 500 and the reason, as PR #1203's aproxy sends transport errors. */
  | { readonly outcome: 'unavailable'; readonly status: 500; readonly reason: string };

/**
 * The host side of svsm PR #1203 ("option 2": the SVSM speaks KBS 0.4.0 itself, the proxy forwards HTTP).
 * Unlike the PR's aproxy, which forwards any endpoint and method to the KBS with one cookie store shared by
 * every guest connection, this forwarder:
 * - forwards only the three configured exchanges (auth POST, attest POST, resource GET), refusing any other
 *   endpoint or method (`proxy.forward.endpoint`, 403) and bodies above `maxRequestBytes`
 *   (`proxy.forward.size`, 413);
 * - takes the cookie jar from its caller: the proxy session creates one per guest connection, so two
 *   guests' KBS sessions never mix (a guest cannot ride on another's attested session cookie);
 * - bounds each exchange in time and size (the one HTTP client: deadline, bounded reply, no redirects).
 */
export class KbsForwarder {
  private readonly http: HttpClient;
  private readonly cfg: ConfigResponse;
  private readonly maxRequestBytes: number;

  /** Throws InvalidArgument `proxy_kbs.config` for a bad URL, endpoint or bound. */
  constructor(o: KbsForwarderOptions) {
    this.http = createHttpClient({
      baseUrl: o.url,
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ...(o.fetch ? { fetch: o.fetch } : {}),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      maxReplyBytes: PR1203_LIMITS.responseBody,
      reasons: KBS_UNAVAILABLE,
      configReason: 'proxy_kbs.config',
    });
    const binding = o.binding ?? RAW_SHA512;
    this.cfg = {
      hashAlgo: binding.hashAlgo,
      payloadFormat: binding.payloadFormat,
      authEndpoint: o.authEndpoint ?? PR1203_DEFAULT_ENDPOINTS.auth,
      attestEndpoint: o.attestEndpoint ?? PR1203_DEFAULT_ENDPOINTS.attest,
      resourceEndpoint: o.resourceEndpoint ?? PR1203_DEFAULT_ENDPOINTS.resource,
    };
    for (const e of [this.cfg.authEndpoint, this.cfg.attestEndpoint, this.cfg.resourceEndpoint]) {
      if (!isSafeEndpoint(e))
        throw new InvalidArgument('proxy_kbs.config', 'endpoints are plain absolute paths');
    }
    this.maxRequestBytes = o.maxRequestBytes ?? 64 * 1024;
    if (!(Number.isSafeInteger(this.maxRequestBytes) && this.maxRequestBytes > 0)) {
      throw new InvalidArgument('proxy_kbs.config', 'maxRequestBytes must be > 0');
    }
  }

  /** The ConfigResponse every guest of this forwarder gets. */
  config(): ConfigResponse {
    return this.cfg;
  }

  /** A fresh cookie jar: one per guest connection. */
  newJar(): CookieJar {
    return new CookieJar();
  }

  /** Forwards one allowed exchange with this guest's jar. Never throws for KBS failures. */
  async forward(req: ProxyRequest, jar: CookieJar, ctx: BackendContext): Promise<ForwardResult> {
    const step = this.stepOf(req);
    if (step === undefined) return { outcome: 'refused', status: 403, reason: 'proxy.forward.endpoint' };
    let body: string | undefined;
    if (req.method === 'POST') {
      body = stringifyJsonValue(req.body);
      if (Buffer.byteLength(body, 'utf8') > this.maxRequestBytes) {
        return { outcome: 'refused', status: 413, reason: 'proxy.forward.size' };
      }
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    try {
      const res = await this.http.request({
        method: req.method,
        path: req.endpoint,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: ctx.signal,
      });
      jar.store(res.headers.getSetCookie());
      return { outcome: 'forwarded', step, status: res.status, body: Buffer.from(res.body).toString('utf8') };
    } catch (e) {
      if (isAttestationError(e)) return { outcome: 'unavailable', status: 500, reason: e.reason };
      throw e;
    }
  }

  private stepOf(req: ProxyRequest): ForwardStep | undefined {
    const c = this.cfg;
    if (req.method === 'POST' && req.endpoint === c.authEndpoint) return 'auth';
    if (req.method === 'POST' && req.endpoint === c.attestEndpoint) return 'attest';
    if (req.method === 'GET' && req.endpoint === c.resourceEndpoint) return 'resource';
    return undefined;
  }
}
