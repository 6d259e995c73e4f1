import { Unavailable } from '../errors.js';

/**
 * One byte budget shared by every session of a proxy: the bytes received from guests and not yet consumed
 * as frames. Each session may buffer up to one frame plus the decoder's slack (about 2 MiB); without a
 * shared bound, 1024 sessions could hold 2 GiB. A session whose next chunk would overrun the budget is the
 * one that is closed (BufferBudgetExceeded), so a peer cannot make the proxy run out of memory, only lose
 * its own session.
 */
export class BufferBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** Bytes currently charged across all sessions. */
  get charged(): number {
    return this.used;
  }

  /** Charges `n` bytes if they fit; false (and nothing charged) if they do not. */
  tryCharge(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  /** Returns `n` previously charged bytes. */
  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/**
 * A session closed because the proxy's shared receive budget was spent: ERR_UNAVAILABLE
 * `proxy.buffer_budget` (the proxy is overloaded; the guest may try again).
 */
export class BufferBudgetExceeded extends Unavailable {
  constructor(readonly limit: number) {
    super('proxy.buffer_budget', `the proxy's receive buffer budget (${limit} bytes) is spent`);
  }
}
