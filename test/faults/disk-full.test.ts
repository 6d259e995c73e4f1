/**
 * Fault: the disk fills up while the broker commits (SQLite). The broker's data directory is a small tmpfs
 * mounted for this test (root only: without root, or where mounting fails, the test fails and says so).
 * Two guests boot first; then a filler file takes every free byte, and guests boot one after another
 * while the filler gives back eight pages per attempt (more than one attempt's challenge writes take, so
 * room accumulates): each write the broker makes (a challenge, its consumption, a release's decision, a
 * commit) fails with ENOSPC (SQLITE_FULL) until there is room for it, so the attempts fail at every stage
 * in turn, the release decision's COMMIT among them. Which attempt fails where depends only on the sizes
 * SQLite writes, never on timing.
 *
 * Asserted: every failure reaches the guest as a typed ERR_UNAVAILABLE `store.full` (HTTP 503) and is
 * logged with that reason; a release whose transaction could not commit returned no key, started no boot
 * and created no key; every key a guest did receive has its decision (the accepted release entry, with its
 * boot id) and its key in the database, read back by a fresh connection; the keys of the instances booted
 * before are unchanged. Then the filler is removed: every guest boots (a boot whose commit was lost is
 * reset by the control plane first, as docs/broker.md says) and opens its state with its instance's
 * stored key, and the audit chain verifies.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { openFileKek } from '../../src/broker/kek.js';
import { openSealingKey } from '../../src/broker/sealing-key.js';
import { ErrorCode } from '../../src/errors.js';
import {
  type BootResult,
  bootGuest,
  deriveStateKey,
  simulatorReportProvider,
  unsealState,
} from '../../src/guest/index.js';
import type { ProxyBackend } from '../../src/proxy/backend.js';
import type { RunningProxy } from '../../src/proxy/index.js';
import type { SimSnpFirmware } from '../../src/sim/snp/index.js';
import { type Stack, sqliteEngine, startStack, wrapBackend } from '../e2e/harness.js';

const PAGE = 4096;
const TMPFS_SIZE = '6m';
/** Attempts in the sweep; far more than the pages the writes of one boot need. */
const MAX_ATTEMPTS = 400;

type Stage = 'challenge' | 'release' | 'commit';

interface Vm {
  readonly id: string;
  readonly fw: SimSnpFirmware;
  readonly state: string;
  before?: BootResult;
  keys: string[];
  /** A boot of it was released but its commit or end found the disk full: the control plane resets it. */
  needsReset?: boolean;
}

describe('fault: the disk fills up while the broker commits (SQLite)', () => {
  let mnt: string | undefined;
  let mounted = false;
  let s: Stack;
  let proxy: RunningProxy;
  const logs: string[] = [];
  const vms: Vm[] = [];
  /** The stage at which the current boot failed, as the proxy's backend saw it. */
  let failedAt: Stage | undefined;
  let filler = -1;

  before(async () => {
    if (process.getuid?.() !== 0) {
      throw new Error('this test mounts a tmpfs for the broker data directory and must run as root');
    }
    mnt = mkdtempSync(join(tmpdir(), 'vouchsafe-fault-disk-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0700`, 'tmpfs', mnt], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      mounted = true;
    } catch (e) {
      throw new Error(
        `could not mount a tmpfs at ${mnt} (needs root and the mount capability): ${(e as { stderr?: Buffer }).stderr ?? e}`,
      );
    }
    s = await startStack(sqliteEngine(), {
      dataDir: join(mnt, 'data'),
      logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(line) }),
      backendTimeoutMs: 120_000,
      proxyTimeouts: { backendMs: 120_000, sessionMs: 300_000, readMs: 120_000 },
    });
    const record = (stage: Stage) => (e: unknown) => {
      failedAt ??= stage;
      throw e;
    };
    proxy = await s.extraProxy(
      (b: ProxyBackend) =>
        wrapBackend(b, {
          negotiate: (r, c) => b.negotiate(r, c).catch(record('challenge')),
          attest: async (r, c) => {
            const out = await b.attest(r, c).catch(record('release'));
            if (out.outcome === 'refused') failedAt ??= 'release';
            return out;
          },
          commit: async (r, c) => {
            const out = await b.commit(r, c).catch(record('commit'));
            if (out.outcome === 'refused') failedAt ??= 'commit';
            return out;
          },
        }),
      { backendMs: 120_000, sessionMs: 300_000, readMs: 120_000 },
    );
    for (let i = 0; i < 24; i++) {
      const inst = await s.register();
      vms.push({ id: inst.id, fw: s.firmware(inst.hostData), state: s.statePath(`vm-${i}`), keys: [] });
    }
    for (const vm of vms.slice(0, 2)) {
      const r = await boot(vm);
      assert.equal(r.committed, true);
      await r.session?.end();
      vm.before = r;
    }
    for (const vm of vms) vm.keys = await s.keys(vm.id);
  });

  /** Unmounts (lazily if still busy) and deletes the mount point; also on exit if `after` never runs. */
  const unmount = () => {
    if (mounted && mnt) execFileSync('umount', ['-l', mnt]);
    mounted = false;
    if (mnt) rmSync(mnt, { recursive: true, force: true });
  };
  process.once('exit', unmount);

  after(async () => {
    if (filler >= 0) closeSync(filler);
    await s?.close();
    unmount();
    process.removeListener('exit', unmount);
  });

  function boot(vm: Vm): Promise<BootResult> {
    return bootGuest({
      connect: proxy.address,
      provider: simulatorReportProvider(vm.fw),
      statePath: vm.state,
      version: '0.2.0',
      brokerPublicKey: s.broker.publicKey,
      timeoutMs: 120_000,
    });
  }

  /** Writes the filler until the file system has no free page left. */
  function fill(): void {
    filler = openSync(join(mnt!, 'filler'), 'a');
    for (const chunk of [1 << 20, 64 << 10, PAGE, 1]) {
      const buf = Buffer.alloc(chunk, 0xaa);
      for (;;) {
        try {
          writeSync(filler, buf);
        } catch (e) {
          if ((e as { code?: string }).code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  }

  /** Gives back `n` pages of the filler. */
  function free(n: number): void {
    const size = fstatSync(filler).size;
    ftruncateSync(filler, Math.max(0, size - n * PAGE));
  }

  const kek = () => openFileKek(join(s.broker.dataDir, 'kek'));
  const isAuditFailure = (line: string) => line.includes('"event":"audit_failed"');
  const refusalEntries = async (id: string) =>
    (await s.broker.broker.readAudit(0, 100_000)).filter((e) => e.instance === id && e.decision === 'refuse')
      .length;

  it('every write that finds the disk full fails with a typed, logged ERR_UNAVAILABLE store.full; no key without its durable decision', async () => {
    fill();
    const since = logs.length;
    const seen: Stage[] = [];
    const delivered: { vm: Vm; bootId: string }[] = [];
    let next = 2;
    let decisionFailures = 0;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && next < vms.length; attempt++) {
      const vm = vms[next]!;
      failedAt = undefined;
      const keysBefore = await s.keys(vm.id);
      const auditFailures = logs.filter(isAuditFailure).length;
      const refusals = await refusalEntries(vm.id);
      try {
        const r = await boot(vm);
        delivered.push({ vm, bootId: r.bootId! });
        // Ending the boot is one more write: when it finds the disk full, the boot stays active.
        const end = await r.session?.end().then(
          () => undefined,
          (err: { code?: string; reason?: string }) => err,
        );
        if (end) {
          assert.deepEqual([end.code, end.reason], [ErrorCode.Unavailable, 'store.full']);
          vm.needsReset = true;
        }
        next++;
      } catch (e) {
        const err = e as { code?: string; reason?: string };
        assert.deepEqual([err.code, err.reason], [ErrorCode.Unavailable, 'store.full'], `attempt ${attempt}`);
        assert.ok(failedAt, 'the failing step was seen');
        seen.push(failedAt);
        if (failedAt === 'commit') {
          // The release was decided and delivered; only the guest's commit found the disk full.
          vm.needsReset = true;
          const bootId = (await s.broker.store.getInstance(vm.id))?.activeBoot?.bootId;
          assert.ok(bootId);
          delivered.push({ vm, bootId });
          next++;
        } else {
          // The release's own transaction failed (not the challenge's consumption) when the broker went on
          // to audit the refusal: the entry was written, or writing it failed too and was logged.
          if (
            failedAt === 'release' &&
            (logs.filter(isAuditFailure).length > auditFailures || (await refusalEntries(vm.id)) > refusals)
          ) {
            decisionFailures++;
          }
          // Nothing was decided: no key, no boot.
          assert.deepEqual(await s.keys(vm.id), keysBefore, `attempt ${attempt}: no key created`);
          assert.equal((await s.broker.store.getInstance(vm.id))?.activeBoot, null);
        }
      }
      free(8);
    }
    assert.ok(seen.includes('challenge'), `a challenge write failed (stages: ${seen})`);
    assert.ok(decisionFailures > 0, `a release decision failed to commit (stages: ${seen})`);
    assert.ok(seen.includes('commit'), `a guest's commit failed (stages: ${seen})`);
    const refused = logs
      .slice(since)
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === 'request refused' && l.reason === 'store.full');
    assert.equal(refused.length, seen.length, 'each failure is logged with its reason');
    assert.ok(refused.every((l) => l.status === 503 && l.code === ErrorCode.Unavailable));

    // Every key a guest received: its decision and its key are in the database, read by another connection.
    const db = new Database(join(s.broker.dataDir, 'vouchsafe.db'), { readonly: true });
    try {
      for (const d of delivered) {
        const rows = db
          .prepare(
            "SELECT details FROM audit_log WHERE kind = 'release' AND decision = 'accept' AND instance = ?",
          )
          .all(d.vm.id) as { details: string }[];
        assert.ok(
          rows.some((r) => JSON.parse(r.details).bootId === d.bootId),
          'the release decision is in the log',
        );
        const keys = db.prepare('SELECT version FROM sealing_keys WHERE instance_id = ?').all(d.vm.id);
        assert.equal(keys.length, 1);
      }
    } finally {
      db.close();
    }
    for (const vm of vms.slice(0, 2)) assert.deepEqual(await s.keys(vm.id), vm.keys, 'keys unchanged');
  });

  it('space freed: every guest boots with its own key, and the audit chain verifies', async () => {
    closeSync(filler);
    filler = -1;
    rmSync(join(mnt!, 'filler'));
    for (const vm of vms) {
      if (vm.needsReset) {
        const r = await s.admin('POST', `/v1/admin/instances/${vm.id}/reset-boot`, { note: 'commit lost' });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      const r = await boot(vm);
      assert.equal(r.committed, true);
      await r.session?.end();
      if (vm.before) assert.deepEqual(r.state, vm.before.state);
      const recs = await s.broker.store.listKeys(vm.id);
      assert.equal(recs.length, 1);
      const key = await openSealingKey(kek(), recs[0]!);
      assert.deepEqual(
        unsealState(new Uint8Array(readFileSync(vm.state)), deriveStateKey(key)).body,
        r.state,
      );
    }
    const audit = await s.admin('GET', '/v1/admin/audit/verify');
    assert.equal(audit.body.ok, true, JSON.stringify(audit.body));
  });
});
