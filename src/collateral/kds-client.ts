import { AttestationError, CollateralUnavailable, InvalidArgument, MalformedEvidence } from '../errors.js';
import type { SnpProduct } from '../formats/snp/product.js';
import type { SnpReport } from '../formats/snp/report.js';
import { ctEqual } from '../util/bytes.js';
import { type Counters, NO_COUNTERS } from '../util/metrics.js';
import { CollateralCache } from './cache.js';
import {
  type CertChain,
  MAX_KDS_BODY,
  type ParsedCrl,
  parseCertChain,
  parseKdsCrl,
  readVcekIdentity,
} from './kds-bodies.js';
import { FetchBudget, type FetchBudgetOptions } from './kds-budget.js';
import {
  type CrlItem,
  describeItem,
  KDS_DEFAULT_BASE_URL,
  type KdsItem,
  type KdsSigner,
  kdsPath,
  normalizeBaseUrl,
  type VcekItem,
  vcekItem,
  vcekItemForReport,
} from './kds-url.js';

/** How the client backs off when KDS answers 429 Too Many Requests. */
export interface RetryOptions {
  /** Retries after the first 429 before giving up with `kds.rate_limited`. Default 3. */
  readonly maxRetries: number;
  /** First back-off when there is no Retry-After; doubles each retry. Default 10 000 ms (AMD's window). */
  readonly baseDelayMs: number;
  /** Longest single wait. A Retry-After longer than this gives up at once instead of waiting. Default 60 000. */
  readonly maxDelayMs: number;
}

export interface KdsClientOptions {
  /** Default https://kdsintf.amd.com; a mirror may be used (same paths). */
  readonly baseUrl?: string;
  /** Injected fetch; default globalThis.fetch. */
  readonly fetch?: typeof globalThis.fetch;
  /** On-disk cache directory (layout: see cache.ts). Without one, items are kept in memory only. */
  readonly cacheDir?: string;
  /** Never touch the network; serve only what `cacheDir` (an imported directory) holds. Requires cacheDir. */
  readonly offline?: boolean;
  /** Clock in ms since the epoch (throttle, CRL freshness). Default Date.now. */
  readonly now?: () => number;
  /** Waits (throttle, back-off). Default a setTimeout promise. Timeouts use real timers regardless. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Per attempt, headers and body together. Default 30 000 ms. */
  readonly timeoutMs?: number;
  /** Minimum spacing between two requests for one URL. Default 10 000 ms (AMD KDS: same URL once per 10 s). */
  readonly minIntervalMs?: number;
  readonly retry?: Partial<RetryOptions>;
  /** Global VCEK request budget and negative cache (kds-budget.ts). Defaults: 64 per 10 min, 1 h. */
  readonly budget?: Partial<FetchBudgetOptions>;
  /** Counts certificate lookups by where they were served from (`vouchsafe_kds_cache_total`). Default: none. */
  readonly counters?: Counters;
}

/** A CRL and where it came from. `stale` is true when `now` is past nextUpdate (or there is no nextUpdate). */
export interface CrlResult {
  readonly der: Uint8Array;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  readonly stale: boolean;
  /**
   * `network`: fetched by this call; `cache`: a cached copy, fresh, or fetched by this client less than the
   * throttle interval ago (then possibly stale); `offline`: offline mode served the imported copy, fresh or
   * stale (`stale` says which); no network was consulted.
   */
  readonly source: 'network' | 'cache' | 'offline';
}

interface MemoryEntry {
  readonly bytes: Uint8Array;
  /** The checked, parsed value (VCEK DER, CertChain, ParsedCrl), so hot paths do not re-parse. */
  readonly value: unknown;
  /** When this copy was fetched from the network by this client (undefined if it came from disk). */
  readonly fetchedAt?: number;
}

const MAX_MEMORY_ITEMS = 1024;

/**
 * Client for the AMD Key Distribution Service (VCEK Certificate and KDS Interface Specification 57230):
 * VCEKs, cert chains (ASK/ASVK + ARK) and CRLs, with an on-disk cache, an offline mode and AMD's rate
 * limit honoured. It fetches and checks shapes only; signatures, chains and revocation are verified by the
 * SNP evidence verifier against pinned ARKs.
 *
 * Errors (all CollateralUnavailable unless noted): `kds.unreachable` (network error or timeout),
 * `kds.not_found` (404), `kds.rate_limited` (429 after bounded retries), `kds.http_error` (other status),
 * `kds.response_too_large` (body over 64 KiB), `kds.bad_response` (body is not the requested item),
 * `kds.offline_missing`, `kds.cache_corrupt` (offline: the imported file is unusable), `kds.cache_io`,
 * `kds.chip_id_masked`, `kds.fetch_budget` (the VCEK request budget is spent; a VCEK URL KDS refused
 * within the negative-cache TTL re-throws that refusal without a request); InvalidArgument `kds.base_url`, `kds.offline_without_dir`, `kds.chip_id_length`.
 */
export class KdsClient {
  readonly baseUrl: string;
  readonly offline: boolean;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly cache: CollateralCache | undefined;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly timeoutMs: number;
  private readonly minIntervalMs: number;
  private readonly retry: RetryOptions;
  private readonly memory = new Map<string, MemoryEntry>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly lastAttempt = new Map<string, number>();
  private readonly budget: FetchBudget;
  private readonly counters: Counters;

  constructor(options: KdsClientOptions = {}) {
    this.baseUrl = normalizeBaseUrl(options.baseUrl ?? KDS_DEFAULT_BASE_URL);
    this.offline = options.offline ?? false;
    if (this.offline && !options.cacheDir) {
      throw new InvalidArgument(
        'kds.offline_without_dir',
        'offline mode needs a collateral directory (cacheDir)',
      );
    }
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.cache = options.cacheDir ? new CollateralCache(options.cacheDir) : undefined;
    this.now = options.now ?? Date.now;
    this.counters = options.counters ?? NO_COUNTERS;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.timeoutMs = positive(options.timeoutMs ?? 30_000, 'timeoutMs');
    this.minIntervalMs = nonNegative(options.minIntervalMs ?? 10_000, 'minIntervalMs');
    this.retry = {
      maxRetries: nonNegative(options.retry?.maxRetries ?? 3, 'retry.maxRetries'),
      baseDelayMs: nonNegative(options.retry?.baseDelayMs ?? 10_000, 'retry.baseDelayMs'),
      maxDelayMs: nonNegative(options.retry?.maxDelayMs ?? 60_000, 'retry.maxDelayMs'),
    };
    const b = options.budget ?? {};
    this.budget = new FetchBudget(
      {
        ...(b.vcekFetches !== undefined
          ? { vcekFetches: nonNegative(b.vcekFetches, 'budget.vcekFetches') }
          : {}),
        ...(b.windowMs !== undefined ? { windowMs: positive(b.windowMs, 'budget.windowMs') } : {}),
        ...(b.negativeTtlMs !== undefined
          ? { negativeTtlMs: nonNegative(b.negativeTtlMs, 'budget.negativeTtlMs') }
          : {}),
      },
      this.now,
    );
  }

  /** The URL an item is fetched from. */
  urlOf(item: KdsItem): string {
    return `${this.baseUrl}${kdsPath(item)}`;
  }

  /**
   * The VCEK (DER) for a CHIP_ID at a REPORTED_TCB (decoded per product). The body must be a VCEK whose
   * productName, hwID and SPL extensions match the request, else `kds.bad_response`.
   */
  async getVcek(product: SnpProduct, chipId: Uint8Array, reportedTcb: bigint): Promise<Uint8Array> {
    return (await this.getVcekItem(vcekItem(product, chipId, reportedTcb))).slice();
  }

  /** The VCEK for a parsed report: its CHIP_ID and REPORTED_TCB. */
  async getVcekForReport(report: SnpReport, product: SnpProduct): Promise<Uint8Array> {
    return (await this.getVcekItem(vcekItemForReport(report, product))).slice();
  }

  /** The intermediate (ASK for `vcek`, ASVK for `vlek`) and ARK, DER, from `/{signer}/v1/{P}/cert_chain`. */
  async getCertChain(product: SnpProduct, signer: KdsSigner): Promise<CertChain> {
    const item: KdsItem = { kind: 'cert_chain', product, signer };
    const chain = await this.getImmutable(item, (bytes) => parseCertChain(bytes, product, signer));
    // Copies: callers may not alter what the memory cache holds.
    return { intermediate: chain.intermediate.slice(), ark: chain.ark.slice() };
  }

  /**
   * The CRL from `/{signer}/v1/{P}/crl`. A cached CRL is served while `now` < nextUpdate and re-fetched
   * after; a copy this client fetched less than the throttle interval ago is served rather than asking KDS
   * again. Offline, the imported CRL is served whatever its age, with `stale` and `source: 'offline'` saying
   * so. Online, a failed re-fetch of a stale CRL throws (a stale CRL is not silently accepted).
   * `refresh`: online, fetch from KDS even while the cached copy is fresh (the background refresh before
   * nextUpdate, crl-keeper.ts); still throttled; offline it changes nothing. `staleOnError`: when the
   * re-fetch of a stale CRL fails with CollateralUnavailable, return the stale copy (`stale: true`,
   * `source: 'cache'`) for the caller's own stale-CRL policy (the verifier's grace) to judge.
   */
  async getCrl(
    product: SnpProduct,
    signer: KdsSigner,
    opts: { readonly refresh?: boolean; readonly staleOnError?: boolean } = {},
  ): Promise<CrlResult> {
    const item: CrlItem = { kind: 'crl', product, signer };
    const key = kdsPath(item);
    const mode = `${opts.refresh ? 'r' : ''}${opts.staleOnError ? 's' : ''}`;
    const crl = await this.singleFlight(mode ? `${key}#${mode}` : key, () =>
      this.loadCrl(item, opts.refresh === true, opts.staleOnError === true),
    );
    return { ...crl, der: crl.der.slice() };
  }

  private getVcekItem(item: VcekItem): Promise<Uint8Array> {
    return this.getImmutable(item, (bytes) => {
      const id = readVcekIdentity(bytes);
      const t = id.tcb;
      const w = item.tcb;
      if (
        id.product !== item.product ||
        !ctEqual(id.hwid, item.hwid) ||
        t.bootloader !== w.bootloader ||
        t.tee !== w.tee ||
        t.snp !== w.snp ||
        t.microcode !== w.microcode ||
        (t.fmc ?? 0) !== (w.fmc ?? 0)
      ) {
        throw new MalformedEvidence(
          'kds.vcek.mismatch',
          `the VCEK received is not the one requested (${describeItem(item)})`,
        );
      }
      return bytes;
    });
  }

  /** Cert chains and VCEKs never change for a URL: memory, then disk, then (online) the network. */
  private async getImmutable<T>(item: KdsItem, check: (bytes: Uint8Array) => T): Promise<T> {
    const key = kdsPath(item);
    const served = (source: 'memory' | 'disk' | 'network') =>
      this.counters.inc('vouchsafe_kds_cache_total', { kind: item.kind, source });
    const mem = this.memory.get(key);
    if (mem) {
      served('memory');
      return mem.value as T;
    }
    return this.singleFlight(key, async () => {
      const cached = await this.readCached(item, check);
      if (cached) {
        served('disk');
        this.remember(key, { bytes: cached.bytes, value: cached.value });
        return cached.value;
      }
      if (this.offline) throw offlineMissing(item);
      // A miss: counted when the network is asked, whether or not the answer is usable.
      served('network');
      // VCEK URLs are chosen by the (unauthenticated) report: a definite "no" is remembered, and requests
      // are budgeted. Chains and CRLs are a fixed, small set of URLs and are not limited here.
      const url = this.urlOf(item);
      const vcek = item.kind === 'vcek';
      if (vcek) this.budget.checkNegative(url);
      let value: T;
      let bytes: Uint8Array;
      try {
        bytes = await this.fetchItem(item, vcek);
        const got = bytes;
        value = checkResponse(item, () => check(got));
      } catch (e) {
        if (
          vcek &&
          e instanceof CollateralUnavailable &&
          (e.reason === 'kds.not_found' || e.reason === 'kds.bad_response')
        ) {
          this.budget.rememberNegative(url, e);
        }
        throw e;
      }
      await this.cache?.write(item, bytes);
      this.remember(key, { bytes, value, fetchedAt: this.now() });
      return value;
    });
  }

  private async loadCrl(item: CrlItem, refresh: boolean, staleOnError: boolean): Promise<CrlResult> {
    const key = kdsPath(item);
    const parse = (bytes: Uint8Array) => parseKdsCrl(bytes, item.product);
    const now = this.now();
    const cached = this.offline ? 'offline' : 'cache';
    const mem = this.memory.get(key);
    if (refresh && !this.offline) return this.fetchCrl(item, key, parse);
    if (mem) {
      const m = mem.value as ParsedCrl;
      const recent = mem.fetchedAt !== undefined && now - mem.fetchedAt < this.minIntervalMs;
      if (isFresh(m, now) || recent) return crlResult(m, now, cached);
    }
    // Stale or absent in memory: the directory may hold a newer one (another process, or a new import).
    const onDisk = (await this.readCached(item, parse))?.value;
    if (onDisk && (!mem || onDisk.thisUpdate >= (mem.value as ParsedCrl).thisUpdate)) {
      this.remember(key, { bytes: onDisk.der, value: onDisk });
    }
    const crl = (this.memory.get(key)?.value as ParsedCrl | undefined) ?? onDisk;
    if (crl && isFresh(crl, now)) return crlResult(crl, now, cached);
    if (this.offline) {
      if (crl) return crlResult(crl, now, 'offline');
      throw offlineMissing(item);
    }
    try {
      return await this.fetchCrl(item, key, parse);
    } catch (e) {
      if (staleOnError && crl && e instanceof CollateralUnavailable)
        return crlResult(crl, this.now(), 'cache');
      throw e;
    }
  }

  private async fetchCrl(
    item: CrlItem,
    key: string,
    parse: (bytes: Uint8Array) => ParsedCrl,
  ): Promise<CrlResult> {
    const bytes = await this.fetchItem(item);
    const fetched = checkResponse(item, () => parse(bytes));
    await this.cache?.write(item, bytes);
    this.remember(key, { bytes, value: fetched, fetchedAt: this.now() });
    return crlResult(fetched, this.now(), 'network');
  }

  /**
   * Reads and checks a cached item. A file that fails the check is unusable: offline that is an error
   * (`kds.cache_corrupt`), online it is ignored and overwritten by a fresh fetch.
   */
  private async readCached<T>(
    item: KdsItem,
    check: (bytes: Uint8Array) => T,
  ): Promise<{ bytes: Uint8Array; value: T } | undefined> {
    if (!this.cache) return undefined;
    try {
      const bytes = await this.cache.read(item);
      return bytes ? { bytes, value: check(bytes) } : undefined;
    } catch (e) {
      if (!(e instanceof MalformedEvidence)) throw e;
      if (this.offline) {
        throw new CollateralUnavailable(
          'kds.cache_corrupt',
          `offline collateral for ${describeItem(item)} is unusable: ${e.message}`,
          { cause: e },
        );
      }
      return undefined;
    }
  }

  private remember(key: string, entry: MemoryEntry): void {
    this.memory.delete(key);
    this.memory.set(key, entry);
    if (this.memory.size > MAX_MEMORY_ITEMS) {
      const oldest = this.memory.keys().next().value;
      if (oldest !== undefined) this.memory.delete(oldest);
    }
  }

  /** Concurrent requests for one item share one load (and so one network request). */
  private singleFlight<T>(key: string, load: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key);
    if (running) return running as Promise<T>;
    const p = load().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** Waits until the URL may be requested again (AMD: once per 10 s), then records the attempt. */
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

  /** GET with throttle, timeout, bounded body and bounded 429 back-off. */
  private async fetchItem(item: KdsItem, budgeted = false): Promise<Uint8Array> {
    const url = this.urlOf(item);
    const what = describeItem(item);
    for (let attempt = 0; ; attempt++) {
      if (budgeted) this.budget.spend(what);
      await this.throttle(url);
      const outcome = await this.attempt(url, what);
      if (outcome.kind === 'body') return outcome.body;
      const retryAfter = parseRetryAfter(outcome.retryAfter, this.now());
      const delay = retryAfter ?? Math.min(this.retry.baseDelayMs * 2 ** attempt, this.retry.maxDelayMs);
      if (attempt >= this.retry.maxRetries || delay > this.retry.maxDelayMs) {
        throw new CollateralUnavailable(
          'kds.rate_limited',
          `KDS rate-limited ${what} (HTTP 429, ${attempt + 1} attempt(s)${retryAfter !== undefined ? `, Retry-After ${retryAfter} ms` : ''})`,
        );
      }
      await this.sleep(delay);
    }
  }

  private async attempt(
    url: string,
    what: string,
  ): Promise<{ kind: 'body'; body: Uint8Array } | { kind: 'rate_limited'; retryAfter: string | null }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      let res: Response;
      try {
        res = await this.fetchImpl(url, { signal: controller.signal, redirect: 'follow' });
      } catch (e) {
        throw unreachable(what, controller.signal.aborted, this.timeoutMs, e);
      }
      if (res.status === 429) {
        await discard(res);
        return { kind: 'rate_limited', retryAfter: res.headers.get('retry-after') };
      }
      if (res.status === 404) {
        await discard(res);
        throw new CollateralUnavailable('kds.not_found', `KDS has no ${what} (HTTP 404)`);
      }
      if (res.status !== 200) {
        await discard(res);
        throw new CollateralUnavailable('kds.http_error', `KDS answered HTTP ${res.status} for ${what}`);
      }
      try {
        return { kind: 'body', body: await readBounded(res, MAX_KDS_BODY, what) };
      } catch (e) {
        if (e instanceof AttestationError) throw e;
        throw unreachable(what, controller.signal.aborted, this.timeoutMs, e);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgument('kds.options', `${name} must be a positive number`);
  return n;
}

function nonNegative(n: number, name: string): number {
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidArgument('kds.options', `${name} must be a non-negative number`);
  return n;
}

function isFresh(crl: ParsedCrl, now: number): boolean {
  return crl.nextUpdate !== undefined && now < crl.nextUpdate.getTime();
}

function crlResult(crl: ParsedCrl, now: number, source: CrlResult['source']): CrlResult {
  const base = { der: crl.der, thisUpdate: crl.thisUpdate, stale: !isFresh(crl, now), source };
  return crl.nextUpdate ? { ...base, nextUpdate: crl.nextUpdate } : base;
}

function offlineMissing(item: KdsItem): CollateralUnavailable {
  return new CollateralUnavailable(
    'kds.offline_missing',
    `offline mode: ${describeItem(item)} is not in the collateral directory (fill it with vouchsafe collateral fetch or collateral import)`,
  );
}

/** A body that is not the requested item: KDS (or something in between) served the wrong thing. */
function checkResponse<T>(item: KdsItem, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (!(e instanceof MalformedEvidence)) throw e;
    throw new CollateralUnavailable(
      'kds.bad_response',
      `KDS response for ${describeItem(item)} is unusable: ${e.message}`,
      {
        cause: e,
      },
    );
  }
}

function unreachable(
  what: string,
  timedOut: boolean,
  timeoutMs: number,
  cause: unknown,
): CollateralUnavailable {
  return new CollateralUnavailable(
    'kds.unreachable',
    timedOut ? `KDS did not answer for ${what} within ${timeoutMs} ms` : `KDS is unreachable for ${what}`,
    { cause },
  );
}

async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/** Reads a body of at most `max` bytes; a longer one (by Content-Length or by counting) is refused. */
async function readBounded(res: Response, max: number, what: string): Promise<Uint8Array> {
  const tooLarge = () =>
    new CollateralUnavailable('kds.response_too_large', `KDS response for ${what} exceeds ${max} bytes`);
  const declared = res.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > max) {
    await discard(res);
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
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date. Returns ms from `now`, or undefined. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000;
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
