/**
 * A FIFO async mutex. The SQLite engine has one connection per process; while a transaction is open on
 * it (possibly across an await), every other call must wait, or its statements would run inside that
 * transaction.
 */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
