/**
 * Failed dashboard sign-ins per source address: after `max` failures within `windowMs`, sign-in from that
 * source is refused (`429 web.sign_in_limited`, with Retry-After) until the oldest failure leaves the
 * window, whatever credential is tried. A credential is 256 random bits (or the admin token), so this is
 * not what keeps it unguessable; it keeps a scanner from filling the log and the CPU. Held in memory, at
 * most `maxSources` addresses (the oldest forgotten first).
 */
export class SignInLimit {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly now: () => number,
    private readonly max = 10,
    private readonly windowMs = 10 * 60_000,
    private readonly maxSources = 10_000,
  ) {}

  /** Seconds until `source` may try again, or 0 when it may now. */
  retryAfter(source: string): number {
    const list = this.recent(source);
    if (list.length < this.max) return 0;
    return Math.max(1, Math.ceil((list[0]! + this.windowMs - this.now()) / 1000));
  }

  failed(source: string): void {
    const list = this.recent(source);
    list.push(this.now());
    this.failures.delete(source);
    this.failures.set(source, list);
    while (this.failures.size > this.maxSources) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }

  private recent(source: string): number[] {
    const since = this.now() - this.windowMs;
    const list = (this.failures.get(source) ?? []).filter((t) => t > since);
    if (list.length === 0) this.failures.delete(source);
    else this.failures.set(source, list);
    return list;
  }
}
