/**
 * The store contract: one suite, run against every engine (sqlite.test.ts, postgres.test.ts). Each test
 * gets a fresh, empty store location.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { hashAuditEntry } from '../../src/store/audit-hash.js';
import { AuditValueInvalid } from '../../src/store/audit-row.js';
import { formatAuditHead, parseAuditHead, verifyAuditChain } from '../../src/store/audit-verify.js';
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS } from '../../src/store/migrations.js';
import { openStore } from '../../src/store/open.js';
import type { AuditDraft, Engine, InstanceRecord, Store, StoreTx } from '../../src/store/types.js';
import { sibling } from '../helpers/paths.js';
import { raceChildren } from './race.js';

export interface StoreHarness {
  readonly engine: Engine;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** The location string (for openStore) of a fresh, empty store. */
  fresh(): Promise<string>;
  /** Raw SQL as someone with write access to the database: append-only triggers bypassed. */
  tamper(location: string, sql: string): Promise<void>;
  /** Raw read-only SQL. */
  query(location: string, sql: string): Promise<Record<string, unknown>[]>;
}

const CHILD = sibling(import.meta.url, 'child.ts');

const digest = (s: string | Uint8Array) => new Uint8Array(createHash('sha256').update(s).digest());

export function instanceRecord(over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id: randomUUID(),
    project: 'proj',
    zone: 'europe-west4-a',
    instanceId: String(BigInt(`0x${randomBytes(7).toString('hex')}`)),
    instanceName: 'vm-1',
    hostData: new Uint8Array(randomBytes(32)),
    policy: { measurement: ['aa'], minTcb: { snp: 3 }, nested: [1, true, null] },
    createdAt: 1_700_000_000_000,
    ...over,
  };
}

/** An active boot as the broker records it (a fresh boot id each call). */
export function activeBoot() {
  return {
    bootId: randomUUID(),
    startedAt: 10,
    leaseExpiresAt: 20,
    tokenHash: digest('t'),
    launchId: digest('launch'),
  };
}

export function draft(over: Partial<AuditDraft> = {}): AuditDraft {
  return {
    time: 1_700_000_000_000,
    kind: 'test',
    instance: null,
    decision: 'accept',
    reasons: ['test.ok'],
    evidenceDigest: null,
    details: {},
    ...over,
  };
}

export function runStoreContract(h: StoreHarness): void {
  describe(`store contract: ${h.engine}`, () => {
    const opened: Store[] = [];
    const open = async (location?: string) => {
      const s = await openStore(location ?? (await h.fresh()));
      opened.push(s);
      return s;
    };
    before(async () => h.setup?.());
    after(async () => {
      for (const s of opened) await s.close().catch(() => {});
      await h.teardown?.();
    });

    describe('migrations', () => {
      it('applies numbered migrations once and records them; reopening is idempotent', async () => {
        const loc = await h.fresh();
        const a = await open(loc);
        assert.equal(a.engine, h.engine);
        const b = await open(loc);
        assert.deepEqual((await b.auditHead()).seq, 0);
        const rows = await h.query(loc, 'SELECT version, name FROM schema_migrations ORDER BY version');
        const listed = h.engine === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS;
        assert.deepEqual(
          rows.map((r) => Number(r.version)),
          listed.map((m) => m.version).sort((x, y) => x - y),
        );
      });

      it('is safe when several processes open a fresh store at once', async () => {
        const loc = await h.fresh();
        const results = await raceChildren<number>(CHILD, [loc, 'open'], [null, null, null]);
        assert.deepEqual(results, [0, 0, 0]);
        const rows = await h.query(loc, 'SELECT version FROM schema_migrations');
        assert.equal(rows.length, (h.engine === 'sqlite' ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS).length);
      });
    });

    describe('challenges', () => {
      it('consumes a challenge exactly once and returns its expiry', async () => {
        const s = await open();
        const d = digest('c1');
        await s.insertChallenge(d, 5000);
        assert.deepEqual(await s.consumeChallenge(d), { expiresAt: 5000 });
        assert.equal(await s.consumeChallenge(d), undefined);
        assert.equal(await s.consumeChallenge(digest('never issued')), undefined);
      });

      it('consumes once among many concurrent callers in one process', async () => {
        const s = await open();
        const d = digest('c2');
        await s.insertChallenge(d, 5000);
        const got = await Promise.all(Array.from({ length: 20 }, () => s.consumeChallenge(d)));
        assert.equal(got.filter((g) => g !== undefined).length, 1);
      });

      it('purges only challenges that expired before the cut-off', async () => {
        const s = await open();
        await s.insertChallenge(digest('old'), 1000);
        await s.insertChallenge(digest('new'), 3000);
        assert.equal(await s.purgeChallenges(2000), 1);
        assert.equal(await s.consumeChallenge(digest('old')), undefined);
        assert.deepEqual(await s.consumeChallenge(digest('new')), { expiresAt: 3000 });
      });

      it('two processes racing over the same 100 challenges consume each exactly once', async () => {
        const loc = await h.fresh();
        const s = await open(loc);
        const hexes: string[] = [];
        for (let i = 0; i < 100; i++) {
          const d = digest(randomBytes(32));
          await s.insertChallenge(d, Date.now() + 60_000);
          hexes.push(Buffer.from(d).toString('hex'));
        }
        const [a, b] = await raceChildren<string[]>(CHILD, [loc, 'consume'], [hexes, hexes]);
        const all = [...a!, ...b!];
        assert.equal(all.length, 100, 'every challenge consumed exactly once in total');
        assert.equal(new Set(all).size, 100, 'no challenge consumed by both processes');
        assert.deepEqual(new Set(all), new Set(hexes));
        for (const hex of hexes) assert.equal(await s.consumeChallenge(Buffer.from(hex, 'hex')), undefined);
      });
    });

    describe('instances', () => {
      it('inserts, finds by id and by HOST_DATA, lists, and round-trips the policy JSON', async () => {
        const s = await open();
        const rec = instanceRecord();
        assert.equal(await s.transaction((tx) => tx.insertInstance(rec)), 'inserted');
        const got = await s.getInstance(rec.id);
        assert.deepEqual(got, {
          ...rec,
          committedCounter: null,
          committedDigest: null,
          activeBoot: null,
          newLaunch: 'takeover',
          tee: 'snp',
        });
        assert.deepEqual(await s.findInstanceByIdentity('snp', rec.hostData), got);
        assert.equal(await s.findInstanceByIdentity('snp', new Uint8Array(32)), undefined);
        assert.equal(await s.findInstanceByIdentity('tdx', rec.hostData), undefined);
        assert.equal(await s.getInstance('nope'), undefined);
        assert.deepEqual(await s.listInstances(), [got]);
      });

      it('reports a duplicate HOST_DATA and a duplicate platform identity without inserting', async () => {
        const s = await open();
        const rec = instanceRecord();
        await s.transaction((tx) => tx.insertInstance(rec));
        const sameHostData = instanceRecord({ hostData: rec.hostData });
        const sameIdentity = instanceRecord({ instanceId: rec.instanceId });
        assert.equal(await s.transaction((tx) => tx.insertInstance(sameHostData)), 'duplicate_host_data');
        assert.equal(await s.transaction((tx) => tx.insertInstance(sameIdentity)), 'duplicate_identity');
        assert.equal((await s.listInstances()).length, 1);
      });

      it('sets and clears boot state and finds the instance by its active boot', async () => {
        const s = await open();
        const rec = instanceRecord();
        await s.transaction((tx) => tx.insertInstance(rec));
        const boot = activeBoot();
        await s.transaction((tx) => tx.setBootState(rec.id, { committedCounter: 7, activeBoot: boot }));
        const found = await s.transaction((tx) => tx.lockInstanceByBoot(boot.bootId));
        assert.equal(found?.id, rec.id);
        assert.equal(found?.committedCounter, 7);
        assert.deepEqual(found?.activeBoot, boot);
        // A boot without a launch id (evidence without one) reads back as null.
        const { launchId: _, ...unnamed } = boot;
        await s.transaction((tx) => tx.setBootState(rec.id, { committedCounter: 7, activeBoot: unnamed }));
        assert.deepEqual((await s.getInstance(rec.id))?.activeBoot, { ...unnamed, launchId: null });
        assert.equal(await s.transaction((tx) => tx.lockInstanceByBoot(randomUUID())), undefined);
        await s.transaction((tx) => tx.setBootState(rec.id, { committedCounter: 8, activeBoot: null }));
        const after = await s.getInstance(rec.id);
        assert.equal(after?.committedCounter, 8);
        assert.equal(after?.activeBoot, null);
        assert.equal(await s.transaction((tx) => tx.lockInstanceByBoot(boot.bootId)), undefined);
      });

      it("writes a decision's boot state with its audit entry, and neither when the transaction fails", async () => {
        const s = await open();
        const rec = instanceRecord();
        await s.transaction((tx) => tx.insertInstance(rec));
        const boot = activeBoot();
        const state = { committedCounter: 3, committedDigest: digest('state'), activeBoot: boot };
        const entry = await s.transaction((tx) =>
          tx.appendAudit(draft(), { bootState: { instanceId: rec.id, state } }),
        );
        const after = await s.getInstance(rec.id);
        assert.equal(after?.committedCounter, 3);
        assert.deepEqual(after?.committedDigest, state.committedDigest);
        assert.deepEqual(after?.activeBoot, boot);
        assert.deepEqual(await s.readAudit(0, 10), [entry]);
        // Both roll back together.
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.appendAudit(draft(), {
              bootState: { instanceId: rec.id, state: { committedCounter: 4, activeBoot: null } },
            });
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.deepEqual((await s.getInstance(rec.id))?.activeBoot, boot);
        assert.equal((await s.auditHead()).seq, entry.seq);
      });

      it('stores counters up to 2^53 - 1 exactly', async () => {
        const s = await open();
        const rec = instanceRecord();
        await s.transaction((tx) => tx.insertInstance(rec));
        const big = Number.MAX_SAFE_INTEGER;
        await s.transaction((tx) => tx.setBootState(rec.id, { committedCounter: big, activeBoot: null }));
        assert.equal((await s.getInstance(rec.id))?.committedCounter, big);
      });

      it('stores the new-launch policy (migration 4): given at insert, replaced, default takeover', async () => {
        const s = await open();
        const rec = instanceRecord();
        await s.transaction((tx) => tx.insertInstance({ ...rec, newLaunch: 'refuse' }));
        assert.equal((await s.getInstance(rec.id))?.newLaunch, 'refuse');
        await s.transaction((tx) => tx.setNewLaunch(rec.id, 'allow'));
        assert.equal((await s.getInstance(rec.id))?.newLaunch, 'allow');
      });

      it('replaces a policy', async () => {
        const s = await open();
        const rec = instanceRecord();
        await s.transaction((tx) => tx.insertInstance(rec));
        await s.transaction((tx) => tx.setPolicy(rec.id, { v: 2 }));
        assert.deepEqual((await s.getInstance(rec.id))?.policy, { v: 2 });
      });
    });

    describe('sealing keys', () => {
      it('inserts if absent, never overwrites, and keeps every version', async () => {
        const s = await open();
        const rec = instanceRecord();
        await s.transaction((tx) => tx.insertInstance(rec));
        const k1 = {
          instanceId: rec.id,
          version: 1,
          wrapped: new Uint8Array([1, 2, 3]),
          kekId: 'k',
          createdAt: 1,
        };
        assert.equal(await s.transaction((tx) => tx.insertKeyIfAbsent(k1)), true);
        const clash = { ...k1, wrapped: new Uint8Array([9, 9, 9]) };
        assert.equal(await s.transaction((tx) => tx.insertKeyIfAbsent(clash)), false);
        const k2 = { ...k1, version: 2, wrapped: new Uint8Array([4, 5]) };
        assert.equal(await s.transaction((tx) => tx.insertKeyIfAbsent(k2)), true);
        assert.deepEqual(await s.transaction((tx) => tx.latestKey(rec.id)), k2);
        assert.deepEqual(await s.transaction((tx) => tx.getKey(rec.id, 1)), k1);
        assert.equal(await s.transaction((tx) => tx.getKey(rec.id, 3)), undefined);
        assert.equal(await s.transaction((tx) => tx.latestKey('other')), undefined);
        assert.deepEqual(await s.listKeys(rec.id), [k1, k2]);
      });

      it('finds and locks an instance by its identity value with its newest key in one call (none before the first; unknown value or other TEE: undefined)', async () => {
        const s = await open();
        const rec = instanceRecord();
        const other = instanceRecord();
        await s.transaction(async (tx) => {
          await tx.insertInstance(rec);
          await tx.insertInstance(other);
        });
        const lock = (tee: 'snp' | 'tdx', value: Uint8Array) =>
          s.transaction((tx) => tx.lockInstanceByIdentityWithLatestKey(tee, value));
        const none = await lock('snp', rec.hostData);
        assert.equal(none?.instance.id, rec.id);
        assert.equal(none?.latestKey, undefined);
        const key = (version: number, instanceId = rec.id) => ({
          instanceId,
          version,
          wrapped: new Uint8Array([version, 7]),
          kekId: 'k',
          createdAt: 100 + version,
        });
        await s.transaction(async (tx) => {
          for (const k of [key(1), key(3), key(2), key(9, other.id)]) await tx.insertKeyIfAbsent(k);
        });
        const both = await lock('snp', rec.hostData);
        assert.deepEqual(both?.instance, await s.getInstance(rec.id));
        assert.deepEqual(both?.latestKey, key(3));
        assert.equal((await lock('snp', other.hostData))?.latestKey?.version, 9);
        assert.equal(await lock('snp', new Uint8Array(32)), undefined);
        assert.equal(await lock('tdx', rec.hostData), undefined);
      });
    });

    describe('transactions', () => {
      it('roll back every change when the callback throws', async () => {
        const s = await open();
        const rec = instanceRecord();
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.insertInstance(rec);
            await tx.appendAudit(draft());
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.equal(await s.getInstance(rec.id), undefined);
        assert.equal((await s.auditHead()).seq, 0);
        assert.deepEqual(await s.readAudit(0, 10), []);
      });

      it('refuse use of a transaction handle after it ended', async () => {
        const s = await open();
        let leaked: StoreTx | undefined;
        await s.transaction(async (tx) => {
          leaked = tx;
        });
        await assert.rejects(async () => leaked!.latestKey('x'), /after it ended/);
      });

      it("run each callback in its own caller's async context, even when it waited behind another", async () => {
        // What a callback reads from an AsyncLocalStorage must be its caller's: the Broker names an admin
        // action's credential in the audit entries it writes inside the transaction (src/broker/actor.ts).
        const s = await open();
        const als = new AsyncLocalStorage<string>();
        let release!: () => void;
        const gate = new Promise<void>((r) => {
          release = r;
        });
        const seen: (string | undefined)[] = [];
        const callback = (i: number) => async (tx: StoreTx) => {
          seen[i] = als.getStore();
          if (i === 0) await gate; // the others wait behind it (the SQLite mutex; PostgreSQL's next batch)
          await tx.appendAudit(draft());
        };
        const runs = [
          als.run('alice', () => s.transaction(callback(0))),
          s.transaction(callback(1)),
          als.run('bob', () => s.transaction(callback(2))),
          s.transaction(callback(3)),
        ];
        release();
        await Promise.all(runs);
        assert.deepEqual(seen, ['alice', undefined, 'bob', undefined]);
      });

      it('serialize read-modify-write of one instance (no lost updates)', async () => {
        const s = await open();
        const rec = instanceRecord();
        await s.transaction((tx) => tx.insertInstance(rec));
        await Promise.all(
          Array.from({ length: 20 }, () =>
            s.transaction(async (tx) => {
              const st = (await tx.lockInstance(rec.id))!;
              // Yield while holding the lock: another transaction that did not wait would read the same value.
              await new Promise((r) => setTimeout(r, 2));
              await tx.setBootState(rec.id, {
                committedCounter: (st.committedCounter ?? 0) + 1,
                activeBoot: null,
              });
            }),
          ),
        );
        assert.equal((await s.getInstance(rec.id))?.committedCounter, 20);
      });
    });

    describe('audit log', () => {
      it('links entries into a hash chain that verifies, and round-trips every field', async () => {
        const s = await open();
        const d1 = draft({
          kind: 'release',
          instance: 'i-1',
          decision: 'refuse',
          reasons: ['a.b', 'c.d'],
          evidenceDigest: 'ab'.repeat(32),
          details: { z: 1, a: 'x', n: null, b: true },
        });
        const e1 = await s.transaction((tx) => tx.appendAudit(d1));
        const e2 = await s.transaction((tx) => tx.appendAudit(draft()));
        assert.equal(e1.seq, 1);
        assert.equal(e1.prevHash, '0'.repeat(64));
        assert.equal(e2.prevHash, e1.hash);
        assert.equal(e1.hash, hashAuditEntry({ ...e1 }));
        assert.deepEqual(await s.readAudit(0, 10), [e1, e2]);
        assert.deepEqual(await s.readAudit(1, 10), [e2]);
        assert.deepEqual(await s.auditHead(), { seq: 2, hash: e2.hash });
        assert.deepEqual(await verifyAuditChain(s), { ok: true, entries: 2, headHash: e2.hash });
      });

      it('verifies an empty log', async () => {
        const s = await open();
        assert.deepEqual(await verifyAuditChain(s), { ok: true, entries: 0, headHash: '0'.repeat(64) });
      });

      it('verifies across pages', async () => {
        const s = await open();
        for (let i = 0; i < 7; i++)
          await s.transaction((tx) => tx.appendAudit(draft({ reasons: [`r${i}`] })));
        const v = await verifyAuditChain(s, 3);
        assert.equal(v.ok, true);
        assert.equal(v.entries, 7);
      });

      it('does not fork under concurrent appends in one process', async () => {
        const s = await open();
        await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            s.transaction((tx) => tx.appendAudit(draft({ reasons: [`r${i}`] }))),
          ),
        );
        const v = await verifyAuditChain(s);
        assert.deepEqual([v.ok, v.entries], [true, 30]);
      });

      it('does not fork when transactions appending at once throw after appending or append twice', async () => {
        const s = await open();
        const refused = Object.assign(new Error('refused after appending'), { reason: 'test.after_append' });
        const settled = await Promise.allSettled(
          Array.from({ length: 30 }, (_, i) =>
            s.transaction(async (tx) => {
              await tx.appendAudit(draft({ reasons: [`r${i}`] }));
              if (i % 3 === 1) await tx.appendAudit(draft({ reasons: [`r${i}b`] }));
              if (i % 5 === 2) throw refused;
            }),
          ),
        );
        const kept = settled.filter((x) => x.status === 'fulfilled').length;
        assert.equal(kept, 24);
        const v = await verifyAuditChain(s);
        const expected = Array.from({ length: 30 }, (_, i) => i)
          .filter((i) => i % 5 !== 2)
          .reduce((n, i) => n + (i % 3 === 1 ? 2 : 1), 0);
        assert.deepEqual([v.ok, v.entries], [true, expected]);
        const reasons = (await s.readAudit(0, 100)).map((e) => e.reasons[0]);
        assert.ok(
          !reasons.some((r) => /^r(2|7|12|17|22|27)b?$/.test(r!)),
          'a refused transaction left an entry',
        );
      });

      it('does not fork when two processes append at once', async () => {
        const loc = await h.fresh();
        const s = await open(loc);
        const [a, b] = await raceChildren<number[]>(
          CHILD,
          [loc, 'audit'],
          [
            { count: 50, tag: 'a' },
            { count: 50, tag: 'b' },
          ],
        );
        const seqs = [...a!, ...b!].sort((x, y) => x - y);
        assert.deepEqual(
          seqs,
          Array.from({ length: 100 }, (_, i) => i + 1),
        );
        const v = await verifyAuditChain(s);
        assert.deepEqual([v.ok, v.entries], [true, 100]);
      });

      it('rejects UPDATE and DELETE on the log at the SQL level (append-only triggers)', async () => {
        const loc = await h.fresh();
        const s = await open(loc);
        await s.transaction((tx) => tx.appendAudit(draft()));
        await assert.rejects(h.query(loc, "UPDATE audit_log SET kind = 'x'"), /append-only/);
        await assert.rejects(h.query(loc, 'DELETE FROM audit_log'), /append-only/);
        assert.equal((await verifyAuditChain(s)).ok, true);
      });

      describe('detects tampering done directly in the database', () => {
        const seeded = async () => {
          const loc = await h.fresh();
          const s = await open(loc);
          for (let i = 1; i <= 4; i++) {
            await s.transaction((tx) => tx.appendAudit(draft({ reasons: [`r${i}`], instance: `i-${i}` })));
          }
          assert.equal((await verifyAuditChain(s)).ok, true);
          return { loc, s };
        };

        it('a modified entry', async () => {
          const { loc, s } = await seeded();
          await h.tamper(loc, `UPDATE audit_log SET decision = 'refuse' WHERE seq = 2`);
          assert.deepEqual(await verifyAuditChain(s), {
            ok: false,
            entries: 1,
            seq: 2,
            problem: 'audit.hash',
          });
        });

        it('a modified entry whose own hash was recomputed', async () => {
          const { loc, s } = await seeded();
          const e2 = (await s.readAudit(1, 1))[0]!;
          const forged = { ...e2, reasons: ['forged'] };
          const hash = hashAuditEntry(forged);
          await h.tamper(loc, `UPDATE audit_log SET reasons = '["forged"]', hash = '${hash}' WHERE seq = 2`);
          assert.deepEqual(await verifyAuditChain(s), {
            ok: false,
            entries: 2,
            seq: 3,
            problem: 'audit.link',
          });
        });

        it('a deleted entry in the middle', async () => {
          const { loc, s } = await seeded();
          await h.tamper(loc, 'DELETE FROM audit_log WHERE seq = 2');
          assert.deepEqual(await verifyAuditChain(s), {
            ok: false,
            entries: 1,
            seq: 3,
            problem: 'audit.sequence',
          });
        });

        it('a deleted entry renumbered to close the gap', async () => {
          const { loc, s } = await seeded();
          await h.tamper(
            loc,
            'DELETE FROM audit_log WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 4',
          );
          const v = await verifyAuditChain(s);
          assert.equal(v.ok, false);
          assert.equal(v.ok === false && v.seq, 2);
          assert.equal(v.ok === false && v.problem, 'audit.link');
        });

        it('reordered entries', async () => {
          const { loc, s } = await seeded();
          await h.tamper(
            loc,
            'UPDATE audit_log SET seq = 100 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 100',
          );
          const v = await verifyAuditChain(s);
          assert.equal(v.ok, false);
          assert.equal(v.ok === false && v.seq, 2);
        });

        it('a truncated tail', async () => {
          const { loc, s } = await seeded();
          await h.tamper(loc, 'DELETE FROM audit_log WHERE seq = 4');
          assert.deepEqual(await verifyAuditChain(s), {
            ok: false,
            entries: 3,
            seq: 4,
            problem: 'audit.head',
          });
        });

        it('an edited head', async () => {
          const { loc, s } = await seeded();
          await h.tamper(loc, `UPDATE audit_head SET hash = '${'1'.repeat(64)}'`);
          assert.deepEqual(await verifyAuditChain(s), {
            ok: false,
            entries: 4,
            seq: 4,
            problem: 'audit.head',
          });
        });

        // Every column of entry 2 in turn, set to a value the broker never writes: verification reports it
        // (never throws), and reading a page that holds the row is a typed error naming it. PostgreSQL's
        // typed columns refuse some of these values itself; SQLite stores anything (INTEGER PRIMARY KEY
        // excepted: seq cannot hold a non-integer there either).
        type Engines = 'both' | 'sqlite';
        const malformed: [string, string, Engines][] = [
          ['time', '1.5', 'sqlite'],
          ['time', "'noon'", 'sqlite'],
          ['time', "X'01'", 'sqlite'],
          ['time', '-1', 'both'],
          ['time', '9000000000000000', 'both'],
          ['kind', "X'6b'", 'sqlite'],
          ['instance', "X'69'", 'sqlite'],
          ['decision', "'maybe'", 'both'],
          ['decision', "X'61'", 'sqlite'],
          ['reasons', "'not json'", 'both'],
          ['reasons', `'["r2"] '`, 'both'],
          ['reasons', "'[1]'", 'both'],
          ['reasons', `'{"r":"r2"}'`, 'both'],
          ['reasons', "X'5b5d'", 'sqlite'],
          ['evidence_digest', "'xyz'", 'both'],
          ['evidence_digest', `'${'AB'.repeat(32)}'`, 'both'],
          ['details', "'[]'", 'both'],
          ['details', `'{"a":{}}'`, 'both'],
          ['details', "'{ }'", 'both'],
          ['details', "'5'", 'both'],
          ['prev_hash', "'zz'", 'both'],
          ['prev_hash', '7', 'sqlite'],
          ['hash', "'zz'", 'both'],
          ['hash', "X'00'", 'sqlite'],
        ];
        for (const [column, value, engines] of malformed) {
          if (engines === 'sqlite' && h.engine !== 'sqlite') continue;
          it(`a malformed ${column} (${value}) is audit.malformed at its seq`, async () => {
            const { loc, s } = await seeded();
            await h.tamper(loc, `UPDATE audit_log SET ${column} = ${value} WHERE seq = 2`);
            assert.deepEqual(await verifyAuditChain(s), {
              ok: false,
              entries: 1,
              seq: 2,
              problem: 'audit.malformed',
            });
            await assert.rejects(s.readAudit(0, 10), (e: unknown) => {
              assert.ok(e instanceof AuditValueInvalid, String(e));
              assert.equal(e.code, ErrorCode.Malformed);
              assert.equal(e.reason, 'audit.value_invalid');
              assert.equal(e.seq, 2);
              assert.equal(e.column, column);
              return true;
            });
            // Pages without the row still read.
            assert.equal((await s.readAudit(0, 1)).length, 1);
            assert.deepEqual(
              (await s.readAudit(2, 10)).map((e) => e.seq),
              [3, 4],
            );
          });
        }

        // Well-typed values that differ are caught by the hash, link or sequence checks.
        const wrong: [string, string, { entries: number; seq: number; problem: string }][] = [
          ['kind', "'other'", { entries: 1, seq: 2, problem: 'audit.hash' }],
          ['instance', 'NULL', { entries: 1, seq: 2, problem: 'audit.hash' }],
          ['time', '1', { entries: 1, seq: 2, problem: 'audit.hash' }],
          ['evidence_digest', `'${'ab'.repeat(32)}'`, { entries: 1, seq: 2, problem: 'audit.hash' }],
          ['details', `'{"a":1}'`, { entries: 1, seq: 2, problem: 'audit.hash' }],
          ['prev_hash', `'${'1'.repeat(64)}'`, { entries: 1, seq: 2, problem: 'audit.link' }],
          ['hash', `'${'1'.repeat(64)}'`, { entries: 1, seq: 2, problem: 'audit.hash' }],
          ['seq', '100', { entries: 1, seq: 3, problem: 'audit.sequence' }],
        ];
        for (const [column, value, expected] of wrong) {
          it(`another well-formed ${column} (${value}) is ${expected.problem}`, async () => {
            const { loc, s } = await seeded();
            await h.tamper(loc, `UPDATE audit_log SET ${column} = ${value} WHERE seq = 2`);
            assert.deepEqual(await verifyAuditChain(s), { ok: false, ...expected });
          });
        }

        it('a malformed row past the first page is found and counted exactly', async () => {
          const { loc, s } = await seeded();
          for (let i = 5; i <= 7; i++)
            await s.transaction((tx) => tx.appendAudit(draft({ reasons: [`r${i}`] })));
          await h.tamper(loc, "UPDATE audit_log SET decision = 'maybe' WHERE seq = 5");
          for (const pageSize of [1, 2, 3, 4, 1000]) {
            assert.deepEqual(await verifyAuditChain(s, pageSize), {
              ok: false,
              entries: 4,
              seq: 5,
              problem: 'audit.malformed',
            });
          }
        });

        const badHeads: [string, Engines][] = [
          ["seq = 'x'", 'sqlite'],
          ['seq = 4.5', 'sqlite'],
          ['seq = -1', 'both'],
          ["hash = 'zz'", 'both'],
        ];
        for (const [set, engines] of badHeads) {
          if (engines === 'sqlite' && h.engine !== 'sqlite') continue;
          it(`a malformed head (${set}) is audit.head`, async () => {
            const { loc, s } = await seeded();
            await h.tamper(loc, `UPDATE audit_head SET ${set}`);
            assert.deepEqual(await verifyAuditChain(s), {
              ok: false,
              entries: 4,
              seq: 4,
              problem: 'audit.head',
            });
            await assert.rejects(s.auditHead(), AuditValueInvalid);
          });
        }
      });

      // What cutting the tail does: deleting the last entries alone breaks the head row (audit.head, above);
      // deleting them and rewriting the head row leaves a shorter chain that is intact, which the store
      // alone cannot tell from a log that never had those entries. A head recorded earlier, kept out of
      // the database's reach, is the anchor that detects it (and a chain rebuilt at or before it).
      describe('an expected head (anchor) recorded out of the database', () => {
        const seededWithHead = async () => {
          const loc = await h.fresh();
          const s = await open(loc);
          for (let i = 1; i <= 4; i++)
            await s.transaction((tx) => tx.appendAudit(draft({ reasons: [`r${i}`] })));
          const v = await verifyAuditChain(s);
          assert.ok(v.ok);
          const entries = await s.readAudit(0, 10);
          const at = (seq: number) => ({ seq, hash: entries[seq - 1]!.hash });
          return { loc, s, at, head: parseAuditHead(formatAuditHead(v)) };
        };

        it('an intact log passes at its head and at any earlier head; the empty head always passes', async () => {
          const { s, at, head } = await seededWithHead();
          assert.deepEqual(head, at(4));
          for (const expectHead of [head, at(1), at(3), { seq: 0, hash: '0'.repeat(64) }]) {
            assert.deepEqual(await verifyAuditChain(s, { expectHead }), {
              ok: true,
              entries: 4,
              headHash: head.hash,
            });
          }
        });

        it('a cut tail with a rewritten head row verifies alone, and is audit.truncated against the anchor', async () => {
          const { loc, s, at, head } = await seededWithHead();
          await h.tamper(
            loc,
            `DELETE FROM audit_log WHERE seq > 2; UPDATE audit_head SET seq = 2, hash = '${at(2).hash}'`,
          );
          assert.deepEqual(await verifyAuditChain(s), { ok: true, entries: 2, headHash: at(2).hash });
          assert.deepEqual(await verifyAuditChain(s, { expectHead: head, pageSize: 1 }), {
            ok: false,
            entries: 2,
            seq: 4,
            problem: 'audit.truncated',
          });
          assert.equal((await verifyAuditChain(s, { expectHead: at(2) })).ok, true);
        });

        it('a rebuilt chain verifies alone, and is audit.anchor against a head at or after the rebuild', async () => {
          const { loc, s, at, head } = await seededWithHead();
          const [, , e3, e4] = await s.readAudit(0, 10);
          const f3 = { ...e3!, reasons: ['forged'] };
          const h3 = hashAuditEntry(f3);
          const h4 = hashAuditEntry({ ...e4!, prevHash: h3 });
          await h.tamper(
            loc,
            `UPDATE audit_log SET reasons = '["forged"]', hash = '${h3}' WHERE seq = 3; ` +
              `UPDATE audit_log SET prev_hash = '${h3}', hash = '${h4}' WHERE seq = 4; ` +
              `UPDATE audit_head SET hash = '${h4}'`,
          );
          assert.deepEqual(await verifyAuditChain(s), { ok: true, entries: 4, headHash: h4 });
          for (const expectHead of [head, at(3)]) {
            assert.deepEqual(await verifyAuditChain(s, { expectHead }), {
              ok: false,
              entries: 4,
              seq: expectHead.seq,
              problem: 'audit.anchor',
            });
          }
          assert.equal((await verifyAuditChain(s, { expectHead: at(2) })).ok, true);
        });

        it('a broken chain reports its own problem first', async () => {
          const { loc, s, head } = await seededWithHead();
          await h.tamper(loc, 'DELETE FROM audit_log WHERE seq = 4');
          assert.deepEqual(await verifyAuditChain(s, { expectHead: head }), {
            ok: false,
            entries: 3,
            seq: 4,
            problem: 'audit.head',
          });
        });
      });
    });
  });
}
