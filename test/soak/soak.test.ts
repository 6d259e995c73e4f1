/**
 * Soak: an hour's worth of fleet traffic compressed into a bounded number of operations, once on SQLite
 * and once on PostgreSQL, loopback only (broker on 127.0.0.1:0, proxy on a unix socket; see
 * test/e2e/harness.ts). A seeded generator mixes first boots, reboots (each ending its lease as a clean
 * shutdown does), refusals (rollback to an old state file, a foreign measurement, an unknown HOST_DATA),
 * KBS exchanges (the independent RCAR client of test/kbs), key rotations and admin reads.
 *
 * It asserts, per operation: every boot and reboot opens the state the instance sealed before (the key the
 * broker released is the instance's key); every KBS release equals the instance's stored key unwrapped with
 * the KEK; every refusal is the typed one expected and changes no key. At the end: the audit chain
 * verifies, no instance lost or gained a key other than by rotation, and — measured after a warm-up, after a
 * forced GC — heap, RSS and open file descriptors stay under the bounds below (test/soak/README.md records
 * what was measured). The count of operations, not time, bounds the run (SOAK_OPS overrides it).
 */
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { openFileKek } from '../../src/broker/kek.js';
import { openSealingKey } from '../../src/broker/sealing-key.js';
import { ErrorCode } from '../../src/errors.js';
import type { SimSnpFirmware } from '../../src/sim/snp/index.js';
import {
  postgresEngine,
  refusal,
  type Stack,
  sqliteEngine,
  startStack,
  type TestEngine,
} from '../e2e/harness.js';
import { IndependentKbsClient } from '../kbs/independent-client.js';

const OPS = Number(process.env.SOAK_OPS ?? '600');
const WARMUP = Math.min(60, Math.floor(OPS / 5));
/** Bounds on growth from the end of the warm-up to the end (after GC). See README.md for measurements. */
const BOUNDS = { heapMiB: 16, rssMiB: 96, fds: 8 };
const SEALING_PATH = 'vouchsafe/sealing-key/current';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A small deterministic PRNG (mulberry32): the same seed replays the same run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Vm {
  readonly id: string;
  readonly fw: SimSnpFirmware;
  readonly state: string;
  /** A copy of an older state file (for the rollback refusal), once there is one. */
  old?: string;
  body: Uint8Array;
  counter: bigint;
  keyCount: number;
}

interface Sample {
  readonly heap: number;
  readonly rss: number;
  readonly fds: number;
}

function sample(): Sample {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss, fds: readdirSync('/proc/self/fd').length };
}

const MiB = 1024 * 1024;

function soak(name: string, makeEngine: () => Promise<TestEngine>): void {
  describe(`soak on ${name}`, () => {
    let engine: TestEngine;
    let s: Stack;
    before(async () => {
      engine = await makeEngine();
      s = await startStack(engine);
    });
    after(async () => {
      await s?.close();
      await engine?.stop();
    });

    it(`${OPS} mixed operations: no lost key, typed refusals, a verifying audit chain, bounded memory and fds`, async () => {
      const rand = prng(Number(process.env.SOAK_SEED ?? '20261206'));
      const kek = openFileKek(join(s.broker.dataDir, 'kek'));
      const storedKey = async (id: string) => {
        const recs = await s.broker.store.listKeys(id);
        return openSealingKey(
          kek,
          recs.reduce((x, y) => (y.version > x.version ? y : x)),
        );
      };
      const vms: Vm[] = [];
      const kbsVms: { id: string; fw: SimSnpFirmware }[] = [];
      const counts: Record<string, number> = {};
      let n = 0;

      const firstBoot = async () => {
        const inst = await s.register();
        const fw = s.firmware(inst.hostData);
        const state = s.statePath(`vm-${inst.id}`);
        const r = await s.boot(fw, state);
        assert.equal(r.firstBoot, true);
        assert.equal(r.committed, true);
        await r.session?.end();
        vms.push({ id: inst.id, fw, state, body: r.state, counter: r.counter, keyCount: 1 });
      };
      const reboot = async (vm: Vm) => {
        if (rand() < 0.3) {
          vm.old = s.statePath(`old-${vm.id}-${n}`);
          copyFileSync(vm.state, vm.old);
        }
        const r = await s.boot(vm.fw, vm.state);
        assert.equal(r.firstBoot, false);
        assert.equal(r.statedCounter, vm.counter);
        // The released key opened the state sealed under the instance's key: nothing lost.
        assert.deepEqual(r.state, vm.body);
        assert.equal(r.committed, true);
        vm.counter = r.counter;
        await r.session?.end();
      };
      const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;

      const ops: [number, string, () => Promise<void>][] = [
        [0.12, 'first-boot', firstBoot],
        [
          0.36,
          'reboot',
          async () => {
            if (vms.length === 0) return firstBoot();
            await reboot(pick(vms));
          },
        ],
        [
          0.06,
          'refuse-rollback',
          async () => {
            const vm = vms.find((v) => v.old !== undefined);
            if (!vm?.old) return firstBoot();
            const keys = await s.keys(vm.id);
            const e = await refusal(() => s.boot(vm.fw, vm.old!));
            assert.deepEqual([e.code, e.reason], [ErrorCode.Refused, 'broker.rollback']);
            assert.deepEqual(await s.keys(vm.id), keys);
          },
        ],
        [
          0.05,
          'refuse-measurement',
          async () => {
            if (vms.length === 0) return firstBoot();
            const vm = pick(vms);
            const impostor = s.firmware(Buffer.from(vm.fw.launch.hostData).toString('hex'), {
              measurement: new Uint8Array(48).fill(n & 0xff),
            });
            const e = await refusal(() => s.boot(impostor, s.statePath(`impostor-${n}`)));
            assert.deepEqual([e.code, e.reason], [ErrorCode.PolicyRejected, 'snp.measurement']);
          },
        ],
        [
          0.04,
          'refuse-unknown',
          async () => {
            const stranger = s.firmware(n.toString(16).padStart(64, '0'));
            const e = await refusal(() => s.boot(stranger, s.statePath(`stranger-${n}`)));
            assert.deepEqual([e.code, e.reason], [ErrorCode.Refused, 'broker.unknown_instance']);
          },
        ],
        [
          0.14,
          'kbs',
          async () => {
            if (kbsVms.length < 4 || rand() < 0.1) {
              const inst = await s.register();
              kbsVms.push({ id: inst.id, fw: s.firmware(inst.hostData) });
            }
            const vm = pick(kbsVms);
            const client = new IndependentKbsClient(s.broker.url);
            const { secret } = await client.run({
              kind: pick(['P-256', 'P-384', 'P-521'] as const),
              evidence: (rd) => vm.fw.getReport(rd),
              path: SEALING_PATH,
            });
            assert.deepEqual(secret, await storedKey(vm.id));
            // A KBS release starts a boot with a lease, like a native one; the VM "stops" (the operator's
            // reset-boot) so the next exchange for it is not a clone.
            const r = await s.admin('POST', `/v1/admin/instances/${vm.id}/reset-boot`, {
              note: 'soak: stopped',
            });
            assert.equal(r.status, 200, JSON.stringify(r.body));
          },
        ],
        [
          0.03,
          'rotate-key',
          async () => {
            if (vms.length === 0) return firstBoot();
            const vm = pick(vms);
            const r = await s.admin('POST', `/v1/admin/instances/${vm.id}/rotate-key`);
            assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
            vm.keyCount++;
            await reboot(vm); // reseals under the new key; the old state still opened
          },
        ],
        [
          0.2,
          'admin-read',
          async () => {
            const which = rand();
            if (which < 0.4) {
              const r = await s.admin('GET', '/v1/admin/instances');
              assert.equal(r.status, 200);
            } else if (which < 0.8 && vms.length > 0) {
              const r = await s.admin('GET', `/v1/admin/instances/${pick(vms).id}`);
              assert.equal(r.status, 200);
            } else {
              const r = await s.admin('GET', '/v1/admin/audit/verify');
              assert.equal(r.status, 200);
              assert.equal(r.body.ok, true, JSON.stringify(r.body));
            }
          },
        ],
      ];

      let warm: Sample | undefined;
      for (n = 0; n < OPS; n++) {
        let x = rand();
        let op = ops[ops.length - 1]!;
        for (const o of ops) {
          if (x < o[0]) {
            op = o;
            break;
          }
          x -= o[0];
        }
        counts[op[1]] = (counts[op[1]] ?? 0) + 1;
        try {
          await op[2]();
        } catch (e) {
          throw new Error(`operation ${n} (${op[1]}) failed: ${e instanceof Error ? e.stack : String(e)}`);
        }
        if (n === WARMUP) warm = sample();
      }
      const end = sample();

      const audit = await s.admin('GET', '/v1/admin/audit/verify');
      assert.equal(audit.body.ok, true, JSON.stringify(audit.body));
      for (const vm of vms) assert.equal((await s.keys(vm.id)).length, vm.keyCount, `keys of ${vm.id}`);
      assert.ok(warm);
      const growth = {
        heapMiB: (end.heap - warm.heap) / MiB,
        rssMiB: (end.rss - warm.rss) / MiB,
        fds: end.fds - warm.fds,
      };
      console.log(
        `soak ${name}: ${OPS} ops ${JSON.stringify(counts)}; after warm-up heap ${(warm.heap / MiB).toFixed(1)} MiB, ` +
          `rss ${(warm.rss / MiB).toFixed(1)} MiB, fds ${warm.fds}; growth ${JSON.stringify(growth, (_k, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`,
      );
      assert.ok(growth.heapMiB < BOUNDS.heapMiB, `heap grew ${growth.heapMiB.toFixed(1)} MiB`);
      assert.ok(growth.rssMiB < BOUNDS.rssMiB, `rss grew ${growth.rssMiB.toFixed(1)} MiB`);
      assert.ok(growth.fds <= BOUNDS.fds, `fds grew by ${growth.fds}`);
    });
  });
}

soak('SQLite', async () => sqliteEngine());
soak('PostgreSQL', postgresEngine);
