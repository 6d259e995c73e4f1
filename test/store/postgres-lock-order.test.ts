/**
 * The PostgreSQL store's lock order, instance row before audit head, kept by the statement that takes both
 * (lockInstanceWithLatestKey saves a release the head's own round trip): a transaction waiting for an
 * instance must not hold the audit head meanwhile, or every decision of every replica would wait with it.
 * Each wait here is on the server's own state (pg_stat_activity, a NOWAIT lock), never on time.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres.js';
import type { Store } from '../../src/store/types.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { draft, instanceRecord } from './contract.js';

let server: TestPostgres;
let url: string;
let store: Store;

before(async () => {
  server = await startTestPostgres();
  url = await server.createSchema();
  store = await openPostgresStore({ connectionString: url });
});
after(async () => {
  await store?.close();
  await server?.stop();
});

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** Whether another session can take the audit head's lock right now (NOWAIT: 55P03 when it is held). */
async function headFree(c: pg.Client): Promise<boolean> {
  await c.query('BEGIN');
  try {
    await c.query('SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE NOWAIT');
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === '55P03') return false;
    throw e;
  } finally {
    await c.query('ROLLBACK');
  }
}

test('a release waiting for its instance holds no audit head lock; once it has the instance, it holds the head', async () => {
  const rec = instanceRecord();
  await store.transaction((tx) => tx.insertInstance(rec));
  const holder = await client();
  const probe = await client();
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM instances WHERE id = $1 FOR UPDATE', [rec.id]);
    let headHeldInside: boolean | undefined;
    const release = store.transaction(async (tx) => {
      const locked = await tx.lockInstanceWithLatestKey(rec.id);
      assert.equal(locked?.instance.id, rec.id);
      headHeldInside = !(await headFree(probe));
      return tx.appendAudit(draft({ instance: rec.id }));
    });
    // Until the server shows the release's statement waiting for a lock (bounded by attempts).
    for (let i = 0; ; i++) {
      const { rows } = await probe.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%AS head_hash%'",
      );
      if (rows[0].n === 1) break;
      assert.ok(i < 2000, 'the release never waited for the instance lock');
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await headFree(probe), true, 'the waiting release holds the audit head');
    await holder.query('COMMIT');
    const entry = await release;
    assert.equal(headHeldInside, true, 'the release did not lock the audit head with its instance');
    assert.equal(entry.instance, rec.id);
    assert.deepEqual(await store.readAudit(entry.seq - 1, 1), [entry]);
  } finally {
    await holder.end();
    await probe.end();
  }
});
