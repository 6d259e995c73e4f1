/**
 * Crash safety of key release (the key-release issue's "must show"): the broker runs as a separate process
 * (test/crash/broker-process.ts), 200+ guests from src/guest boot for the first time at once through a host
 * proxy in this process, and the broker is SIGKILLed while they are in flight (once 40% of the attestation
 * responses, and 15% of the 0.2.0 guests' ones, have reached the proxy; every other released 0.2.0 guest's
 * commit is held back until then, so the crash certainly falls between some releases and their commits).
 * It is then restarted on the same data directory / database, and:
 *
 * - every guest that received its key before the crash gets the SAME key afterwards: a state file sealed
 *   under the key it received (the committed state, or the pending slot a 0.2.0 guest wrote before its
 *   commit was cut off) is unsealed by a reboot, and the body equals the one the guest sealed;
 * - no instance has two keys: the store holds exactly one key version per instance, the audit log records
 *   exactly one `broker.key_created` per instance, and the wrapped key rows do not change across the
 *   reboots;
 * - every release a guest received was audited before the crash (an `accept` release entry at or below
 *   the audit head the restarted broker found), and the audit chain verifies after the crash;
 * - every boot that failed failed as an outage (ERR_UNAVAILABLE or a 0.1.0 `success:false`),
 *   never with a wrong key (`state.auth`, `jwe.*`), and every instance boots after the restart.
 *
 * Run once per engine: SQLite under the data directory, and PostgreSQL (a throwaway cluster, or
 * DATABASE_URL) passed to the child as DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { AttestationError } from '../../src/errors.js';
import { pendingPathOf } from '../../src/guest/boot.js';
import {
  type BootResult,
  bootGuest,
  parseStateHeader,
  readStateFile,
  simulatorReportProvider,
} from '../../src/guest/index.js';
import type { ProxyBackend } from '../../src/proxy/backend.js';
import { createNativeBackend } from '../../src/proxy/backends/native/index.js';
import { type RunningProxy, startProxy } from '../../src/proxy/index.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SimChain,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { openStore } from '../../src/store/open.js';
import type { AuditEntry, Store } from '../../src/store/types.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { type BrokerProcess, mapLimit, spawnBroker } from './spawn-broker.js';

/** Instances (and concurrent first boots); every other one speaks 0.2.0 (pinned), the rest 0.1.0. */
const INSTANCES = 200;
/** SIGKILL once this share of the attestation responses has reached the proxy. */
const KILL_AFTER = 0.4;
/** ... and once this share of the 0.2.0 guests' attestation responses has. */
const KILL_AFTER_V2 = 0.15;

// biome-ignore lint/suspicious/noExplicitAny: tests walk JSON replies freely
type Json = any;

type Version = '0.1.0' | '0.2.0';

interface Guest {
  readonly index: number;
  readonly version: Version;
  readonly id: string;
  readonly hostData: string;
  readonly fw: SimSnpFirmware;
  readonly statePath: string;
  /** What the guest seals on its first boot: a reboot that unseals it proves the key is the same. */
  readonly body: Uint8Array;
}

/** What the failed first boots may fail with: the broker is gone (0.1.0 guests see `success:false`). */
const OUTAGE_REASONS = new Set([
  'native.broker_unreachable',
  'native.broker_timeout',
  'native.broker_error',
  'native.bad_response',
  'proxy.backend.unavailable',
  'proxy.backend.timeout',
  'guest.channel.closed',
  'guest.channel.reset',
  'aproxy.refused',
]);

async function adminCall(b: BrokerProcess, method: string, path: string, body?: unknown) {
  const res = await fetch(`${b.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${b.adminToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function readWholeAudit(store: Store): Promise<AuditEntry[]> {
  const all: AuditEntry[] = [];
  for (;;) {
    const page = await store.readAudit(all.at(-1)?.seq ?? 0, 1000);
    all.push(...page);
    if (page.length < 1000) return all;
  }
}

function crashSuite(engine: 'sqlite' | 'postgres'): void {
  describe(`broker SIGKILLed during ${INSTANCES} concurrent first boots (${engine})`, () => {
    let chain: SimChain;
    let dir: string;
    let dataDir: string;
    let databaseUrl: string | undefined;
    let pg: TestPostgres | undefined;
    let broker: BrokerProcess | undefined;
    let proxy: RunningProxy | undefined;
    let store: Store | undefined;

    before(async () => {
      chain = await sharedSimChain('Milan');
      dir = mkdtempSync(join(tmpdir(), `vouchsafe-crash-${engine}-`));
      dataDir = join(dir, 'data');
      mkdirSync(join(dir, 'guests'));
      if (engine === 'postgres') {
        pg = await startTestPostgres();
        databaseUrl = await pg.createSchema();
      }
    });
    after(async () => {
      await proxy?.close();
      await broker?.stop();
      await store?.close();
      await pg?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('keeps every released key, creates no second key, and its audit chain verifies', async (t) => {
      const started = Date.now();
      const start = () =>
        spawnBroker({ dataDir, rootSha256: chain.rootSha256, ...(databaseUrl ? { databaseUrl } : {}) });
      broker = await start();
      const first = broker;

      // The proxy stays up across the crash; its backend follows the broker to its new URL.
      let current = createNativeBackend({ brokerUrl: first.url, timeoutMs: 15_000 });
      let released = 0;
      let released2 = 0;
      let releasedAtKill = -1;
      let attesting = 0;
      let attestingAtKill = -1;
      let kill: Promise<void> | undefined;
      const killAt = Math.ceil(INSTANCES * KILL_AFTER);
      // Wait for a share of the 0.2.0 guests too (they read two state slots before they negotiate, so
      // they tend to reach the broker after the 0.1.0 ones), so that the crash catches 0.2.0 boots
      // between release and commit.
      const killAt2 = Math.ceil((INSTANCES / 2) * KILL_AFTER_V2);
      /** Proxy sessions whose commit is held until the broker is dead. */
      const held = new Set<string>();
      /** Both thresholds met while no other attestation was in flight: the next one to start fires the kill. */
      let armed = false;
      const fire = (inFlight: number) => {
        releasedAtKill = released;
        attestingAtKill = inFlight;
        kill = first.kill();
      };
      const relay: ProxyBackend = {
        negotiate: (r, c) => current.negotiate(r, c),
        attest: async (r, c) => {
          attesting++;
          try {
            const pending = current.attest(r, c);
            // Sent to the broker, then the broker dies: whatever the machine's speed, the kill catches
            // attestation requests in flight (the relay counts them), not a quiet moment between them.
            if (armed && !kill) fire(attesting);
            const out = await pending;
            if (out.outcome === 'released') {
              released++;
              // Every other released 0.2.0 guest's commit is held until the broker is dead (a slow
              // network): so some guests certainly hold a released key whose commit never landed.
              if (r.version === '0.2.0' && ++released2 % 2 === 0) held.add(c.sessionId);
              if (!kill && released >= killAt && released2 >= killAt2) {
                if (attesting > 1) fire(attesting - 1);
                else armed = true;
              }
            }
            return out;
          } finally {
            attesting--;
          }
        },
        commit: async (r, c) => {
          if (held.has(c.sessionId)) {
            while (!kill && !c.signal.aborted) await new Promise((res) => setTimeout(res, 5));
            await kill;
          }
          return current.commit(r, c);
        },
      };
      proxy = await startProxy({
        listen: `unix:${join(dir, 'proxy.sock')}`,
        backend: relay,
        logger: pino({ level: 'silent' }),
        timeouts: { readMs: 30_000, backendMs: 20_000, sessionMs: 60_000 },
        closeGraceMs: 100,
      });
      const connect = proxy.address;

      // Register the instances (admin API of the first broker process).
      const guests: Guest[] = await mapLimit(
        Array.from({ length: INSTANCES }, (_, i) => i),
        16,
        async (i) => {
          const r = await adminCall(first, 'POST', '/v1/admin/instances', {
            project: 'crash',
            zone: 'zone-a',
            instanceId: `crash-${i}`,
            instanceName: `vm-${i}`,
            policy: { measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] },
          });
          assert.equal(r.status, 201, JSON.stringify(r.body));
          return {
            index: i,
            version: i % 2 === 0 ? '0.2.0' : '0.1.0',
            id: r.body.id as string,
            hostData: r.body.hostData as string,
            fw: new SimSnpFirmware(chain, {
              measurement: SIM_DEFAULT_MEASUREMENT,
              policy: SIM_DEFAULT_POLICY,
              hostData: fromHex(r.body.hostData)!,
            }),
            statePath: join(dir, 'guests', `${i}.state`),
            body: new Uint8Array(randomBytes(48)),
          };
        },
      );
      const boot = (g: Guest, version: Version = g.version, statePath = g.statePath, b = first) =>
        bootGuest({
          connect,
          provider: simulatorReportProvider(g.fw),
          statePath,
          version,
          ...(version === '0.2.0' ? { brokerPublicKey: b.publicKey } : {}),
          initialState: g.body,
          timeoutMs: 30_000,
        });

      // All first boots at once; the broker dies while they are in flight.
      const firstBoots = await Promise.allSettled(guests.map((g) => boot(g)));
      assert.ok(kill, `the kill never fired (${released} releases)`);
      assert.ok(attestingAtKill > 0, 'attestation requests were at the broker when it was killed');
      await kill;
      const exit = await first.exited;
      assert.equal(exit.signal, 'SIGKILL');

      const ok = new Map<number, BootResult>();
      const failed: { g: Guest; e: AttestationError }[] = [];
      firstBoots.forEach((r, i) => {
        const g = guests[i]!;
        if (r.status === 'fulfilled') {
          ok.set(i, r.value);
          assert.equal(r.value.firstBoot, true);
          assert.deepEqual(r.value.state, g.body);
        } else {
          assert.ok(r.reason instanceof AttestationError, `boot ${i}: ${r.reason}`);
          assert.ok(
            OUTAGE_REASONS.has(r.reason.reason),
            `boot ${i} (${g.version}) failed with ${r.reason.code} ${r.reason.reason}, not an outage`,
          );
          failed.push({ g, e: r.reason });
        }
      });
      assert.ok(ok.size > 0, 'some first boots completed before the kill');
      assert.ok(failed.length > 0, 'some first boots were in flight at the kill');

      // Which guests received a key: a completed boot, or a 0.2.0 guest whose pending slot (sealed under
      // the released key, written before the commit) exists although its commit was cut off.
      const pendingOnly = failed
        .map((f) => f.g)
        .filter((g) => g.version === '0.2.0' && existsSync(pendingPathOf(g.statePath)));
      for (const g of failed.map((f) => f.g)) {
        assert.equal(existsSync(g.statePath), false, `guest ${g.index} failed but has a state file`);
        if (g.version === '0.1.0') assert.equal(existsSync(pendingPathOf(g.statePath)), false);
      }
      assert.ok(
        pendingOnly.length >= Math.floor(killAt2 / 2),
        `${pendingOnly.length} 0.2.0 guests received a key whose commit never landed`,
      );
      const received = new Set([...ok.keys(), ...pendingOnly.map((g) => g.index)]);

      // Restart on the same data directory / database.
      broker = await start();
      const second = broker;
      current = createNativeBackend({ brokerUrl: second.url, timeoutMs: 15_000 });
      store = await openStore({ dataDir, databaseUrl });
      const headAtRestart = (await store.auditHead()).seq;
      const verified = await adminCall(second, 'GET', '/v1/admin/audit/verify');
      assert.equal(verified.status, 200);
      assert.equal(verified.body.ok, true, JSON.stringify(verified.body));

      // Every release a guest received was audited before the crash.
      const beforeCrash = (await readWholeAudit(store)).filter((e) => e.seq <= headAtRestart);
      for (const i of received) {
        const g = guests[i]!;
        assert.ok(
          beforeCrash.some((e) => e.kind === 'release' && e.decision === 'accept' && e.instance === g.id),
          `guest ${i} received a key whose release is not in the audit log`,
        );
      }
      // The keys as stored right after the restart: the reboots must not change any of them.
      const keysAtRestart = new Map<string, string[]>();
      for (const g of guests) {
        keysAtRestart.set(
          g.id,
          (await store.listKeys(g.id)).map((k) => `${k.version}:${toHex(k.wrapped)}`),
        );
      }
      for (const i of received) assert.equal(keysAtRestart.get(guests[i]!.id)!.length, 1);

      // Boots cut off after their release hold a lease: the control plane resets them (the VMs stopped).
      await mapLimit(guests, 16, async (g) => {
        const r = await adminCall(second, 'POST', `/v1/admin/instances/${g.id}/reset-boot`, {
          note: 'broker crash test',
        });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      });

      // Reboot every instance.
      let sameKeyChecks = 0;
      await mapLimit(guests, 24, async (g) => {
        const got = received.has(g.index);
        if (g.version === '0.1.0') {
          const r = await boot(g, '0.1.0', g.statePath, second);
          assert.equal(r.firstBoot, !got, `guest ${g.index}`);
          assert.deepEqual(r.state, g.body, `guest ${g.index}: the reboot unseals its state`);
          if (got) sameKeyChecks++;
          return;
        }
        if (ok.has(g.index)) {
          // Committed before the crash: the reboot states counter 1 and unseals the state file.
          const r = await boot(g, '0.2.0', g.statePath, second);
          assert.equal(r.statedCounter, 1n);
          assert.equal(r.counter, 2n);
          assert.deepEqual(r.state, g.body, `guest ${g.index}: the reboot unseals its state`);
          sameKeyChecks++;
          return;
        }
        const pending = pendingPathOf(g.statePath);
        if (existsSync(pending)) {
          assert.equal(parseStateHeader((await readStateFile(pending))!).counter, 1n);
          const inst = await store!.getInstance(g.id);
          if (inst?.committedCounter === 1) {
            // The commit reached the store but its answer was lost: the pending slot is the committed
            // state, and the guest library promotes it.
            const r = await boot(g, '0.2.0', g.statePath, second);
            assert.equal(r.statedCounter, 1n);
            assert.deepEqual(r.state, g.body, `guest ${g.index}: the reboot unseals its pending state`);
          } else {
            assert.equal(inst?.committedCounter, null);
            // The commit never landed. The pending slot was sealed under the key the guest received; a
            // 0.1.0 boot (no counter: allowed while nothing was committed) of a copy of it must unseal it.
            const copy = join(dir, 'guests', `${g.index}.pending-copy`);
            copyFileSync(pending, copy);
            const r = await boot(g, '0.1.0', copy, second);
            assert.equal(r.firstBoot, false);
            assert.deepEqual(r.state, g.body, `guest ${g.index}: the released key opens its pending state`);
            // And the guest library itself recovers: state_ahead, then a boot from the committed (no) state.
            const again = await boot(g, '0.2.0', g.statePath, second);
            assert.equal(again.statedCounter, null);
            assert.equal(again.committed, true);
          }
          sameKeyChecks++;
          return;
        }
        // Never received a key (its release may still have created one: the reboot gets that one).
        const r = await boot(g, '0.2.0', g.statePath, second);
        assert.equal(r.firstBoot, true);
        assert.equal(r.committed, true);
      });
      assert.equal(sameKeyChecks, received.size);

      // One key per instance, never replaced; one key_created per instance in the whole log.
      const audit = await readWholeAudit(store);
      for (const g of guests) {
        const keys = await store.listKeys(g.id);
        assert.equal(keys.length, 1, `instance ${g.index} has ${keys.length} keys`);
        assert.equal(keys[0]!.version, 1);
        const before = keysAtRestart.get(g.id)!;
        if (before.length > 0) assert.deepEqual([`1:${toHex(keys[0]!.wrapped)}`], before);
        const created = audit.filter((e) => e.instance === g.id && e.reasons.includes('broker.key_created'));
        assert.equal(created.length, 1, `instance ${g.index}: ${created.length} key_created entries`);
      }
      const final = await adminCall(second, 'GET', '/v1/admin/audit/verify');
      assert.equal(final.body.ok, true, JSON.stringify(final.body));
      assert.equal(final.body.entries, audit.length);

      t.diagnostic(
        `${engine}: killed after ${releasedAtKill} of ${INSTANCES} releases with ${attestingAtKill} ` +
          `attestations in flight; ${ok.size} boots completed, ` +
          `${failed.length} failed (${pendingOnly.length} 0.2.0 guests held an uncommitted key); ` +
          `${received.size} received keys re-checked; ${audit.length} audit entries; ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    });
  });
}

crashSuite('sqlite');
crashSuite('postgres');
