import { AsyncResource } from 'node:async_hooks';
import type pg from 'pg';
import { Unavailable } from '../errors.js';
import { MemberConnection, quiet } from './pg-member-connection.js';
import type { StoreTx } from './types.js';
import { STORE_REASONS } from './unavailable.js';

/** A member's transaction handle, on its batch's connection (which the batch closes when the member ends). */
export interface MemberTx extends StoreTx {
  /**
   * The member's callback succeeded (its writes stay in the transaction): what it learnt under the
   * transaction's locks may serve the members after it (`shared`, see {@link PgGroupCommit}).
   */
  kept?(): void;
}

interface Job {
  readonly fn: (tx: StoreTx) => Promise<unknown>;
  /** Times this job was chosen as a deadlock victim and run again. */
  retries: number;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** Transactions merged into one PostgreSQL transaction at most (bounds the time the audit head is held). */
const MAX_BATCH = 64;
/** A deadlock victim runs again in the next batch up to this many times before it fails as unavailable. */
const MAX_DEADLOCK_RETRIES = 8;

/**
 * Group commit for the PostgreSQL store. Every decision appends to the hash-chained audit log, which locks
 * the single audit-head row until COMMIT, and COMMIT waits for the WAL flush: so decisions were committed
 * strictly one after another, one flush each, and PostgreSQL's own grouping of concurrent flushes never
 * applied (nothing else could reach its COMMIT while the head was held).
 *
 * Here the transactions a broker process asks for while a batch is running wait for the batch, then run
 * one after another inside ONE PostgreSQL transaction, each under a SAVEPOINT: a callback that throws is
 * rolled back to its savepoint (its writes undone, its error returned to its caller at once) and the
 * others go on; then one COMMIT, one WAL flush, and only then does each caller get its result. So each
 * caller still sees its transaction either committed and durable or not at all, and the batch is
 * equivalent to running its members one after another (each sees the writes of those before it, under
 * the same locks). A failed COMMIT fails every member: none of them decided anything.
 *
 * With several broker processes on one database, two batches that lock the same instance rows in opposite
 * orders can deadlock; PostgreSQL aborts one statement (SQLSTATE 40P01). That member is rolled back to its
 * savepoint (which releases the locks it took, so the other batch proceeds) and runs again in the next
 * batch, where it sees the other process's committed decision: a deadlock is contention, not an outage, and
 * the caller gets the decision it would have got one after another (e.g. `broker.clone` for the second of
 * two racing boots). Only after MAX_DEADLOCK_RETRIES such aborts does it fail with Unavailable
 * `store.unavailable`.
 */
export class PgGroupCommit<S = undefined> {
  private readonly queue: Job[] = [];
  private running = false;
  /** COMMITs issued so far (one per batch); for benchmarks and tests. */
  commits = 0;
  /** Transactions asked for and not yet settled (queued or in the running batch); for tests. */
  pending = 0;

  /**
   * `makeTx` gets `shared`, one value per PostgreSQL transaction (`newShared()` at each BEGIN): what members
   * learnt under locks the transaction still holds. A member publishes into it only from `kept()`, so a
   * member rolled back to its savepoint (whose locks PostgreSQL releases with it) leaves nothing there.
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly makeTx: (c: MemberConnection, shared: S) => MemberTx,
    private readonly newShared: () => S = () => undefined as S,
  ) {}

  /** Runs `fn` in the next batch; resolves after that batch's COMMIT, rejects with `fn`'s error or the batch's. */
  run<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    this.pending++;
    const settled = () => {
      this.pending--;
    };
    // Run in the caller's async context, not the batch loop's (which is that of whichever caller started
    // it): what a member reads from an AsyncLocalStorage, such as the admin credential the Broker names in
    // its audit entries (src/broker/actor.ts), must be its own caller's. (An AsyncResource and
    // runInAsyncScope: ~0.3-0.6 µs; AsyncResource.bind costs ~13 µs a call here.)
    const scope = new AsyncResource('vouchsafe.pg-group-commit.member');
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        fn: (tx) => scope.runInAsyncScope(fn, null, tx),
        retries: 0,
        resolve: (v) => {
          settled();
          resolve(v as T);
        },
        reject: (e) => {
          settled();
          reject(e);
        },
      });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) await this.batch(this.queue.splice(0, MAX_BATCH));
    } finally {
      this.running = false;
    }
  }

  private async batch(jobs: Job[]): Promise<void> {
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (e) {
      for (const j of jobs) j.reject(e);
      return;
    }
    let broken = false;
    // A checked-out client's errors have no listener in the pool: keep a dead one out of it (postgres.ts).
    const onError = () => {
      broken = true;
    };
    c.on('error', onError);
    const committed: { job: Job; value: unknown }[] = [];
    let next = 0;
    // A transaction is open on `c` (BEGIN sent, not yet committed or rolled back), and its shared value.
    let open = false;
    let shared = this.newShared();
    // The COMMIT sent behind the last member's writes, when it travels with them (below).
    let commit: Promise<pg.QueryResult> | undefined;
    try {
      for (; next < jobs.length; next++) {
        const job = jobs[next]!;
        // A member with nothing committed before it in this transaction needs no savepoint (a round trip
        // saved in every batch, and in most batches below the peak that is every member): if it fails, the
        // whole transaction holds nothing else and is rolled back, and the next member begins a new one.
        // BEGIN or SAVEPOINT is not awaited: the member's first read goes out with it (pg-member-connection.ts).
        const alone = committed.length === 0;
        if (!open) shared = this.newShared();
        const conn = new MemberConnection(c, !open ? 'BEGIN' : alone ? undefined : 'SAVEPOINT member');
        open = true;
        const tx = this.makeTx(conn, shared);
        let value: unknown;
        try {
          value = await job.fn(tx);
          // The last member of a transaction it has alone: COMMIT follows its unanswered writes on the wire,
          // one round trip for both. If one of those writes failed, the transaction is aborted and COMMIT
          // ends it with a ROLLBACK, so the member fails and nothing else is lost. With members before it,
          // its writes are answered first: one that failed is undone to the savepoint, not the whole batch.
          if (alone && next === jobs.length - 1) {
            commit = quiet(c.query('COMMIT'));
            open = false;
          }
          await conn.answered();
        } catch (e) {
          conn.close();
          if (commit) {
            await commit.catch(() => {});
            commit = undefined;
          } else if (alone) {
            open = false;
            await c.query('ROLLBACK');
          } else {
            await c.query('ROLLBACK TO SAVEPOINT member');
          }
          const victim = deadlock(e);
          if (victim && job.retries < MAX_DEADLOCK_RETRIES) {
            job.retries++;
            this.queue.push(job); // the drain loop runs it in the next batch, after this one commits
          } else {
            job.reject(victim ?? e);
          }
          continue;
        }
        // No RELEASE SAVEPOINT: it would cost a round trip per member and change nothing. The next member's
        // SAVEPOINT of the same name shadows this one (ROLLBACK TO names the newest), COMMIT ends them all,
        // and a member that wrote keeps its subtransaction id either way.
        tx.kept?.();
        conn.close();
        committed.push({ job, value });
      }
      if (open) commit = c.query('COMMIT');
      if (commit) {
        // PostgreSQL answers COMMIT of a transaction that had failed with ROLLBACK, not an error.
        const tag = (await commit).command;
        if (tag !== 'COMMIT') throw new Error(`the store answered COMMIT with ${tag}`);
        this.commits++;
      }
      for (const { job, value } of committed) job.resolve(value);
    } catch (e) {
      // BEGIN, a savepoint statement, a rollback or COMMIT failed: nothing of this batch is committed.
      try {
        await c.query('ROLLBACK');
      } catch {
        broken = true;
      }
      for (const { job } of committed) job.reject(e);
      for (const job of jobs.slice(next)) job.reject(e);
    } finally {
      c.removeListener('error', onError);
      c.release(broken ? true : undefined);
    }
  }
}

function deadlock(e: unknown): Unavailable | undefined {
  if ((e as { code?: unknown })?.code !== '40P01') return undefined;
  return new Unavailable(STORE_REASONS.unavailable, 'the store aborted the transaction (deadlock); retry', {
    cause: e,
  });
}
