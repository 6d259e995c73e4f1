/**
 * The PostgreSQL store's lock order, instance row before audit head, kept by the statements that take both
 * (a release's, a commit's or an end's: they save appendAudit the head's own round trip): a transaction waiting for an
 * instance must not hold the audit head meanwhile, or every decision of every replica would wait with it.
 * Each wait here is on the server's own state (pg_stat_activity, a NOWAIT lock), never on time.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres.js';
import type { Store, StoreTx } from '../../src/store/types.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { activeBoot, draft, instanceRecord } from './contract.js';

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

/** The two statements that lock the head with an instance: a release's, and a commit's or an end's. */
const LOCKS: readonly [
  string,
  (tx: StoreTx, id: string, bootId: string, hostData: Uint8Array) => Promise<string | undefined>,
][] = [
  [
    'lockInstanceByIdentityWithLatestKey',
    async (tx, _, __, hostData) =>
      (await tx.lockInstanceByIdentityWithLatestKey('snp', hostData))?.instance.id,
  ],
  [
    'lockInstanceByBoot, auditHead',
    async (tx, _, bootId) => (await tx.lockInstanceByBoot(bootId, { auditHead: true }))?.id,
  ],
];

/** A registered instance with an active boot. */
async function bootedInstance(): Promise<{ id: string; bootId: string; hostData: Uint8Array }> {
  const rec = instanceRecord();
  const boot = activeBoot();
  await store.transaction(async (tx) => {
    await tx.insertInstance(rec);
    await tx.setBootState(rec.id, { committedCounter: 1, activeBoot: boot });
  });
  return { id: rec.id, bootId: boot.bootId, hostData: rec.hostData };
}

for (const [name, lock] of LOCKS) {
  test(`${name}: waiting for its instance it holds no audit head lock; once it has the instance, it holds the head`, async () => {
    const { id, bootId, hostData } = await bootedInstance();
    const holder = await client();
    const probe = await client();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM instances WHERE id = $1 FOR UPDATE', [id]);
      let headHeldInside: boolean | undefined;
      const decision = store.transaction(async (tx) => {
        assert.equal(await lock(tx, id, bootId, hostData), id);
        headHeldInside = !(await headFree(probe));
        return tx.appendAudit(draft({ instance: id }));
      });
      // Until the server shows the statement waiting for a lock (bounded by attempts).
      for (let i = 0; ; i++) {
        const { rows } = await probe.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%AS head_hash%'",
        );
        if (rows[0].n === 1) break;
        assert.ok(i < 2000, 'the statement never waited for the instance lock');
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(await headFree(probe), true, 'the waiting statement holds the audit head');
      await holder.query('COMMIT');
      const entry = await decision;
      assert.equal(headHeldInside, true, 'the audit head was not locked with the instance');
      assert.deepEqual(await store.readAudit(entry.seq - 1, 1), [entry]);
    } finally {
      await holder.end();
      await probe.end();
    }
  });
}

test('lockInstanceByBoot without auditHead (a heartbeat) leaves the audit head alone', async () => {
  const { id, bootId } = await bootedInstance();
  const probe = await client();
  try {
    const free = await store.transaction(async (tx) => {
      assert.equal((await tx.lockInstanceByBoot(bootId))?.id, id);
      return headFree(probe);
    });
    assert.equal(free, true);
  } finally {
    await probe.end();
  }
});
