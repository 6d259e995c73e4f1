/**
 * Fault: PostgreSQL restarted in the middle of releases. The end-to-end stack (test/e2e/harness.ts: broker,
 * host proxy, simulated guests) runs on a throwaway PostgreSQL cluster. Six guests boot at once (three
 * reboots, three first boots) while the test holds the audit head row locked from its own connection, so
 * each release is provably in flight (one inside its transaction, waiting in the database, the others queued
 * behind it in the broker's group commit) when the server is stopped (`pg_ctl stop -m fast`: every session
 * terminated) and then started again once every boot has its outcome. Each of them fails with a typed
 * ERR_UNAVAILABLE `store.unavailable` (HTTP 503, logged with its reason), not a crash (a dead pooled
 * client used to emit an unhandled 'error') nor an untyped 500. No key changes and no boot starts. The
 * same broker process, never restarted, then boots every guest: each opens its state with its own
 * instance's stored key; the audit chain verifies and records exactly the releases that were delivered.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { openFileKek } from '../../src/broker/kek.js';
import { openSealingKey } from '../../src/broker/sealing-key.js';
import { ErrorCode } from '../../src/errors.js';
import type { BootResult } from '../../src/guest/index.js';
import { deriveStateKey, unsealState } from '../../src/guest/index.js';
import type { SimSnpFirmware } from '../../src/sim/snp/index.js';
import { type Stack, startStack } from '../e2e/harness.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

interface Vm {
  readonly id: string;
  readonly fw: SimSnpFirmware;
  readonly state: string;
  /** The boot before the fault (reboot group), or none yet (first-boot group). */
  before?: BootResult;
  keys: string[];
}

type Outcome = { ok: BootResult } | { err: { code?: unknown; reason?: unknown } };

const settle = (p: Promise<BootResult>): Promise<Outcome> =>
  p.then(
    (ok) => ({ ok }),
    (err) => ({ err }),
  );

describe('fault: PostgreSQL restarted in the middle of releases', () => {
  let cluster: TestPostgres;
  let url: string;
  let s: Stack;
  const logs: string[] = [];
  const vms: Vm[] = [];
  /** Release outcomes per instance: every boot that got a key. */
  const delivered = new Map<string, number>();

  before(async () => {
    // Always a throwaway cluster of its own, even when DATABASE_URL names a shared server: it restarts it.
    cluster = await startTestPostgres({ ownCluster: true });
    s = await startStack(
      {
        name: 'postgres',
        freshDatabase: async () => {
          url = await cluster.createSchema();
          return url;
        },
        stop: async () => {},
      },
      {
        logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(line) }),
        // Deadlines far above anything a loaded machine needs: the test waits on the database, not on time.
        backendTimeoutMs: 120_000,
        proxyTimeouts: { backendMs: 120_000, sessionMs: 300_000, readMs: 120_000 },
      },
    );
    for (let i = 0; i < 6; i++) {
      const inst = await s.register();
      const vm: Vm = { id: inst.id, fw: s.firmware(inst.hostData), state: s.statePath(`vm-${i}`), keys: [] };
      if (i < 3) {
        const r = await s.boot(vm.fw, vm.state, { timeoutMs: 120_000 });
        assert.equal(r.committed, true);
        await r.session?.end();
        vm.before = r;
        delivered.set(vm.id, 1);
      }
      vm.keys = await s.keys(vm.id);
      vms.push(vm);
    }
  });

  after(async () => {
    await s?.close();
    await cluster?.stop();
  });

  const storedKey = async (id: string) => {
    const recs = await s.broker.store.listKeys(id);
    assert.equal(recs.length, 1, `one key for ${id}`);
    return openSealingKey(openFileKek(join(s.broker.dataDir, 'kek')), recs[0]!);
  };

  it('releases waiting in the database when it restarts fail with a typed, logged ERR_UNAVAILABLE store.unavailable; nothing changes', async () => {
    // Hold the audit head: every release transaction then waits for it in its last step (the audit append).
    const locker = new pg.Client({ connectionString: url });
    locker.on('error', () => {}); // the restart terminates this session too
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE');
    const since = logs.length;

    const boots = vms.map((vm) => settle(s.boot(vm.fw, vm.state, { timeoutMs: 120_000 })));
    // The event to wait for: every release waiting for the row lock (or a boot that ended early, which is a
    // failure of its own). Polled with a short pause so the poll does not crowd out the releases. The store
    // groups transactions (src/store/pg-group-commit.ts): one waits in the server, the others behind it in
    // the broker, so the broker's count of unsettled transactions says when all of them are there.
    const pending = () => (s.broker.store as unknown as { pendingTransactions: number }).pendingTransactions;
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    let early: Outcome | undefined;
    void Promise.race(boots).then((o) => {
      early = o;
    });
    for (;;) {
      const r = await watcher.query(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE NOT l.granted AND a.datname = current_database()`,
      );
      if (r.rows[0].n >= 1 && pending() >= vms.length) break;
      assert.equal(early, undefined, `a boot ended before the restart: ${JSON.stringify(early)}`);
      await new Promise((res) => setTimeout(res, 10));
    }
    await watcher.end();

    // Stopped (every session terminated), and started again only once every boot has its outcome: the
    // releases queued behind the one waiting in the server (group commit runs one batch at a time) try the
    // database while it is certainly gone, whatever the machine's speed. With a plain restart a slow broker
    // could reach the restarted server with them, which is right, but not what this test is about.
    let outcomes: Outcome[] = [];
    await cluster.restart!(async () => {
      outcomes = await Promise.all(boots);
    });
    await locker.end().catch(() => {});

    for (const o of outcomes) {
      assert.ok('err' in o, 'no key is released while the database is gone');
      assert.deepEqual([o.err.code, o.err.reason], [ErrorCode.Unavailable, 'store.unavailable']);
    }
    const refused = logs
      .slice(since)
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === 'request refused' && l.reason === 'store.unavailable');
    assert.equal(refused.length, vms.length, 'each failed release is logged with its reason');
    assert.ok(refused.every((l) => l.status === 503 && l.code === ErrorCode.Unavailable));
    for (const vm of vms) {
      assert.deepEqual(await s.keys(vm.id), vm.keys, 'keys unchanged');
      const inst = await s.broker.store.getInstance(vm.id);
      assert.equal(inst?.activeBoot, null, 'no boot started');
      assert.equal(inst?.committedCounter, vm.before ? Number(vm.before.counter) : null);
    }
  });

  it('the same broker process recovers (the pool reconnects): every guest boots with its own key', async () => {
    const outcomes = await Promise.all(vms.map((vm) => s.boot(vm.fw, vm.state, { timeoutMs: 120_000 })));
    for (const [i, r] of outcomes.entries()) {
      const vm = vms[i]!;
      assert.equal(r.committed, true);
      if (vm.before) {
        assert.equal(r.firstBoot, false);
        assert.equal(r.statedCounter, vm.before.counter);
        assert.deepEqual(r.state, vm.before.state, 'the state sealed before the fault opened');
      } else {
        assert.equal(r.firstBoot, true);
      }
      await r.session?.end();
      delivered.set(vm.id, (delivered.get(vm.id) ?? 0) + 1);
      // The key the guest received is the instance's stored key: its state opens with it (and only it).
      const file = new Uint8Array(readFileSync(vm.state));
      assert.deepEqual(unsealState(file, deriveStateKey(await storedKey(vm.id))).body, r.state);
      const other = deriveStateKey(await storedKey(vms[(i + 1) % vms.length]!.id));
      assert.throws(() => unsealState(file, other), { code: ErrorCode.SignatureInvalid });
      if (vm.before) assert.deepEqual(await s.keys(vm.id), vm.keys, 'no key changed');
    }
  });

  it('the audit chain verifies and records exactly the releases that were delivered', async () => {
    const audit = await s.admin('GET', '/v1/admin/audit/verify');
    assert.equal(audit.body.ok, true, JSON.stringify(audit.body));
    const entries = await s.broker.broker.readAudit(0, 10_000);
    for (const vm of vms) {
      const releases = entries.filter((e) => e.kind === 'release' && e.instance === vm.id);
      const accepted = releases.filter((e) => e.decision === 'accept');
      assert.equal(accepted.length, delivered.get(vm.id), `accepted releases of ${vm.id}`);
      // A refusal written once the server was back names the outage; none claims a key.
      for (const e of releases.filter((x) => x.decision === 'refuse')) {
        assert.deepEqual(e.reasons, ['store.unavailable']);
      }
    }
  });
});
