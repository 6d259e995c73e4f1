import type pg from 'pg';

type Sql = string | pg.QueryConfig;

/**
 * One group-commit member's use of its batch's connection, which is in pipeline mode (node-postgres
 * `pipeline: true`: a statement is written without waiting for the answers to those before it; answers come
 * back in the order the statements were sent, each statement with its own Sync).
 *
 * What may travel without waiting, and why that is safe:
 * - The statement that opens the member's transaction or savepoint (`opening`: BEGIN or SAVEPOINT) is not
 *   awaited: the member's first read goes out with it. Had it failed, the read ran outside the transaction
 *   (a row lock taken and dropped at once) and its answer is thrown away: the caller gets the opening
 *   statement's error.
 * - A write waits for that answer: a write must never commit on its own because the BEGIN before it failed.
 * - A write whose answer nobody needs (`send`) is not awaited: the statements after it, the batch's COMMIT
 *   included, follow it. Every later statement's answer is handed out only after those writes' answers
 *   ({@link answered}), so a failed write is reported as itself and first; and the group commit awaits them
 *   before it trusts a COMMIT (a transaction whose write failed answers COMMIT with ROLLBACK).
 *
 * Statements that travel together also leave in one write to the socket: the socket is held (corked) from the
 * opening statement or a `send` until the next statement that waits for an answer, and at the latest until
 * the event loop's next turn. On a loopback connection each write is a system call that delivers the bytes
 * and wakes the server's backend, the largest single cost on a release's event loop in a CPU profile.
 */
export class MemberConnection {
  private open = true;
  private held = false;
  /** The opening statement, sent and not yet answered (cleared once it has succeeded). */
  private opened: Promise<unknown> | undefined;
  /** Writes sent and not yet answered, oldest first. */
  private readonly unanswered: Promise<unknown>[] = [];

  constructor(
    private readonly c: pg.PoolClient,
    opening?: 'BEGIN' | 'SAVEPOINT member',
  ) {
    if (opening) {
      this.hold();
      this.opened = quiet(c.query(opening));
    }
  }

  /** The member has ended: nothing more may be sent, and what is held leaves now. */
  close(): void {
    this.open = false;
    this.release();
  }

  /** A statement that writes nothing (row locks included): sent at once, answered after what came before. */
  async read(sql: Sql, values?: unknown[]): Promise<pg.QueryResult> {
    const r = quiet(this.issue(sql, values));
    this.release();
    await this.transactionOpen();
    await this.answered();
    return r;
  }

  /** A write whose answer the caller needs (a row count, a RETURNING row). */
  async write(sql: Sql, values?: unknown[]): Promise<pg.QueryResult> {
    await this.transactionOpen();
    const r = quiet(this.issue(sql, values));
    await this.answered();
    return r;
  }

  /** A write whose answer nobody needs now: sent, held, not awaited (see the class comment). */
  async send(sql: Sql, values?: unknown[]): Promise<void> {
    await this.transactionOpen();
    this.hold();
    this.unanswered.push(quiet(this.issue(sql, values)));
  }

  /** Resolves once every write sent so far is answered; rejects with the first that failed. */
  async answered(): Promise<void> {
    this.release();
    while (this.unanswered.length > 0) await this.unanswered.shift();
  }

  private async transactionOpen(): Promise<void> {
    if (!this.opened) return;
    this.release();
    await this.opened;
    this.opened = undefined;
  }

  private issue(sql: Sql, values: unknown[] | undefined): Promise<pg.QueryResult> {
    if (!this.open) throw new Error('store transaction used after it ended');
    return typeof sql === 'string' ? this.c.query(sql, values) : this.c.query({ ...sql, values });
  }

  private hold(): void {
    if (this.held) return;
    this.held = true;
    this.c.connection.stream.cork();
    setImmediate(() => this.release());
  }

  private release(): void {
    if (!this.held) return;
    this.held = false;
    this.c.connection.stream.uncork();
  }
}

/**
 * `p`, with a handler attached so that a rejection nobody has awaited yet is not reported as unhandled; it
 * still rejects for whoever awaits it.
 */
export function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}
