import type { AuditEntry } from '../store/types.js';

/** Reads audit entries after a sequence number, and the current head. */
export interface AuditSource {
  readAudit(afterSeq: number, limit: number): Promise<AuditEntry[]>;
  headSeq(): Promise<number>;
}

type Listener = (entries: readonly AuditEntry[]) => void;

/**
 * The live decisions feed: new audit entries, handed to each subscriber (the SSE streams). It follows the
 * audit log rather than hooking the broker, so a decision taken by another broker on the same PostgreSQL
 * database appears too, and what the feed shows is exactly what was audited (a refusal that named no
 * instance is not audited, and so not shown: docs/broker.md). It polls only while someone listens.
 */
export class AuditFeed {
  private readonly listeners = new Set<Listener>();
  private after: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  constructor(
    private readonly source: AuditSource,
    private readonly everyMs = 250,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /**
   * Adds a listener for the entries after `fromSeq` (read by the caller as the head when it connected, so
   * nothing appended after that is missed); returns the function that removes it.
   */
  subscribe(fromSeq: number, l: Listener): () => void {
    let last = fromSeq; // each listener sees each entry once, also when the feed rewinds for a newcomer
    const own: Listener = (entries) => {
      const fresh = entries.filter((e) => e.seq > last);
      if (fresh.length === 0) return;
      last = fresh[fresh.length - 1]!.seq;
      l(fresh);
    };
    if (this.after === undefined || this.after > fromSeq) this.after = fromSeq;
    this.listeners.add(own);
    if (!this.timer && !this.polling && !this.closed) this.schedule(0);
    return () => {
      this.listeners.delete(own);
    };
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => void this.poll(), ms);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    this.timer = undefined;
    if (this.closed || this.polling) return;
    if (this.listeners.size === 0) {
      // Nobody listens: forget the position, so a later subscriber starts at the head, not at old entries.
      this.after = undefined;
      return;
    }
    this.polling = true;
    try {
      this.after ??= await this.source.headSeq();
      for (;;) {
        const page = await this.source.readAudit(this.after, 500);
        if (page.length === 0) break;
        this.after = page[page.length - 1]!.seq;
        for (const l of this.listeners) l(page);
        if (page.length < 500) break;
      }
    } catch (e) {
      this.onError(e);
    } finally {
      this.polling = false;
      if (!this.closed) this.schedule(this.everyMs);
    }
  }
}
