import { CollateralUnavailable } from '../errors.js';
import type { SnpProduct } from '../formats/snp/product.js';
import type { SnpReport } from '../formats/snp/report.js';
import type { CertChain } from './kds-bodies.js';
import type { CrlResult, KdsClient } from './kds-client.js';
import type { KdsSigner } from './kds-url.js';

/** What the keeper wraps: a KdsClient, or a stand-in with the same three operations. */
export type CrlSource = Pick<KdsClient, 'getVcekForReport' | 'getCertChain' | 'getCrl'>;

export interface CrlKeeperOptions {
  /** Clock in ms since the epoch. */
  readonly now: () => number;
  /** Refresh a CRL this long before its nextUpdate. Default 24 h. */
  readonly leadMs?: number;
  /** The background timer's longest sleep (it also wakes at the next CRL's refresh time). Default 1 h. */
  readonly checkEveryMs?: number;
  /** Told about each background refresh that failed (the CRL in hand stays in use until it is stale). */
  readonly onRefreshError?: (what: { product: SnpProduct; signer: KdsSigner }, err: unknown) => void;
}

const HOUR_MS = 60 * 60 * 1000;

interface Held {
  readonly product: SnpProduct;
  readonly signer: KdsSigner;
  crl: CrlResult;
}

/** Outcome of one {@link CrlKeeper.refresh} pass. */
export interface CrlRefreshReport {
  readonly refreshed: number;
  readonly failed: number;
}

/**
 * Keeps the AMD CRLs the broker has used fresh: the SNP verifier's collateral getter (certificates pass
 * straight through to the wrapped client) that remembers each CRL it handed out and, from a background
 * timer, fetches it again `leadMs` before its nextUpdate, so a verification never waits on KDS for a CRL
 * and a KDS outage shorter than the lead goes unnoticed. When a fresh CRL cannot be obtained (KDS down, its
 * cached copy stale) the stale copy (the source's cache, else the last one handed out) is returned as it
 * is: the verifier refuses it once it is past nextUpdate plus the operator's grace (`snp.crl.expired`, the API's `api.collateral.crl_stale`).
 * Nothing here decides validity; signatures and dates are the verifier's.
 */
export class CrlKeeper implements CrlSource {
  private readonly held = new Map<string, Held>();
  private readonly leadMs: number;
  private readonly checkEveryMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly source: CrlSource,
    private readonly opts: CrlKeeperOptions,
  ) {
    this.leadMs = opts.leadMs ?? 24 * HOUR_MS;
    this.checkEveryMs = opts.checkEveryMs ?? HOUR_MS;
  }

  getVcekForReport(report: SnpReport, product: SnpProduct): Promise<Uint8Array> {
    return this.source.getVcekForReport(report, product);
  }

  getCertChain(product: SnpProduct, signer: KdsSigner): Promise<CertChain> {
    return this.source.getCertChain(product, signer);
  }

  /** The CRL from the source; when the source fails, the last one held (the verifier judges its age). */
  async getCrl(product: SnpProduct, signer: KdsSigner): Promise<CrlResult> {
    const key = `${signer}/${product}`;
    try {
      const crl = await this.source.getCrl(product, signer, { staleOnError: true });
      this.hold(key, product, signer, crl);
      return crl;
    } catch (e) {
      const held = this.held.get(key);
      if (!held || !(e instanceof CollateralUnavailable)) throw e;
      return { ...held.crl, der: held.crl.der.slice(), stale: this.isStale(held.crl) };
    }
  }

  /**
   * Fetches again every held CRL due (within `leadMs` of its nextUpdate, or without one). A failure is
   * reported to `onRefreshError` and the held CRL kept. The timer calls this; tests call it directly.
   */
  async refresh(): Promise<CrlRefreshReport> {
    let refreshed = 0;
    let failed = 0;
    for (const [key, h] of this.held) {
      if (!this.isDue(h.crl)) continue;
      try {
        const crl = await this.source.getCrl(h.product, h.signer, { refresh: true });
        this.hold(key, h.product, h.signer, crl);
        refreshed++;
      } catch (e) {
        failed++;
        this.opts.onRefreshError?.({ product: h.product, signer: h.signer }, e);
      }
    }
    return { refreshed, failed };
  }

  /** Starts the background timer (unref'd: it never keeps the process alive). */
  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Stops the timer; a refresh under way finishes but schedules nothing. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** When the next background pass is due (ms from now): the earliest refresh time, at most checkEveryMs. */
  nextDelay(): number {
    const now = this.opts.now();
    let delay = this.checkEveryMs;
    for (const h of this.held.values()) {
      const due = h.crl.nextUpdate ? h.crl.nextUpdate.getTime() - this.leadMs - now : 0;
      delay = Math.min(delay, Math.max(due, 0));
    }
    // A failing KDS is not asked in a tight loop: at least a minute between passes (its throttle is 10 s).
    return Math.max(delay, Math.min(60_000, this.checkEveryMs));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.refresh()
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, this.nextDelay());
    this.timer.unref();
  }

  private hold(key: string, product: SnpProduct, signer: KdsSigner, crl: CrlResult): void {
    const held = this.held.get(key);
    // Never step back to an older CRL (a stale cache copy served after a newer fetch).
    if (held && held.crl.thisUpdate > crl.thisUpdate) return;
    this.held.set(key, { product, signer, crl: { ...crl, der: crl.der.slice() } });
  }

  private isDue(crl: CrlResult): boolean {
    return !crl.nextUpdate || this.opts.now() >= crl.nextUpdate.getTime() - this.leadMs;
  }

  private isStale(crl: CrlResult): boolean {
    return !crl.nextUpdate || this.opts.now() >= crl.nextUpdate.getTime();
  }
}
