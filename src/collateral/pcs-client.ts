import { AttestationError, CollateralUnavailable, InvalidArgument, MalformedEvidence } from '../errors.js';
import type {
  SignedCollateral,
  TdxCollateral,
  TdxCollateralQuery,
  TdxCollateralSource,
} from '../formats/tdx/collateral-source.js';
import type { RetryOptions } from './kds-client.js';
import { parseRetryAfter } from './kds-client.js';
import {
  checkSignedBody,
  MAX_PCS_BODY,
  type PcsSignedField,
  parseIntelCrl,
  readIssuerChain,
  splitSignedResponse,
} from './pcs-bodies.js';
import { PcsCache, type PcsRecord } from './pcs-cache.js';
import {
  describePcsItem,
  INTEL_CERTIFICATES_BASE_URL,
  issuerChainHeader,
  normalizeFmspc,
  normalizePcsBaseUrl,
  PCS_DEFAULT_BASE_URL,
  type PcsItem,
  pcsPath,
} from './pcs-url.js';

export interface PcsClientOptions {
  /** Default https://api.trustedservices.intel.com (a PCCS or mirror serving the same paths may be used). */
  readonly baseUrl?: string;
  /** Where the Root CA CRL is served; default https://certificates.trustedservices.intel.com. */
  readonly certificatesUrl?: string;
  /** Injected fetch; default globalThis.fetch. */
  readonly fetch?: typeof globalThis.fetch;
  /** On-disk cache directory (pcs-url.ts pcsCachePath). Without one, items are kept in memory only. */
  readonly cacheDir?: string;
  /** Never touch the network; serve only what `cacheDir` holds. Requires cacheDir. */
  readonly offline?: boolean;
  /** Clock in ms since the epoch (throttle, freshness). Default Date.now. */
  readonly now?: () => number;
  /** Waits (throttle, back-off). Default a setTimeout promise. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Per attempt, ms. Default 30 000. */
  readonly timeoutMs?: number;
  /** Minimum spacing between two requests for one URL, ms. Default 10 000 (as for AMD KDS). */
  readonly minIntervalMs?: number;
  readonly retry?: Partial<RetryOptions>;
}

/** One item, checked, with where it came from. */
export interface PcsResult<T> {
  readonly value: T;
  /** When the item stops being current (nextUpdate); past it the item is `stale`. */
  readonly nextUpdate?: Date;
  readonly stale: boolean;
  /** As for the KDS client: `network` fetched now, `cache` a current (or just fetched) copy, `offline`. */
  readonly source: 'network' | 'cache' | 'offline';
}

interface Checked {
  readonly record: PcsRecord;
  readonly value: SignedCollateral | Uint8Array;
  readonly issued: number;
  readonly nextUpdate?: number;
  /** When this client fetched it (undefined: from disk). */
  readonly fetchedAt?: number;
}

const MAX_MEMORY_ITEMS = 256;

/**
 * Client for Intel PCS v4 TDX collateral (pcs-url.ts): TCB Info per FMSPC, TD QE Identity, PCK CRLs and the
 * Root CA CRL, with an on-disk cache, an offline mode, a per-URL throttle and bounded 429 back-off, like the
 * AMD KDS client. Signed JSON is kept as the exact bytes served (the signature covers the exact bytes of
 * the `tcbInfo` / `enclaveIdentity` value). Items are re-fetched once past their nextUpdate; a failed
 * re-fetch throws rather than serve a stale copy, except offline, where the copy is served and the verifier
 * refuses it if it is out of date. Shapes only: signatures, chains, dates and CRLs are checked by
 * src/evidence/tdx against Intel's pinned root.
 *
 * Errors (CollateralUnavailable unless noted): `pcs.unreachable`, `pcs.not_found` (404), `pcs.rate_limited`,
 * `pcs.http_error`, `pcs.response_too_large`, `pcs.bad_response` (not the requested item, or no issuer
 * chain header), `pcs.offline_missing`, `pcs.cache_corrupt` (offline), `pcs.cache_io`; InvalidArgument
 * `pcs.base_url`, `pcs.offline_without_dir`, `pcs.options`, `pcs.fmspc`.
 */
export class PcsClient implements TdxCollateralSource {
  readonly baseUrl: string;
  readonly certificatesUrl: string;
  readonly offline: boolean;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly cache: PcsCache | undefined;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly timeoutMs: number;
  private readonly minIntervalMs: number;
  private readonly retry: RetryOptions;
  private readonly memory = new Map<string, Checked>();
  private readonly inflight = new Map<string, Promise<PcsResult<unknown>>>();
  private readonly lastAttempt = new Map<string, number>();

  constructor(options: PcsClientOptions = {}) {
    this.baseUrl = normalizePcsBaseUrl(options.baseUrl ?? PCS_DEFAULT_BASE_URL, 'baseUrl');
    this.certificatesUrl = normalizePcsBaseUrl(
      options.certificatesUrl ?? INTEL_CERTIFICATES_BASE_URL,
      'certificatesUrl',
    );
    this.offline = options.offline ?? false;
    if (this.offline && !options.cacheDir)
      throw new InvalidArgument('pcs.offline_without_dir', 'offline mode needs a collateral directory');
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.cache = options.cacheDir ? new PcsCache(options.cacheDir) : undefined;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.timeoutMs = count(options.timeoutMs ?? 30_000, 'timeoutMs', 1);
    this.minIntervalMs = count(options.minIntervalMs ?? 10_000, 'minIntervalMs');
    this.retry = {
      maxRetries: count(options.retry?.maxRetries ?? 3, 'retry.maxRetries'),
      baseDelayMs: count(options.retry?.baseDelayMs ?? 10_000, 'retry.baseDelayMs'),
      maxDelayMs: count(options.retry?.maxDelayMs ?? 60_000, 'retry.maxDelayMs'),
    };
  }

  /** The URL an item is fetched from. */
  urlOf(item: PcsItem): string {
    return `${item.kind === 'root_ca_crl' ? this.certificatesUrl : this.baseUrl}${pcsPath(item)}`;
  }

  /** TDX TCB Info for an FMSPC (12 hex digits): its exact signed bytes, signature and issuer chain. */
  getTcbInfo(fmspc: string): Promise<PcsResult<SignedCollateral>> {
    return this.load({ kind: 'tcb_info', fmspc: normalizeFmspc(fmspc) }) as Promise<
      PcsResult<SignedCollateral>
    >;
  }

  /** TD QE Identity. */
  getQeIdentity(): Promise<PcsResult<SignedCollateral>> {
    return this.load({ kind: 'qe_identity' }) as Promise<PcsResult<SignedCollateral>>;
  }

  /** The PCK CRL (DER) of the platform or processor CA. */
  getPckCrl(ca: 'platform' | 'processor'): Promise<PcsResult<Uint8Array>> {
    if (ca !== 'platform' && ca !== 'processor')
      throw new InvalidArgument('pcs.ca', 'ca must be platform or processor');
    return this.load({ kind: 'pck_crl', ca }) as Promise<PcsResult<Uint8Array>>;
  }

  /** The Intel SGX Root CA CRL (DER). */
  getRootCaCrl(): Promise<PcsResult<Uint8Array>> {
    return this.load({ kind: 'root_ca_crl' }) as Promise<PcsResult<Uint8Array>>;
  }

  /** Everything a quote's verification needs (src/evidence/tdx verifyTdx `collateral`). */
  async getTdxCollateral(query: TdxCollateralQuery): Promise<TdxCollateral> {
    const [tcbInfo, qeIdentity, pckCrl, rootCaCrl] = await Promise.all([
      this.getTcbInfo(query.fmspc),
      this.getQeIdentity(),
      this.getPckCrl(query.ca),
      this.getRootCaCrl(),
    ]);
    return {
      tcbInfo: tcbInfo.value,
      qeIdentity: qeIdentity.value,
      pckCrl: pckCrl.value,
      rootCaCrl: rootCaCrl.value,
    };
  }

  private load(item: PcsItem): Promise<PcsResult<unknown>> {
    const key = pcsPath(item);
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.loadOnce(item, key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async loadOnce(item: PcsItem, key: string): Promise<PcsResult<unknown>> {
    const now = this.now();
    const served = this.offline ? 'offline' : 'cache';
    const mem = this.memory.get(key);
    if (mem && (fresh(mem, now) || (mem.fetchedAt !== undefined && now - mem.fetchedAt < this.minIntervalMs)))
      return result(mem, now, served);
    // The directory may hold a newer copy (another process, or a new import).
    const disk = await this.readCached(item);
    if (disk && (!mem || disk.issued >= mem.issued)) this.remember(key, disk);
    const have = this.memory.get(key);
    if (have && fresh(have, now)) return result(have, now, served);
    if (this.offline) {
      if (have) return result(have, now, 'offline');
      throw new CollateralUnavailable(
        'pcs.offline_missing',
        `offline mode: ${describePcsItem(item)} is not in the collateral directory (import it first)`,
      );
    }
    const record = await this.fetchItem(item);
    let checked: Checked;
    try {
      checked = { ...checkRecord(item, record), fetchedAt: this.now() };
    } catch (e) {
      if (!(e instanceof MalformedEvidence)) throw e;
      throw new CollateralUnavailable(
        'pcs.bad_response',
        `PCS response for ${describePcsItem(item)} is unusable: ${e.message}`,
        { cause: e },
      );
    }
    await this.cache?.write(item, record);
    this.remember(key, checked);
    return result(checked, this.now(), 'network');
  }

  /** A cached item that fails its check is unusable: offline an error, online re-fetched. */
  private async readCached(item: PcsItem): Promise<Checked | undefined> {
    if (!this.cache) return undefined;
    try {
      const record = await this.cache.read(item);
      return record ? checkRecord(item, record) : undefined;
    } catch (e) {
      if (!(e instanceof MalformedEvidence)) throw e;
      if (this.offline)
        throw new CollateralUnavailable(
          'pcs.cache_corrupt',
          `offline collateral for ${describePcsItem(item)} is unusable: ${e.message}`,
          { cause: e },
        );
      return undefined;
    }
  }

  private remember(key: string, c: Checked): void {
    this.memory.delete(key);
    this.memory.set(key, c);
    if (this.memory.size > MAX_MEMORY_ITEMS) this.memory.delete(this.memory.keys().next().value as string);
  }

  /** Waits until the URL may be requested again, then records the attempt. */
  private async throttle(url: string): Promise<void> {
    const last = this.lastAttempt.get(url);
    if (last !== undefined) {
      const wait = last + this.minIntervalMs - this.now();
      if (wait > 0) await this.sleep(wait);
    }
    const now = this.now();
    for (const [u, t] of this.lastAttempt) if (now - t >= this.minIntervalMs) this.lastAttempt.delete(u);
    this.lastAttempt.set(url, now);
  }

  private async fetchItem(item: PcsItem): Promise<PcsRecord> {
    const url = this.urlOf(item);
    const what = describePcsItem(item);
    for (let attempt = 0; ; attempt++) {
      await this.throttle(url);
      const out = await this.attempt(item, url, what);
      if ('body' in out) return out;
      const retryAfter = parseRetryAfter(out.retryAfter, this.now());
      const delay = retryAfter ?? Math.min(this.retry.baseDelayMs * 2 ** attempt, this.retry.maxDelayMs);
      if (attempt >= this.retry.maxRetries || delay > this.retry.maxDelayMs)
        throw new CollateralUnavailable(
          'pcs.rate_limited',
          `PCS rate-limited ${what} (HTTP 429, ${attempt + 1} attempt(s))`,
        );
      await this.sleep(delay);
    }
  }

  private async attempt(
    item: PcsItem,
    url: string,
    what: string,
  ): Promise<PcsRecord | { retryAfter: string | null }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    const unreachable = (e: unknown) =>
      new CollateralUnavailable(
        'pcs.unreachable',
        controller.signal.aborted
          ? `PCS did not answer for ${what} within ${this.timeoutMs} ms`
          : `PCS is unreachable for ${what}`,
        { cause: e },
      );
    try {
      let res: Response;
      try {
        res = await this.fetchImpl(url, { signal: controller.signal, redirect: 'follow' });
      } catch (e) {
        throw unreachable(e);
      }
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        if (res.status === 429) return { retryAfter: res.headers.get('retry-after') };
        if (res.status === 404)
          throw new CollateralUnavailable('pcs.not_found', `PCS has no ${what} (HTTP 404)`);
        throw new CollateralUnavailable('pcs.http_error', `PCS answered HTTP ${res.status} for ${what}`);
      }
      const header = issuerChainHeader(item);
      let issuerChain: Uint8Array | undefined;
      if (header) {
        const v = res.headers.get(header);
        if (v === null || v.length > 64 * 1024) {
          await res.body?.cancel().catch(() => undefined);
          throw new CollateralUnavailable('pcs.bad_response', `PCS sent ${what} without a usable ${header}`);
        }
        try {
          // Stored decoded (PEM), as an offline directory holds it.
          issuerChain = new Uint8Array(Buffer.from(decodeURIComponent(v), 'latin1'));
        } catch (e) {
          await res.body?.cancel().catch(() => undefined);
          throw new CollateralUnavailable('pcs.bad_response', `${header} is not URL-encoded`, { cause: e });
        }
      }
      let body: Uint8Array;
      try {
        body = await readBounded(res, what);
      } catch (e) {
        if (e instanceof AttestationError) throw e;
        throw unreachable(e);
      }
      return issuerChain ? { body, issuerChain } : { body };
    } finally {
      clearTimeout(timer);
    }
  }
}

const FIELD: Record<'tcb_info' | 'qe_identity', PcsSignedField> = {
  tcb_info: 'tcbInfo',
  qe_identity: 'enclaveIdentity',
};

/** Checks a record is the item asked for. Throws MalformedEvidence. */
export function checkRecord(item: PcsItem, record: PcsRecord): Omit<Checked, 'fetchedAt'> {
  const reason = `pcs.${item.kind}`;
  if (item.kind === 'tcb_info' || item.kind === 'qe_identity') {
    const field = FIELD[item.kind];
    const signed = splitSignedResponse(record.body, field, reason);
    const shape = checkSignedBody(
      field,
      signed.body,
      reason,
      item.kind === 'tcb_info' ? item.fmspc : undefined,
    );
    const issuerChain = readIssuerChain(record.issuerChain ?? null, reason, false);
    return {
      record,
      value: { ...signed, issuerChain },
      issued: shape.issueDate.getTime(),
      nextUpdate: shape.nextUpdate.getTime(),
    };
  }
  const crl = parseIntelCrl(record.body, reason, item.kind === 'pck_crl' ? item.ca : 'root');
  if (item.kind === 'pck_crl') readIssuerChain(record.issuerChain ?? null, reason, false);
  return {
    record,
    value: record.body,
    issued: crl.thisUpdate.getTime(),
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.getTime() } : {}),
  };
}

function fresh(c: Checked, now: number): boolean {
  return c.nextUpdate !== undefined && now < c.nextUpdate;
}

function result(c: Checked, now: number, source: PcsResult<unknown>['source']): PcsResult<unknown> {
  // Copies: callers may not alter what the memory cache holds.
  const v = c.value;
  const value =
    v instanceof Uint8Array
      ? v.slice()
      : {
          body: v.body.slice(),
          signature: v.signature.slice(),
          issuerChain: v.issuerChain.map((d) => d.slice()),
        };
  const base = { value, stale: !fresh(c, now), source };
  return c.nextUpdate !== undefined ? { ...base, nextUpdate: new Date(c.nextUpdate) } : base;
}

function count(n: number, name: string, min = 0): number {
  if (!Number.isFinite(n) || n < min)
    throw new InvalidArgument('pcs.options', `${name} must be a number >= ${min}`);
  return n;
}

async function readBounded(res: Response, what: string): Promise<Uint8Array> {
  const tooLarge = () =>
    new CollateralUnavailable(
      'pcs.response_too_large',
      `PCS response for ${what} exceeds ${MAX_PCS_BODY} bytes`,
    );
  const declared = res.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > MAX_PCS_BODY) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_PCS_BODY) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
