/**
 * The end-to-end cases of issue 3, run once per store engine (e2e-sqlite.test.ts, e2e-postgres.test.ts):
 * real sockets (broker HTTP on 127.0.0.1, proxy on a unix socket), the real verifier and appraiser, the
 * guest library with the SNP simulator. Every refusal has its own test: it asserts the stable code and
 * reason the guest sees, that the instance's sealing key is unchanged (the wrapped key rows in the store,
 * byte for byte), and that the broker wrote an audit entry with the reason. Malformed frames never reach
 * the broker: for those the proxy refuses, and the test asserts that the broker wrote nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ErrorCode } from '../../src/errors.js';
import { generateP521KeyPair, p521PointOf } from '../../src/native/p521.js';
import type { AttestInput } from '../../src/proxy/backend.js';
import { createNativeBackend } from '../../src/proxy/backends/native/index.js';
import { startProxy } from '../../src/proxy/index.js';
import { toHex } from '../../src/util/bytes.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { RawClient } from '../proxy/raw-client.js';
import {
  DEBUG_POLICY,
  GOOD_MEASUREMENT,
  refusal,
  type Stack,
  startStack,
  type TestEngine,
  wrapBackend,
} from './harness.js';
import { lifecycleSuite } from './lifecycle.js';

const ctx = () => ({ sessionId: 'test', peer: 'test', signal: new AbortController().signal });

export function e2eSuite(name: string, makeEngine: () => Promise<TestEngine>): void {
  describe(`end to end over real sockets (${name})`, () => {
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

    const reset = async (id: string) => {
      const r = await s.admin('POST', `/v1/admin/instances/${id}/reset-boot`, { note: 'VM stopped' });
      assert.equal(r.status, 200);
    };

    /** An instance that has booted once (key created, state v1 committed) and was then stopped (reset). */
    async function refuseNewLaunches(id: string) {
      const r = await s.admin('PUT', `/v1/admin/instances/${id}/new-launch`, { newLaunch: 'refuse' });
      assert.equal(r.status, 200);
    }

    async function booted(policy?: Record<string, unknown>) {
      const inst = await s.register(policy);
      const fw = s.firmware(inst.hostData);
      const state = s.statePath(inst.id);
      const first = await s.boot(fw, state);
      await reset(inst.id);
      return { inst, fw, state, first, keys: await s.keys(inst.id), seq: await s.auditHead() };
    }

    /** The refusal entry after `since` with `reason`; checks the instance it names. */
    /**
     * A refusal that names no instance or boot writes no audit entry (anyone can send those; docs/broker.md
     * "Audit log"); it is counted in the broker's metrics instead.
     */
    async function refusalNotAudited(since: number, reason: string) {
      const entries = await s.broker.broker.readAudit(since, 100);
      assert.deepEqual(
        entries.filter((e) => e.reasons.includes(reason)),
        [],
        `no audit entry for ${reason}`,
      );
      const metrics = await (await fetch(`${s.broker.url}/metrics`)).text();
      assert.match(
        metrics,
        new RegExp(`vouchsafe_refusals_total\\{[^}]*reason="${reason.replace('.', '\\.')}"`),
      );
    }

    async function refusalAudited(since: number, reason: string, instance: string | null) {
      const entries = await s.broker.broker.readAudit(since, 100);
      const hit = entries.find((e) => e.decision === 'refuse' && e.reasons.includes(reason));
      assert.ok(
        hit,
        `an audit entry refusing with ${reason} (got ${JSON.stringify(entries.map((e) => e.reasons))})`,
      );
      assert.equal(hit.instance, instance);
      return hit;
    }

    it('first boot creates the sealing key and seals a new state file (0.2.0, broker key pinned)', async () => {
      const inst = await s.register();
      assert.match(inst.hostData, /^[0-9a-f]{64}$/);
      const state = s.statePath('first-boot');
      const since = await s.auditHead();
      const r = await s.boot(s.firmware(inst.hostData), state);
      assert.equal(r.version, '0.2.0');
      assert.equal(r.firstBoot, true);
      assert.equal(r.statedCounter, null);
      assert.equal(r.counter, 1n);
      assert.equal(r.committed, true);
      assert.equal(r.brokerVerified, true);
      assert.deepEqual(r.identity, {
        project: inst.project,
        zone: inst.zone,
        instanceId: inst.instanceId,
        instanceName: inst.instanceName,
      });
      assert.ok(existsSync(state));
      const shown = await s.admin('GET', `/v1/admin/instances/${inst.id}`);
      assert.equal(shown.body.committedCounter, 1);
      assert.equal(shown.body.keyVersions.length, 1);
      assert.equal(shown.body.activeBoot.bootId, r.bootId);
      const entries = (await s.broker.broker.readAudit(since, 100)).filter((e) => e.instance === inst.id);
      assert.deepEqual(
        entries.map((e) => [e.kind, e.decision, [...e.reasons]]),
        [
          ['release', 'accept', ['broker.released', 'broker.key_created']],
          ['commit', 'accept', ['broker.committed']],
        ],
      );
    });

    it('a reboot unseals the same state with the same key and commits the next counter', async () => {
      const { inst, fw, state, first, keys } = await booted();
      const r = await s.boot(fw, state);
      assert.equal(r.firstBoot, false);
      assert.equal(r.statedCounter, 1n);
      assert.equal(r.counter, 2n);
      assert.equal(r.committed, true);
      assert.deepEqual(r.state, first.state);
      assert.deepEqual(await s.keys(inst.id), keys);
      const shown = await s.admin('GET', `/v1/admin/instances/${inst.id}`);
      assert.equal(shown.body.committedCounter, 2);
    });

    it('a 0.1.0 guest (what COCONUT-SVSM sends) boots and reboots; it has no rollback protection', async () => {
      const inst = await s.register();
      const fw = s.firmware(inst.hostData);
      const state = s.statePath('v010');
      const a = await s.boot(fw, state, { version: '0.1.0' });
      assert.equal(a.firstBoot, true);
      assert.equal(a.committed, false);
      assert.equal(a.identity, null);
      assert.equal(a.bootId, null);
      const old = s.statePath('v010-old');
      copyFileSync(state, old);
      // No reset needed: the broker ends a 0.1.0 boot at once (it can never heartbeat or end).
      const b = await s.boot(fw, state, { version: '0.1.0' });
      assert.equal(b.firstBoot, false);
      assert.deepEqual(b.state, a.state);
      // The documented limitation: a 0.1.0 guest states no counter, so an old state file is not detected.
      const rolledBack = await s.boot(fw, old, { version: '0.1.0' });
      assert.deepEqual(rolledBack.state, a.state);
      const shown = await s.admin('GET', `/v1/admin/instances/${inst.id}`);
      assert.equal(shown.body.committedCounter, null);
      assert.equal(shown.body.activeBoot, null);
      assert.equal(shown.body.keyVersions.length, 1);
      const kinds = (await s.broker.broker.readAudit(0, 1000))
        .filter((e) => e.instance === inst.id)
        .map((e) => e.kind);
      assert.deepEqual(kinds, ['register', 'release', 'end', 'release', 'end', 'release', 'end']);
    });

    it('refuses a replayed attestation request: ERR_REFUSED broker.challenge_unknown', async () => {
      const { inst, fw, state } = await booted();
      let captured: AttestInput | undefined;
      const recorder = await s.extraProxy((b) =>
        wrapBackend(b, {
          attest: (req, c) => {
            captured = req;
            return b.attest(req, c);
          },
        }),
      );
      await s.boot(fw, state, { connect: recorder.address });
      await reset(inst.id);
      assert.ok(captured);
      const keys = await s.keys(inst.id);
      const since = await s.auditHead();
      // Someone on the path sends the captured request to the broker again.
      const r = await s.backend.attest(captured, ctx());
      assert.equal(r.outcome, 'refused');
      assert.ok(r.outcome === 'refused');
      assert.equal(r.error.code, ErrorCode.Refused);
      assert.equal(r.error.reason, 'broker.challenge_unknown');
      assert.deepEqual(await s.keys(inst.id), keys);
      await refusalNotAudited(since, 'broker.challenge_unknown');
    });

    it('refuses an expired challenge: ERR_REFUSED broker.challenge_expired', async () => {
      let delayMs = 0;
      const slow = await startStack(engine, {
        challengeTtlMs: 1000,
        wrap: (b) =>
          wrapBackend(b, {
            attest: async (req, c) => {
              await new Promise((r) => setTimeout(r, delayMs));
              return b.attest(req, c);
            },
          }),
      });
      try {
        const inst = await slow.register();
        const fw = slow.firmware(inst.hostData);
        const state = slow.statePath('ttl');
        await slow.boot(fw, state);
        await slow.admin('POST', `/v1/admin/instances/${inst.id}/reset-boot`, {});
        const keys = await slow.keys(inst.id);
        const since = await slow.auditHead();
        delayMs = 1500; // the proxy holds the request past the challenge's lifetime
        const e = await refusal(() => slow.boot(fw, state));
        assert.equal(e.code, ErrorCode.Refused);
        assert.equal(e.reason, 'broker.challenge_expired');
        assert.deepEqual(await slow.keys(inst.id), keys);
        // Refused before the report named an instance: counted, not audited.
        const entries = await slow.broker.broker.readAudit(since, 100);
        assert.equal(entries.filter((x) => x.reasons.includes('broker.challenge_expired')).length, 0);
      } finally {
        await slow.close();
      }
    });

    it('refuses REPORT_DATA not bound to the key the secret would be sealed to (key swapped on the path): ERR_REFUSED broker.report_data_mismatch', async () => {
      const { inst, fw, state, keys, seq } = await booted();
      const attacker = p521PointOf((await generateP521KeyPair()).publicKey);
      const mitm = await s.extraProxy((b) =>
        wrapBackend(b, { attest: (req, c) => b.attest({ ...req, key: attacker }, c) }),
      );
      const e = await refusal(() => s.boot(fw, state, { connect: mitm.address }));
      assert.equal(e.code, ErrorCode.Refused);
      assert.equal(e.reason, 'broker.report_data_mismatch');
      assert.deepEqual(await s.keys(inst.id), keys);
      await refusalNotAudited(seq, 'broker.report_data_mismatch');
    });

    it('refuses an unknown HOST_DATA: ERR_REFUSED broker.unknown_instance', async () => {
      const { inst, keys, seq } = await booted();
      const stranger = s.firmware(randomBytes(32).toString('hex'));
      const e = await refusal(() => s.boot(stranger, s.statePath('stranger')));
      assert.equal(e.code, ErrorCode.Refused);
      assert.equal(e.reason, 'broker.unknown_instance');
      assert.deepEqual(await s.keys(inst.id), keys);
      await refusalNotAudited(seq, 'broker.unknown_instance');
    });

    it("refuses another instance's HOST_DATA with a different measurement: ERR_POLICY_REJECTED snp.measurement", async () => {
      const victim = await booted();
      // A host launches its own code with the victim's HOST_DATA (which is not secret).
      const impostor = s.firmware(victim.inst.hostData, { measurement: new Uint8Array(randomBytes(48)) });
      const e = await refusal(() => s.boot(impostor, s.statePath('impostor')));
      assert.equal(e.code, ErrorCode.PolicyRejected);
      assert.equal(e.reason, 'snp.measurement');
      assert.deepEqual(await s.keys(victim.inst.id), victim.keys);
      await refusalAudited(victim.seq, 'snp.measurement', victim.inst.id);
      // The victim itself still boots and opens its state.
      const r = await s.boot(victim.fw, victim.state);
      assert.deepEqual(r.state, victim.first.state);
    });

    it('refuses a measurement the policy no longer allows: ERR_POLICY_REJECTED snp.measurement', async () => {
      const { inst, fw, state, keys, seq } = await booted();
      const set = await s.admin('PUT', `/v1/admin/instances/${inst.id}/policy`, {
        policy: { measurements: [toHex(new Uint8Array(48).fill(0x11))] },
      });
      assert.equal(set.status, 200);
      const e = await refusal(() => s.boot(fw, state));
      assert.equal(e.code, ErrorCode.PolicyRejected);
      assert.equal(e.reason, 'snp.measurement');
      assert.deepEqual(await s.keys(inst.id), keys);
      await refusalAudited(seq, 'snp.measurement', inst.id);
    });

    it('refuses a debuggable guest: ERR_POLICY_REJECTED snp.policy.debug', async () => {
      const { inst, state, keys, seq } = await booted();
      const debug = s.firmware(inst.hostData, { policy: DEBUG_POLICY });
      const e = await refusal(() => s.boot(debug, state));
      assert.equal(e.code, ErrorCode.PolicyRejected);
      assert.equal(e.reason, 'snp.policy.debug');
      assert.deepEqual(await s.keys(inst.id), keys);
      await refusalAudited(seq, 'snp.policy.debug', inst.id);
    });

    it('refuses firmware below the minimum TCB: ERR_POLICY_REJECTED snp.tcb.minimum', async () => {
      const tcb = s.chain.tcb;
      const { inst, fw, state, keys, seq } = await booted({
        measurements: [GOOD_MEASUREMENT],
        minimumTcb: { Milan: { ...tcb } },
      });
      // An AMD bulletin raises the fleet's minimum SNP firmware SVN above this host's.
      const set = await s.admin('PUT', `/v1/admin/instances/${inst.id}/policy`, {
        policy: { measurements: [GOOD_MEASUREMENT], minimumTcb: { Milan: { ...tcb, snp: tcb.snp + 1 } } },
      });
      assert.equal(set.status, 200);
      const e = await refusal(() => s.boot(fw, state));
      assert.equal(e.code, ErrorCode.PolicyRejected);
      assert.equal(e.reason, 'snp.tcb.minimum');
      assert.deepEqual(await s.keys(inst.id), keys);
      await refusalAudited(seq, 'snp.tcb.minimum', inst.id);
    });

    it('refuses an old state file (rollback): ERR_REFUSED broker.rollback', async () => {
      const { inst, fw, state, first } = await booted();
      const old = s.statePath('rollback-old');
      copyFileSync(state, old); // counter 1
      await s.boot(fw, state); // counter 2, committed
      await reset(inst.id);
      const keys = await s.keys(inst.id);
      const seq = await s.auditHead();
      const e = await refusal(() => s.boot(fw, old));
      assert.equal(e.code, ErrorCode.Refused);
      assert.equal(e.reason, 'broker.rollback');
      assert.deepEqual(await s.keys(inst.id), keys);
      await refusalAudited(seq, 'broker.rollback', inst.id);
      const r = await s.boot(fw, state);
      assert.equal(r.statedCounter, 2n);
      assert.deepEqual(r.state, first.state);
    });

    it('under `refuse`, refuses a clone while the original runs (a second launch of the same state): ERR_REFUSED broker.clone', async () => {
      const { inst, fw, state } = await booted();
      await refuseNewLaunches(inst.id);
      await s.boot(fw, state); // the original runs (its lease is live)
      const copy = s.statePath('clone-copy');
      copyFileSync(state, copy); // an exact copy of its current state
      const keys = await s.keys(inst.id);
      const seq = await s.auditHead();
      const e = await refusal(() => s.boot(s.firmware(inst.hostData), copy));
      assert.equal(e.code, ErrorCode.Refused);
      assert.equal(e.reason, 'broker.clone');
      assert.deepEqual(await s.keys(inst.id), keys);
      await refusalAudited(seq, 'broker.clone', inst.id);
    });

    it('under `refuse`, of two concurrent launches of one state, exactly one gets the key', async () => {
      const { inst, fw, state, keys } = await booted();
      await refuseNewLaunches(inst.id);
      const a = s.statePath('race-a');
      const b = s.statePath('race-b');
      copyFileSync(state, a);
      copyFileSync(state, b);
      const results = await Promise.allSettled([s.boot(fw, a), s.boot(s.firmware(inst.hostData), b)]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.equal(lost.reason.code, ErrorCode.Refused);
      // Clone when the loser asked while the winner's boot was running; rollback if the winner had already committed.
      assert.ok(['broker.clone', 'broker.rollback'].includes(lost.reason.reason), lost.reason.reason);
      assert.deepEqual(await s.keys(inst.id), keys);
    });

    it('refuses a response signed by another key (pinned broker key): ERR_SIGNATURE_INVALID aproxy.signature', async () => {
      const { fw, state } = await booted();
      const other = newKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
      const e = await refusal(() => s.boot(fw, state, { brokerPublicKey: other }));
      assert.equal(e.code, ErrorCode.SignatureInvalid);
      assert.equal(e.reason, 'aproxy.signature');
    });

    describe('malformed frames and silent guests (refused by the proxy; the broker never sees them)', () => {
      /** A booted instance, its keys and the audit head before; afterwards a good boot still works. */
      async function around(fn: () => Promise<void>) {
        const b = await booted();
        await fn();
        assert.deepEqual(await s.keys(b.inst.id), b.keys);
        assert.equal(await s.auditHead(), b.seq, 'the broker decided nothing, so it audited nothing');
        const r = await s.boot(b.fw, b.state);
        assert.deepEqual(r.state, b.first.state);
      }

      it('a length prefix that lies (frame cut short by EOF): the proxy drops the connection', () =>
        around(async () => {
          const c = await RawClient.connect(s.proxy.address);
          const head = new Uint8Array(8);
          new DataView(head.buffer).setBigUint64(0, 1000n, true);
          c.sendRaw(head);
          c.sendRaw(new TextEncoder().encode('{"version"'));
          c.end();
          assert.equal(await c.next(3000), 'EOF');
        }));

      it('a frame over 1 MiB: dropped as soon as its length prefix arrives', () =>
        around(async () => {
          const c = await RawClient.connect(s.proxy.address);
          const head = new Uint8Array(8);
          new DataView(head.buffer).setBigUint64(0, BigInt(1024 * 1024 + 1), true);
          c.sendRaw(head);
          assert.equal(await c.next(3000), 'EOF');
        }));

      it('bad JSON after a 0.2.0 negotiation: ErrorReply ERR_MALFORMED', () =>
        around(async () => {
          const c = await RawClient.connect(s.proxy.address);
          c.sendFrame('{"version":[0,2,0],"tee":"snp"}');
          const neg = JSON.parse(await c.next());
          assert.ok(typeof neg.challenge === 'string');
          c.sendFrame('{"tee":"snp","evidence":');
          const reply = JSON.parse(await c.next());
          assert.equal(reply.success, false);
          assert.equal(reply.error.code, ErrorCode.Malformed);
          assert.match(reply.error.reason, /^aproxy\.json\./);
        }));

      it('bad base64 in the evidence: ErrorReply ERR_MALFORMED aproxy.base64', () =>
        around(async () => {
          const c = await RawClient.connect(s.proxy.address);
          c.sendFrame('{"version":[0,2,0],"tee":"snp"}');
          const neg = JSON.parse(await c.next());
          const k = 'A'.repeat(88);
          c.sendFrame(
            JSON.stringify({
              tee: 'snp',
              evidence: { Snp: { report: 'not*base64!' } },
              challenge: neg.challenge,
              key: { x: k, y: k },
              stateCounter: null,
              stateDigest: null,
            }),
          );
          const reply = JSON.parse(await c.next());
          assert.equal(reply.error.code, ErrorCode.Malformed);
          assert.equal(reply.error.reason, 'aproxy.base64');
        }));

      it('a guest that connects and goes silent is cut off after the read timeout; others are served meanwhile', async () => {
        const b = await booted();
        const before = s.proxy.outcomes().timeout ?? 0;
        const silent = await RawClient.connect(s.proxy.address);
        const r = await s.boot(b.fw, b.state);
        assert.deepEqual(r.state, b.first.state);
        assert.equal(silent.closedAt, undefined, 'the silent guest is still being waited for');
        await silent.closed(5000);
        assert.equal((s.proxy.outcomes().timeout ?? 0) - before, 1);
      });
    });

    it('a broker outage becomes ERR_UNAVAILABLE for that guest; the proxy keeps running', async () => {
      const dead = createServer();
      await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
      const port = (dead.address() as { port: number }).port;
      await new Promise<void>((r) => dead.close(() => r()));
      const proxy = await startProxy({
        listen: `unix:${s.dir}/outage.sock`,
        backend: createNativeBackend({ brokerUrl: `http://127.0.0.1:${port}`, timeoutMs: 2000 }),
        logger: pino({ level: 'silent' }),
        closeGraceMs: 100,
      });
      try {
        const inst = await s.register();
        for (let i = 0; i < 2; i++) {
          const e = await refusal(() =>
            s.boot(s.firmware(inst.hostData), s.statePath(`outage-${i}`), { connect: proxy.address }),
          );
          assert.equal(e.code, ErrorCode.Unavailable);
          assert.equal(e.reason, 'native.broker_unreachable');
        }
        assert.deepEqual(await s.keys(inst.id), []);
      } finally {
        await proxy.close();
      }
    });

    lifecycleSuite(() => ({ engine, s }));

    it('the audit chain verifies after all of the above', async () => {
      const v = await s.admin('GET', '/v1/admin/audit/verify');
      assert.equal(v.status, 200);
      assert.equal(v.body.ok, true);
      assert.ok(v.body.entries > 20);
    });
  });
}
