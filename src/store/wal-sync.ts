import { close, fdatasync, fstatSync, open } from 'node:fs';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { Unavailable } from '../errors.js';
import { STORE_REASONS } from './unavailable.js';

/**
 * Group commit for the SQLite store, off the event loop.
 *
 * better-sqlite3 is synchronous: with `synchronous=FULL` every COMMIT waits for an fsync of the WAL on the
 * main thread, so one release's disk flush stalls every other request the broker is serving, and N
 * concurrent releases cost N flushes one after the other. Instead the connection commits with
 * `synchronous=NORMAL` (in WAL mode: the frames are written to the WAL with write(2), nothing is flushed,
 * and the database stays consistent after a crash: SQLite drops a WAL tail whose checksums do not match),
 * and the caller then awaits {@link WalSync.sync}, which fdatasyncs the WAL file on libuv's thread pool.
 * A transaction's result is handed back only after a flush that *started after its COMMIT* completed, so
 * it is as durable as with `synchronous=FULL` (the same frames reach stable storage before anyone acts
 * on them), and every commit written while one flush runs shares the next one: one flush per group.
 *
 * Order is kept: the WAL is append-only, so a flush that covers a transaction covers every transaction that
 * committed before it (a later decision can never be durable while an earlier one it read is not). A WAL
 * reset after a checkpoint does not break this: SQLite's checkpoint flushes the WAL and the database file
 * itself (it does so in NORMAL too) before the WAL is reused.
 *
 * The WAL is flushed through one descriptor opened at the first flush and kept until {@link WalSync.close}
 * (an open and a close per flush cost as much main-thread CPU as the flush's share of a release). That is
 * the same file for the store's whole life: SQLite unlinks the WAL only when the last connection to the
 * database closes, and the store's own connection stays open until it closes this too (checked anyway:
 * an unlinked descriptor is replaced, see walFd).
 *
 * The first flush also flushes the directory, so the WAL file's own directory entry is on disk (a WAL
 * created since the database was opened would otherwise be durable in content but not in name). A failed
 * flush is sticky (Linux may drop the dirty pages it failed to write and report success next time): every
 * later {@link WalSync.sync} fails with Unavailable `store.unavailable`, and the store must be reopened.
 */
export class WalSync {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  private dirSynced = false;
  private failure: Unavailable | null = null;
  /** Flushes started so far (one per group of commits); for benchmarks and tests. */
  flushes = 0;
  /** Times the WAL was (re)opened; for tests. */
  opens = 0;
  private fd: number | null = null;

  /**
   * `walPath`: the database file's `-wal` file. `datasyncFile` replaces the flush of one file (tests
   * that hold a flush open).
   */
  constructor(
    private readonly walPath: string,
    private readonly datasyncFile?: (path: string) => Promise<void>,
  ) {}

  /** Resolves once everything written to the WAL before this call is on stable storage. */
  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!this.running) return this.start();
    // A flush is running, possibly started before the caller's COMMIT wrote its frames: wait for the next
    // one, which every caller arriving meanwhile shares.
    this.queued ??= this.running
      .catch(() => {})
      .then(() => {
        this.queued = null;
        return this.start();
      });
    return this.queued;
  }

  private start(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.flushes++;
    const p = this.flush().finally(() => {
      if (this.running === p) this.running = null;
    });
    this.running = p;
    return p;
  }

  private async flush(): Promise<void> {
    try {
      if (this.datasyncFile) await this.datasyncFile(this.walPath);
      else await fdatasyncAsync(await this.walFd());
      if (!this.dirSynced) {
        await (this.datasyncFile ?? datasyncPath)(dirname(this.walPath));
        this.dirSynced = true;
      }
    } catch (cause) {
      // No WAL file: SQLite removed it after checkpointing everything into the database file, which it
      // flushed first, so there is nothing of ours left to flush.
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.failure = new Unavailable(STORE_REASONS.unavailable, 'the store could not flush its log', {
        cause,
      });
      throw this.failure;
    }
  }

  /**
   * The WAL's descriptor, opened once. Should the file ever be unlinked under it (SQLite does not while the
   * store's connection is open, but a flush of an unlinked file would flush nothing anyone reads), fstat
   * shows no links left and the current file is opened instead: one fstat, ~1 µs, on this thread.
   */
  private async walFd(): Promise<number> {
    if (this.fd !== null && fstatSync(this.fd).nlink > 0) return this.fd;
    if (this.fd !== null) await closeAsync(this.fd);
    this.fd = null;
    this.fd = await openAsync(this.walPath, 'r');
    this.opens++;
    return this.fd;
  }

  /** Closes the WAL's descriptor (the store calls this when it closes its connection). */
  async close(): Promise<void> {
    await this.queued?.catch(() => {});
    await this.running?.catch(() => {});
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) await closeAsync(fd);
  }
}

const openAsync = promisify(open);
const fdatasyncAsync = promisify(fdatasync);
const closeAsync = promisify(close);

async function datasyncPath(path: string): Promise<void> {
  const fd = await openAsync(path, 'r');
  try {
    await fdatasyncAsync(fd);
  } finally {
    await closeAsync(fd);
  }
}
