import { CollateralUnavailable } from '../errors.js';

/**
 * How many VCEK requests the client may send to KDS in a window, and how long a definite "no" is remembered.
 *
 * Why: a VCEK is fetched from the report's CHIP_ID and REPORTED_TCB *before* any signature can be checked
 * (the VCEK is what checks it), so an unauthenticated caller choosing a fresh CHIP_ID per report could make
 * the broker fetch without bound. The per-URL throttle does not help (every URL is new). The budget caps the
 * KDS requests such a flood costs; the negative cache makes a repeated bogus request cost nothing.
 */
export interface FetchBudgetOptions {
  /** VCEK requests (each attempt, retries included) allowed per window. Default 64. */
  readonly vcekFetches: number;
  /** The window, in ms, sliding. Default 600 000 (10 minutes). */
  readonly windowMs: number;
  /** How long a VCEK URL that KDS answered 404 or with an unusable body is refused without asking. Default 3 600 000. */
  readonly negativeTtlMs: number;
}

export const DEFAULT_FETCH_BUDGET: FetchBudgetOptions = {
  vcekFetches: 64,
  windowMs: 600_000,
  negativeTtlMs: 3_600_000,
};

/** Most URLs the negative cache remembers; the oldest is forgotten first. */
const MAX_NEGATIVE = 4096;

/**
 * A sliding-window request budget and a bounded negative cache, keyed by URL. Not shared across processes.
 * The clock is injected so tests never depend on elapsed time.
 */
export class FetchBudget {
  private readonly opts: FetchBudgetOptions;
  private readonly spent: number[] = [];
  private readonly negative = new Map<string, { until: number; error: CollateralUnavailable }>();

  constructor(
    opts: Partial<FetchBudgetOptions> | undefined,
    private readonly now: () => number,
  ) {
    this.opts = { ...DEFAULT_FETCH_BUDGET, ...opts };
  }

  /** Throws the remembered refusal when `url` is in the negative cache and has not expired. */
  checkNegative(url: string): void {
    const hit = this.negative.get(url);
    if (!hit) return;
    if (this.now() < hit.until) throw hit.error;
    this.negative.delete(url);
  }

  /** Remembers a definite refusal for `url` (KDS said 404, or served something that is not the item). */
  rememberNegative(url: string, error: CollateralUnavailable): void {
    this.negative.delete(url);
    this.negative.set(url, { until: this.now() + this.opts.negativeTtlMs, error });
    if (this.negative.size > MAX_NEGATIVE) {
      const oldest = this.negative.keys().next().value;
      if (oldest !== undefined) this.negative.delete(oldest);
    }
  }

  /**
   * Spends one request, or throws CollateralUnavailable `kds.fetch_budget` without spending when the window's
   * budget is used up (no request is sent then).
   */
  spend(what: string): void {
    const now = this.now();
    while (this.spent.length > 0 && now - this.spent[0]! >= this.opts.windowMs) this.spent.shift();
    if (this.spent.length >= this.opts.vcekFetches) {
      throw new CollateralUnavailable(
        'kds.fetch_budget',
        `KDS fetch budget spent (${this.opts.vcekFetches} VCEK requests per ${this.opts.windowMs} ms): ${what} not requested; ` +
          'send the certificate table with the report, or import the VCEK (vouchsafe collateral import)',
      );
    }
    this.spent.push(now);
  }
}
