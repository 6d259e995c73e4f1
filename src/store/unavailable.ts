import { Unavailable } from '../errors.js';

/**
 * Typed store outages. A database that cannot be reached, was restarted under an open transaction, or has
 * no space left must reach the caller as `Unavailable` (ERR_UNAVAILABLE, HTTP 503: retry later), not as a
 * driver error that the API answers with an untyped 500. Only failures of the database's *availability*
 * are mapped; a constraint violation, corruption or misuse stays what it is (a bug, not an outage).
 *
 * Reasons:
 * - `store.full`: no space left (SQLite SQLITE_FULL; PostgreSQL SQLSTATE 53100 disk_full). A transaction
 *   whose COMMIT failed decided nothing: the broker returns no key for it.
 * - `store.unavailable`: the database cannot be used right now (SQLite I/O errors, locks held past the busy
 *   timeout, a read-only or unopenable file; PostgreSQL connection failures and resets, SQLSTATE classes 08
 *   connection exception, 53 insufficient resources, 57P01-57P05 server shut down or restarting).
 */
export const STORE_REASONS = { full: 'store.full', unavailable: 'store.unavailable' } as const;

/** SQLite primary result codes (better-sqlite3 `SqliteError.code`, extended codes start with these). */
const SQLITE_OUTAGE = /^SQLITE_(IOERR|BUSY|LOCKED|CANTOPEN|READONLY|NOMEM|PROTOCOL|NOLFS)(_|$)/;
/** Socket errors of the connection to a PostgreSQL server. */
const NET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/**
 * node-postgres reports a connection that ended, or a pool that timed out connecting, with plain Errors
 * that carry no code: these messages are the only way to tell them (pg 8, lib/client.js and pg-pool).
 */
const PG_CONNECTION_MESSAGE =
  /^(Connection terminated|Client has encountered a connection error|Client was closed|timeout exceeded when trying to connect)/;

/** The typed outage a database driver error stands for, or undefined when it is not an outage. */
export function storeOutage(e: unknown): Unavailable | undefined {
  if (!(e instanceof Error)) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code === 'SQLITE_FULL' || code === '53100') return outage(STORE_REASONS.full, e);
    if (SQLITE_OUTAGE.test(code) || NET_CODES.has(code)) return outage(STORE_REASONS.unavailable, e);
    // A PostgreSQL SQLSTATE sent by the server (pg's DatabaseError has a severity).
    if ('severity' in e && /^(08|53)[0-9A-Z]{3}$|^57P0[1-5]$/.test(code))
      return outage(STORE_REASONS.unavailable, e);
    return undefined;
  }
  return PG_CONNECTION_MESSAGE.test(e.message) ? outage(STORE_REASONS.unavailable, e) : undefined;
}

function outage(reason: string, cause: Error): Unavailable {
  const what = reason === STORE_REASONS.full ? 'the store has no space left' : 'the store is unavailable';
  return new Unavailable(reason, what, { cause });
}

/**
 * The same store, with every method's driver outage rethrown as {@link storeOutage}'s Unavailable (the
 * driver error kept as `cause`). Errors thrown inside a transaction callback by its own code (a refusal, a
 * bug) pass through unchanged; a driver error inside it (a statement, or the COMMIT) is mapped once it
 * leaves the transaction. A proxy rather than a wrapper class, so that methods added to an engine are
 * covered without touching this file.
 */
export function typedStoreErrors<S extends object>(store: S): S {
  const rethrow = (e: unknown): never => {
    throw storeOutage(e) ?? e;
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        let r: unknown;
        try {
          r = Reflect.apply(v, target, args);
        } catch (e) {
          rethrow(e);
        }
        return r instanceof Promise ? r.catch(rethrow) : r;
      };
    },
  });
}
