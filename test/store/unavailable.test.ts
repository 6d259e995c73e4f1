/**
 * Store outages as typed errors (src/store/unavailable.ts): which driver errors become Unavailable
 * `store.full` / `store.unavailable`, and that everything else (a constraint violation, corruption, a bug in
 * a transaction callback) passes through unchanged. The faults that produce them for real are in
 * test/faults/disk-full.test.ts and test/faults/postgres-restart.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerRefused } from '../../src/broker/errors.js';
import { ErrorCode } from '../../src/errors.js';
import { storeOutage, typedStoreErrors } from '../../src/store/unavailable.js';

const coded = (code: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error('driver says no'), { code, ...extra });

describe('store outages', () => {
  it('maps a full disk, I/O and lock errors, and lost PostgreSQL connections', () => {
    const cases: [Error, string][] = [
      [coded('SQLITE_FULL'), 'store.full'],
      [coded('53100', { severity: 'ERROR' }), 'store.full'],
      [coded('SQLITE_IOERR_WRITE'), 'store.unavailable'],
      [coded('SQLITE_BUSY'), 'store.unavailable'],
      [coded('SQLITE_READONLY_DBMOVED'), 'store.unavailable'],
      [coded('57P01', { severity: 'FATAL' }), 'store.unavailable'],
      [coded('08006', { severity: 'FATAL' }), 'store.unavailable'],
      [coded('53300', { severity: 'FATAL' }), 'store.unavailable'],
      [coded('ECONNREFUSED'), 'store.unavailable'],
      [new Error('Connection terminated unexpectedly'), 'store.unavailable'],
      [new Error('timeout exceeded when trying to connect'), 'store.unavailable'],
    ];
    for (const [e, reason] of cases) {
      const out = storeOutage(e);
      assert.deepEqual([out?.code, out?.reason], [ErrorCode.Unavailable, reason], String(e.message));
      assert.equal(out?.cause, e, 'the driver error is kept as the cause');
    }
  });

  it('leaves what is not an outage alone', () => {
    for (const e of [
      coded('SQLITE_CONSTRAINT_UNIQUE'),
      coded('SQLITE_CORRUPT'),
      coded('23505', { severity: 'ERROR' }),
      coded('57P01'), // a SQLSTATE-looking code without a server severity is not the server's
      new Error('store transaction used after it ended'),
      'not an error',
    ]) {
      assert.equal(storeOutage(e), undefined, String(e));
    }
  });

  it('a guarded store rethrows outages typed and passes the callback’s own errors through', async () => {
    const refusal = new BrokerRefused('broker.clone');
    const store = typedStoreErrors({
      engine: 'test',
      full: () => Promise.reject(coded('SQLITE_FULL')),
      syncIo: () => {
        throw coded('SQLITE_IOERR');
      },
      refuse: () => Promise.reject(refusal),
      bug: () => Promise.reject(new TypeError('x is undefined')),
      ok: () => Promise.resolve(7),
    });
    assert.equal(store.engine, 'test');
    assert.equal(await store.ok(), 7);
    await assert.rejects(store.full(), { code: ErrorCode.Unavailable, reason: 'store.full' });
    assert.throws(() => store.syncIo(), { code: ErrorCode.Unavailable, reason: 'store.unavailable' });
    await assert.rejects(store.refuse(), (e) => e === refusal);
    await assert.rejects(store.bug(), TypeError);
  });
});
