import { ErrorCode } from '../errors.js';
import { ApiError } from './http-errors.js';

/** Limits for refused unauthenticated guest requests, per source address. */
export interface RefusalLimitOptions {
  /** Refusals a source may collect at once before it is turned away (default 64). */
  readonly burst?: number;
  /** Refusals forgiven per minute (default 60: one a second on average). */
  readonly perMinute?: number;
  /** Sources tracked at most; the least recently charged is forgotten beyond this (default 10 000). */
  readonly maxSources?: number;
  /** Clock in ms (default Date.now); tests pass their own. */
  readonly now?: () => number;
}

/** A source turned away: ERR_REFUSED `api.rate_limited` (HTTP 429), with the seconds to wait. */
export class RateLimited extends ApiError {
  constructor(
    readonly retryAfterSeconds: number,
    message = 'too many refused requests from this source; retry later',
  ) {
    super(ErrorCode.Refused, 'api.rate_limited', message);
  }
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per source address for guest requests the broker refused without naming a real instance
 * or boot (an unknown boot id, an unknown challenge: Broker.isUnattributedRefusal). Those are neither audited
 * nor otherwise costly to send, so a source that keeps sending them is turned away before it reaches the
 * broker, while accepted requests and refusals that name a real boot never count. In memory, per broker
 * process; a source is an address as the HTTP layer sees it (a proxy in front must not hide the client's).
 */
export class RefusalLimiter {
  private readonly burst: number;
  private readonly perMs: number;
  private readonly maxSources: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(o: RefusalLimitOptions = {}) {
    this.burst = positive(o.burst ?? 64, 'burst');
    this.perMs = positive(o.perMinute ?? 60, 'perMinute') / 60_000;
    this.maxSources = positive(o.maxSources ?? 10_000, 'maxSources');
    this.now = o.now ?? Date.now;
  }

  /** Throws RateLimited (with `message`, when given) when `source` has nothing left to spend. */
  check(source: string, message?: string): void {
    const b = this.refill(source);
    if (b && b.tokens < 1)
      throw new RateLimited(Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)), message);
  }

  /** Spends one refusal of `source`. */
  charge(source: string): void {
    const b = this.refill(source) ?? { tokens: this.burst, at: this.now() };
    b.tokens -= 1;
    // Re-insert so that Map order is least recently charged first.
    this.buckets.delete(source);
    this.buckets.set(source, b);
    while (this.buckets.size > this.maxSources) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
    }
  }

  private refill(source: string): Bucket | undefined {
    const b = this.buckets.get(source);
    if (!b) return undefined;
    const t = this.now();
    b.tokens = Math.min(this.burst, b.tokens + Math.max(0, t - b.at) * this.perMs);
    b.at = t;
    if (b.tokens >= this.burst) {
      this.buckets.delete(source); // full again: nothing to remember
      return undefined;
    }
    return b;
  }
}

function positive(n: number, name: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`refusal limit ${name} must be positive`);
  return n;
}
