/**
 * Fault: the clock steps back in the middle of boots and commits. The end-to-end stack (broker, host proxy,
 * simulated guests; test/e2e/harness.ts) runs on an injected clock that the test moves, including hours
 * backwards, at chosen points of a guest's exchange (a wrapped proxy backend runs a hook before the attest
 * or the commit is forwarded): no sleeping, no wall-clock dependence.
 *
 * What the broker does (docs/broker.md "When the clock goes backwards"): its decisions run on a clock that
 * never goes back (src/broker/clock.ts): a backward step is logged (`clock_stepped_back`) and absorbed, so
 * durations the broker measures keep their length in elapsed time. Shown here: a challenge that expired
 * before the step stays expired; a consumed one replayed after it is unknown; a lease that ran out in
 * elapsed time has run out (the VM's restart is not refused as a clone), a live one still refuses a real
 * second launch; a commit across the step does not pull the lease in; audit entries keep seq order with
 * non-decreasing times and the chain verifies. Tokens and certificate validity use the clock as it is:
 * a KBS token's iat is the stepped clock's, and a clock stepped back before the VCEK's notBefore refuses
 * the evidence (ChainInvalid) until it is right again.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { RegisterInstanceRequest } from '../../src/broker/types.js';
import { ErrorCode } from '../../src/errors.js';
import { type BootResult, bootGuest, simulatorReportProvider } from '../../src/guest/index.js';
import type { AttestInput, ProxyBackend } from '../../src/proxy/backend.js';
import type { RunningProxy } from '../../src/proxy/index.js';
import type { SimSnpFirmware } from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import {
  GOOD_MEASUREMENT,
  refusal,
  type Stack,
  sqliteEngine,
  startStack,
  wrapBackend,
} from '../e2e/harness.js';
import { IndependentKbsClient } from '../kbs/independent-client.js';

const HOUR = 3_600_000;
const TTL = 60_000;
const LEASE = 300_000;

describe('fault: the clock steps back during boots and commits', () => {
  /** The injected clock: a day ahead of now, so hours back stay inside the simulator chain's validity. */
  let t = Date.now() + 24 * HOUR;
  let s: Stack;
  let proxy: RunningProxy;
  const logs: string[] = [];
  const hooks: { beforeAttest?: () => Promise<void> | void; beforeCommit?: () => Promise<void> | void } = {};
  let lastAttest: AttestInput | undefined;
  let n = 0;

  before(async () => {
    s = await startStack(sqliteEngine(), {
      now: () => t,
      challengeTtlMs: TTL,
      leaseMs: LEASE,
      logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(line) }),
    });
    const once = async (k: keyof typeof hooks) => {
      const h = hooks[k];
      hooks[k] = undefined;
      await h?.();
    };
    proxy = await s.extraProxy((b: ProxyBackend) =>
      wrapBackend(b, {
        attest: async (r, c) => {
          lastAttest = r;
          await once('beforeAttest');
          return b.attest(r, c);
        },
        commit: async (r, c) => {
          await once('beforeCommit');
          return b.commit(r, c);
        },
      }),
    );
  });

  after(async () => {
    await s?.close();
  });

  /**
   * Registers an instance in process. `newLaunch: 'refuse'` asks for the lease rule "a second launch during
   * a live lease is a clone" where the broker has new-launch policies; a broker without them has only that
   * rule (and ignores the field).
   */
  async function register(): Promise<{ id: string; hostData: string }> {
    const req = {
      project: 'faults',
      zone: 'z',
      instanceId: `clock-${++n}`,
      instanceName: `vm-${n}`,
      policy: { measurements: [GOOD_MEASUREMENT] },
      newLaunch: 'refuse',
    };
    const v = await s.broker.broker.registerInstance(req as RegisterInstanceRequest);
    return { id: v.id, hostData: toHex(v.hostData) };
  }

  /** A boot of a new launch (its own REPORT_ID) through the hooked proxy. */
  function boot(fw: SimSnpFirmware, state: string): Promise<BootResult> {
    return bootGuest({
      connect: proxy.address,
      provider: simulatorReportProvider(fw),
      statePath: state,
      version: '0.2.0',
      brokerPublicKey: s.broker.publicKey,
      timeoutMs: 120_000,
    });
  }

  const steps = () =>
    logs.map((l) => JSON.parse(l)).filter((l) => l.event === 'clock_stepped_back') as {
      stepMs: number;
    }[];

  it('a challenge that expired before the clock went back stays expired', async () => {
    const inst = await register();
    const before = steps().length;
    // Between the challenge and the attestation: the challenge's lifetime passes, the broker reads its clock
    // (issuing another challenge), then the clock steps back three hours.
    hooks.beforeAttest = async () => {
      t += TTL + 1;
      await s.broker.broker.issueChallenge();
      t -= 3 * HOUR;
    };
    const e = await refusal(() => boot(s.firmware(inst.hostData), s.statePath('expired')));
    assert.deepEqual([e.code, e.reason], [ErrorCode.Refused, 'broker.challenge_expired']);
    assert.deepEqual(
      steps()
        .slice(before)
        .map((x) => x.stepMs),
      [3 * HOUR],
      'the step is logged',
    );
  });

  it('a consumed challenge replayed after the clock went back is unknown', async () => {
    const inst = await register();
    const r = await boot(s.firmware(inst.hostData), s.statePath('replay'));
    await r.session?.end();
    assert.ok(lastAttest);
    t -= 2 * HOUR;
    const out = await s.backend.attest(lastAttest, {
      sessionId: 'replay',
      peer: 'test',
      signal: new AbortController().signal,
    });
    assert.equal(out.outcome, 'refused');
    assert.ok(out.outcome === 'refused');
    assert.deepEqual([out.error.code, out.error.reason], [ErrorCode.Refused, 'broker.challenge_unknown']);
  });

  it('a lease that ran out in elapsed time has run out, though the clock went back: the restart is no clone', async () => {
    const inst = await register();
    const state = s.statePath('crashed');
    const first = await boot(s.firmware(inst.hostData), state);
    assert.equal(first.committed, true);
    // The VM crashes (no end, no heartbeat); the clock steps back three hours and the broker reads it (a
    // challenge for some other guest); then one lease passes.
    t -= 3 * HOUR;
    await s.broker.broker.issueChallenge();
    t += LEASE + 1;
    const restart = await boot(s.firmware(inst.hostData), state);
    assert.equal(restart.committed, true);
    assert.equal(restart.statedCounter, first.counter);
    assert.deepEqual(restart.state, first.state);
    const releases = (await s.broker.broker.readAudit(0, 10_000)).filter(
      (e) => e.instance === inst.id && e.kind === 'release' && e.decision === 'accept',
    );
    assert.ok(releases.at(-1)?.reasons.includes('broker.expired_boot_replaced'));
    await restart.session?.end();
  });

  it('a live lease still refuses a real second launch after the clock went back', async () => {
    const inst = await register();
    const state = s.statePath('running');
    const r = await boot(s.firmware(inst.hostData), state);
    t -= 2 * HOUR;
    const keys = await s.keys(inst.id);
    // A copy of the VM, launched from a copy of its current state while it runs.
    const copy = s.statePath('clone');
    copyFileSync(state, copy);
    const clone = await refusal(() => boot(s.firmware(inst.hostData), copy));
    assert.deepEqual([clone.code, clone.reason], [ErrorCode.Refused, 'broker.clone']);
    assert.deepEqual(await s.keys(inst.id), keys);
    // The running boot goes on: it still heartbeats and ends.
    await r.session?.end();
  });

  it('a commit across the step keeps the lease where the broker measured it (not hours earlier)', async () => {
    const inst = await register();
    let leaseAtRelease = 0;
    hooks.beforeCommit = async () => {
      leaseAtRelease = (await s.broker.broker.getInstance(inst.id))!.activeBoot!.leaseExpiresAt;
      t -= HOUR;
    };
    const r = await boot(s.firmware(inst.hostData), s.statePath('commit-step'));
    assert.equal(r.committed, true);
    const after = (await s.broker.broker.getInstance(inst.id))!.activeBoot!.leaseExpiresAt;
    assert.ok(leaseAtRelease > 0);
    assert.ok(after >= leaseAtRelease, `lease ${after} moved before ${leaseAtRelease}`);
    await r.session?.end();
  });

  it('tokens carry the clock as it is; certificates are checked at the clock as it is', async () => {
    t -= HOUR;
    const kbsInst = await register();
    const fw = s.firmware(kbsInst.hostData);
    const { token } = await new IndependentKbsClient(s.broker.url).run({
      kind: 'P-256',
      evidence: (rd) => fw.getReport(rd),
      path: 'vouchsafe/sealing-key/current',
    });
    const claims = JSON.parse(Buffer.from(String(token).split('.')[1]!, 'base64url').toString('utf8'));
    assert.equal(claims.iat, Math.floor(t / 1000), 'iat is the clock as it is');
    assert.equal(claims.exp - claims.iat, 300);

    // Back before the VCEK's notBefore: the chain is not valid yet, whatever the broker's own time.
    const normal = t;
    t = new Date(new X509Certificate(s.chain.vcek.der).validFrom).getTime() - HOUR;
    const inst = await register();
    const early = await refusal(() => boot(s.firmware(inst.hostData), s.statePath('early')));
    assert.equal(early.code, ErrorCode.ChainInvalid);
    assert.match(early.reason, /^snp\.chain\.(leaf|intermediate|root)_not_yet_valid$/);
    t = normal;
    const ok = await boot(s.firmware(inst.hostData), s.statePath('early'));
    assert.equal(ok.committed, true);
    await ok.session?.end();
  });

  it('audit entries stay in seq order with times that never decrease, and the chain verifies', async () => {
    const entries = await s.broker.broker.readAudit(0, 10_000);
    assert.ok(entries.length > 20);
    entries.forEach((e, i) => {
      assert.equal(e.seq, i + 1);
      if (i > 0) assert.ok(e.time >= entries[i - 1]!.time, `time of seq ${e.seq} went back`);
    });
    const audit = await s.admin('GET', '/v1/admin/audit/verify');
    assert.equal(audit.body.ok, true, JSON.stringify(audit.body));
    assert.ok(steps().length >= 5, 'every step back was logged');
  });
});
