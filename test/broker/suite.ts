/**
 * Broker behaviour, run against each store engine (broker-sqlite.test.ts, broker-postgres.test.ts).
 * Evidence is checked by `unverifiedTestVerifier` (parse only) and `testAppraiser`: these tests are
 * about the broker's own decisions, not about SNP verification.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Broker } from '../../src/broker/broker.js';
import { type BrokerRefused, REFUSED } from '../../src/broker/errors.js';
import { openFileKek } from '../../src/broker/kek.js';
import type { InstanceView, ReleaseRequest, ReleaseResult } from '../../src/broker/types.js';
import { ErrorCode, PolicyRejected } from '../../src/errors.js';
import { openStore } from '../../src/store/open.js';
import type { AuditEntry, NewLaunchPolicy, Store } from '../../src/store/types.js';
import { toHex } from '../../src/util/bytes.js';
import { sibling } from '../helpers/paths.js';
import type { StoreHarness } from '../store/contract.js';
import { raceChildren } from '../store/race.js';
import {
  goodPolicy,
  identity,
  makeBroker,
  releaseRequest,
  reportDataFor,
  stateDigestFor,
  testAppraiser,
  testKek,
} from './fixtures.js';
import type { Outcome } from './release-child.js';
import { unverifiedTestVerifier } from './unverified-test-verifier.js';

const LEASE = 300_000;
const RELEASE_CHILD = sibling(import.meta.url, 'release-child.ts');

export function runBrokerSuite(h: StoreHarness): void {
  describe(`broker on ${h.engine}`, () => {
    const opened: Store[] = [];
    before(async () => h.setup?.());
    after(async () => {
      for (const s of opened) await s.close().catch(() => {});
      await h.teardown?.();
    });

    async function setup(over: Parameters<typeof makeBroker>[1] = {}) {
      const location = await h.fresh();
      const store = await openStore(location);
      opened.push(store);
      const { broker, clock } = makeBroker(store, over);
      const register = (policy: unknown = goodPolicy, newLaunch?: NewLaunchPolicy) =>
        broker.registerInstance({
          ...identity(),
          policy: policy as never,
          ...(newLaunch ? { newLaunch } : {}),
        });
      return { location, store, broker, clock, register };
    }

    type Env = Awaited<ReturnType<typeof setup>>;

    /** The instance's keys (wrapped, as stored) and boot state: what a refusal must leave unchanged. */
    async function snapshot(env: Env, id: string) {
      const inst = await env.store.getInstance(id);
      return {
        keys: await env.store.listKeys(id),
        committedCounter: inst?.committedCounter,
        activeBoot: inst?.activeBoot,
      };
    }

    /** An instance with a key, committed counter 1 and no active boot. */
    async function established(env: Env) {
      const inst = await env.register();
      const r = await env.broker.release(await releaseRequest(env.broker, inst, null));
      await env.broker.commit(r.bootId, r.commitToken, 1, stateDigestFor(1));
      await env.broker.end(r.bootId, r.commitToken);
      return { inst, first: r };
    }

    async function lastAudit(env: Env): Promise<AuditEntry> {
      const head = await env.store.auditHead();
      return (await env.store.readAudit(head.seq - 1, 1))[0]!;
    }

    /**
     * Runs `act`, expects `reason`, and checks the audit entry and that nothing changed. A guest refusal
     * that names no instance (`auditedInstance` null) must write no entry at all: anyone can send those.
     */
    async function expectRefusal(
      env: Env,
      instanceId: string | null,
      act: () => Promise<unknown>,
      want: {
        reason: string;
        code?: string;
        kind?: string;
        reasons?: string[];
        auditedInstance?: string | null;
      },
    ) {
      const before = instanceId ? await snapshot(env, instanceId) : undefined;
      const headBefore = await env.store.auditHead();
      await assert.rejects(act(), (e: unknown) => {
        assert.equal((e as { code: string }).code, want.code ?? REFUSED);
        assert.equal((e as { reason: string }).reason, want.reason);
        return true;
      });
      const headAfter = await env.store.auditHead();
      const audited = want.auditedInstance === undefined ? instanceId : want.auditedInstance;
      if (audited === null && ['release', 'commit', 'heartbeat', 'end'].includes(want.kind ?? 'release')) {
        assert.equal(headAfter.seq, headBefore.seq, 'a refusal that names no instance is not audited');
        if (instanceId) {
          assert.deepEqual(await snapshot(env, instanceId), before, 'keys and boot state unchanged');
        }
        return undefined;
      }
      assert.equal(headAfter.seq, headBefore.seq + 1, 'exactly one audit entry written');
      const entry = await lastAudit(env);
      assert.equal(entry.decision, 'refuse');
      assert.equal(entry.kind, want.kind ?? 'release');
      assert.deepEqual(entry.reasons, want.reasons ?? [want.reason]);
      assert.equal(entry.instance, want.auditedInstance === undefined ? instanceId : want.auditedInstance);
      if (instanceId) {
        assert.deepEqual(await snapshot(env, instanceId), before, 'keys and boot state unchanged');
      }
      return entry;
    }

    describe('challenges', () => {
      it('issues at least 32 random bytes with the configured lifetime', async () => {
        const env = await setup({ challengeTtlMs: 5_000 });
        const a = await env.broker.issueChallenge();
        const b = await env.broker.issueChallenge();
        assert.equal(a.challenge.length, 32);
        assert.notDeepEqual(a.challenge, b.challenge);
        assert.equal(a.expiresAt, env.clock.t + 5_000);
      });

      it('refuses a challenge size below 32 bytes', async () => {
        const env = await setup();
        assert.throws(
          () => makeBroker(env.store, { challengeBytes: 16 }),
          (e: unknown) => (e as { reason: string }).reason === 'broker.config',
        );
      });

      it('purges long-expired challenges', async () => {
        const env = await setup();
        await env.broker.issueChallenge();
        env.clock.advance(2 * 60 * 60 * 1000);
        assert.equal(await env.broker.purgeExpiredChallenges(), 1);
      });
    });

    describe('instance registry', () => {
      it('issues a unique random 32-byte HOST_DATA and keeps identity and policy', async () => {
        const env = await setup();
        const id1 = identity('alpha');
        const a = await env.broker.registerInstance({ ...id1, policy: goodPolicy });
        const b = await env.register();
        assert.equal(a.hostData.length, 32);
        assert.notDeepEqual(a.hostData, b.hostData);
        assert.deepEqual(await env.broker.getInstance(a.id), a);
        assert.equal(a.instanceName, 'alpha');
        assert.deepEqual(a.policy, goodPolicy);
        assert.equal(a.committedCounter, null);
        assert.equal(a.activeBoot, null);
        assert.equal((await env.broker.listInstances()).length, 2);
        const e = (await env.store.readAudit(0, 1))[0]!;
        assert.deepEqual(
          [e.kind, e.decision, e.instance, e.details.hostData],
          ['register', 'accept', a.id, toHex(a.hostData)],
        );
      });

      it('refuses a second registration of the same platform identity (audited)', async () => {
        const env = await setup();
        const id1 = identity();
        await env.broker.registerInstance({ ...id1, policy: goodPolicy });
        await expectRefusal(env, null, () => env.broker.registerInstance({ ...id1, policy: goodPolicy }), {
          reason: 'broker.instance_exists',
          code: ErrorCode.InvalidArgument,
          kind: 'register',
        });
      });

      it('refuses an empty or oversized identity field and a non-JSON policy', async () => {
        const env = await setup();
        await assert.rejects(env.broker.registerInstance({ ...identity(), zone: '', policy: {} }), {
          reason: 'broker.identity',
        });
        // Byte lengths, not characters: 256 bytes fit the 0.2.0 answer; 257 do not, nor 86 three-byte
        // characters (258 bytes), nor a lone surrogate, which would be sent as U+FFFD.
        const fits = await env.broker.registerInstance({
          ...identity(),
          project: 'x'.repeat(256),
          policy: {},
        });
        assert.equal(fits.project.length, 256);
        for (const project of ['x'.repeat(257), '\u20ac'.repeat(86), 'a\ud800b', 'tab\there']) {
          await assert.rejects(env.broker.registerInstance({ ...identity(), project, policy: {} }), {
            code: ErrorCode.InvalidArgument,
            reason: 'broker.identity',
          });
        }
        assert.equal(Buffer.byteLength('\u20ac'.repeat(85)), 255);
        await env.broker.registerInstance({ ...identity(), zone: '\u20ac'.repeat(85), policy: {} });
        await assert.rejects(env.broker.registerInstance({ ...identity(), policy: undefined as never }), {
          reason: 'broker.policy',
        });
        assert.equal((await env.broker.listInstances()).length, 2);
      });

      it('uses a replaced policy at the next appraisal (audited)', async () => {
        const env = await setup();
        const inst = await env.register();
        await env.broker.setInstancePolicy(inst.id, { measurement: 'ff'.repeat(48) });
        const e = await lastAudit(env);
        assert.deepEqual([e.kind, e.decision, e.instance], ['policy', 'accept', inst.id]);
        await assert.rejects(env.broker.release(await releaseRequest(env.broker, inst, null)), {
          reason: 'snp.measurement',
        });
      });

      it('a release is decided under the policy in force when it commits (a replacement asked for during its appraisal waits for it)', async () => {
        // The appraiser asks for a new policy while the release appraises the old one. The release must
        // commit before that replacement (its audit entry first): had it read the policy before locking
        // the instance, the replacement could commit in between and the release be recorded after a
        // policy it was never appraised against.
        let replaced: Promise<void> | undefined;
        let inst: InstanceView | undefined;
        const env = await setup({
          appraise: (evidence, policy) => {
            replaced ??= env.broker.setInstancePolicy(inst!.id, { measurement: 'ff'.repeat(48) });
            return testAppraiser(evidence, policy);
          },
        });
        inst = await env.register();
        const released = await env.broker.release(await releaseRequest(env.broker, inst, null));
        assert.equal(released.keyVersion, 1);
        await replaced;
        const [release, policy] = (await env.store.readAudit(0, 100)).slice(-2);
        assert.deepEqual(
          [release?.kind, release?.decision, policy?.kind, policy?.decision],
          ['release', 'accept', 'policy', 'accept'],
        );
        await assert.rejects(env.broker.release(await releaseRequest(env.broker, inst, null)), {
          reason: 'snp.measurement',
        });
      });
    });

    describe('release', () => {
      it('releases a 256-bit key at the first accepted boot and audits it', async () => {
        const env = await setup();
        const inst = await env.register();
        const r = await env.broker.release(await releaseRequest(env.broker, inst, null));
        assert.equal(r.key.length, 32);
        assert.equal(r.keyVersion, 1);
        assert.equal(r.committedCounter, null);
        assert.equal(r.commitToken.length, 32);
        assert.equal(r.leaseExpiresAt, env.clock.t + LEASE);
        assert.deepEqual(r.instance, {
          id: inst.id,
          project: inst.project,
          zone: inst.zone,
          instanceId: inst.instanceId,
          instanceName: inst.instanceName,
        });
        const e = await lastAudit(env);
        assert.equal(e.kind, 'release');
        assert.equal(e.decision, 'accept');
        assert.deepEqual(e.reasons, ['broker.released', 'broker.key_created']);
        assert.equal(e.details.bootId, r.bootId);
        assert.equal(e.evidenceDigest?.length, 64);
        const keys = await env.store.listKeys(inst.id);
        assert.equal(keys.length, 1);
        assert.notDeepEqual(keys[0]!.wrapped.subarray(13, 45), r.key, 'stored wrapped, not in clear');
        const stored = (await env.store.getInstance(inst.id))!;
        assert.equal(stored.activeBoot?.bootId, r.bootId);
        assert.notDeepEqual(stored.activeBoot?.tokenHash, r.commitToken, 'only the token hash is stored');
      });

      it('releases the same key at later boots and never replaces it', async () => {
        const env = await setup();
        const { inst, first } = await established(env);
        const r = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        assert.deepEqual(r.key, first.key);
        assert.equal(r.keyVersion, 1);
        assert.equal(r.committedCounter, 1);
        assert.deepEqual((await lastAudit(env)).reasons, ['broker.released']);
        assert.equal((await env.store.listKeys(inst.id)).length, 1);
      });

      it('keeps no secret in the audit log', async () => {
        const env = await setup();
        const inst = await env.register();
        const r = await env.broker.release(await releaseRequest(env.broker, inst, null));
        const text = JSON.stringify(await env.broker.readAudit());
        assert.equal(text.includes(toHex(r.key)), false);
        assert.equal(text.includes(toHex(r.commitToken)), false);
      });
    });

    describe('every refusal that names an instance is audited; none changes keys or state', () => {
      it('broker.challenge_unknown: a challenge that was never issued', async () => {
        const env = await setup();
        const { inst } = await established(env);
        const req = await releaseRequest(env.broker, inst, 1);
        const forged = new Uint8Array(randomBytes(32));
        const e = await expectRefusal(
          env,
          null,
          () =>
            env.broker.release({ ...req, challenge: forged, expectedReportData: reportDataFor(forged, 1) }),
          { reason: 'broker.challenge_unknown' },
        );
        assert.equal(e, undefined);
        assert.deepEqual((await snapshot(env, inst.id)).keys.length, 1);
      });

      it('broker.challenge_unknown: a challenge used a second time', async () => {
        const env = await setup();
        const { inst } = await established(env);
        const req = await releaseRequest(env.broker, inst, 1);
        const r = await env.broker.release(req);
        await env.broker.end(r.bootId, r.commitToken);
        // Refused before the report is looked at, so the entry names no instance.
        await expectRefusal(env, inst.id, () => env.broker.release(req), {
          reason: 'broker.challenge_unknown',
          auditedInstance: null,
        });
      });

      it('broker.challenge_expired', async () => {
        const env = await setup({ challengeTtlMs: 1_000 });
        const { inst } = await established(env);
        const req = await releaseRequest(env.broker, inst, 1);
        env.clock.advance(1_000);
        await expectRefusal(env, null, () => env.broker.release(req), { reason: 'broker.challenge_expired' });
        // Consumed even though expired: it cannot be retried.
        await assert.rejects(env.broker.release(req), { reason: 'broker.challenge_unknown' });
      });

      it('broker.report_data_mismatch', async () => {
        const env = await setup();
        const { inst } = await established(env);
        const req = await releaseRequest(env.broker, inst, 1);
        const other = reportDataFor(req.challenge, 1, 'another-guest-key');
        await expectRefusal(env, null, () => env.broker.release({ ...req, expectedReportData: other }), {
          reason: 'broker.report_data_mismatch',
        });
        assert.equal((await env.store.getInstance(inst.id))?.activeBoot, null);
      });

      it('broker.unknown_instance: HOST_DATA that was never issued', async () => {
        const env = await setup();
        const { inst } = await established(env);
        const req = await releaseRequest(env.broker, { hostData: new Uint8Array(randomBytes(32)) }, 1);
        await expectRefusal(env, null, () => env.broker.release(req), { reason: 'broker.unknown_instance' });
        assert.equal((await env.store.getInstance(inst.id))?.activeBoot, null);
      });

      it('policy rejection lists every failure', async () => {
        const env = await setup();
        const { inst } = await established(env);
        await env.broker.setInstancePolicy(inst.id, { ...goodPolicy, minGuestSvn: 5 });
        const req = await releaseRequest(env.broker, inst, 1, { measurement: new Uint8Array(48).fill(1) });
        await expectRefusal(env, inst.id, () => env.broker.release(req), {
          reason: 'snp.measurement',
          code: ErrorCode.PolicyRejected,
          reasons: ['snp.measurement', 'snp.guest_svn'],
        });
        await assert.rejects(
          env.broker.release(await releaseRequest(env.broker, inst, 1, { measurement: new Uint8Array(48) })),
          (e: unknown) => {
            assert.ok(e instanceof PolicyRejected);
            assert.deepEqual(
              e.failures.map((f) => f.code),
              ['snp.measurement', 'snp.guest_svn'],
            );
            return true;
          },
        );
      });

      it('evidence the verifier rejects (its reason is audited)', async () => {
        const env = await setup();
        const { inst } = await established(env);
        const req = await releaseRequest(env.broker, inst, 1);
        const truncated = req.report.subarray(0, 100);
        await expectRefusal(env, null, () => env.broker.release({ ...req, report: truncated }), {
          reason: 'snp.report.size',
          code: ErrorCode.Malformed,
        });
        assert.deepEqual((await snapshot(env, inst.id)).activeBoot, null);
      });

      it('broker.rollback: the committed counter stated for another file than the committed one (a fork)', async () => {
        const env = await setup();
        const { inst } = await established(env);
        // A file with counter 1 that the broker never accepted (e.g. written by a boot whose commit was
        // dropped): same counter, other digest.
        const forked = await releaseRequest(env.broker, inst, 1, { stateDigest: stateDigestFor(1, 'fork') });
        const entry = await expectRefusal(env, inst.id, () => env.broker.release(forked), {
          reason: 'broker.rollback',
        });
        assert.equal(entry?.details.statedDigest, toHex(stateDigestFor(1, 'fork')));
        // A stated counter always comes with its file's digest.
        await assert.rejects(
          env.broker.release(await releaseRequest(env.broker, inst, 1, { stateDigest: undefined })),
          { code: ErrorCode.InvalidArgument, reason: 'broker.state_digest' },
        );
        // The committed file itself still boots.
        const r = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        assert.equal(r.committedCounter, 1);
      });

      it('broker.identity_unencodable: an identity the 0.2.0 answer cannot carry is refused before any release', async () => {
        const env = await setup();
        // Registered before byte lengths were checked: written to the store directly.
        const hostData = new Uint8Array(randomBytes(32));
        const id = 'legacy-long-identity';
        await env.store.transaction((tx) =>
          tx.insertInstance({
            id,
            ...identity(),
            instanceName: '\u20ac'.repeat(255),
            hostData,
            policy: goodPolicy,
            createdAt: env.clock.t,
          }),
        );
        await expectRefusal(
          env,
          id,
          async () => env.broker.release(await releaseRequest(env.broker, { hostData }, null)),
          {
            reason: 'broker.identity_unencodable',
          },
        );
        assert.equal((await env.store.listKeys(id)).length, 0, 'no key created');
        const releases = (await env.store.readAudit(0, 100)).filter((x) => x.kind === 'release');
        assert.deepEqual(
          releases.map((x) => x.decision),
          ['refuse'],
          'never audited as released',
        );
      });

      it('broker.rollback: a counter older than the committed one', async () => {
        const env = await setup();
        const { inst } = await established(env);
        const r = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        await env.broker.commit(r.bootId, r.commitToken, 2, stateDigestFor(2));
        await env.broker.end(r.bootId, r.commitToken);
        await expectRefusal(
          env,
          inst.id,
          async () => env.broker.release(await releaseRequest(env.broker, inst, 1)),
          {
            reason: 'broker.rollback',
          },
        );
      });

      it('broker.rollback: no state at all once a counter is committed', async () => {
        const env = await setup();
        const { inst } = await established(env);
        await expectRefusal(
          env,
          inst.id,
          async () => env.broker.release(await releaseRequest(env.broker, inst, null)),
          { reason: 'broker.rollback' },
        );
      });

      it('broker.state_ahead: a counter the broker never committed', async () => {
        const env = await setup();
        const { inst } = await established(env);
        await expectRefusal(
          env,
          inst.id,
          async () => env.broker.release(await releaseRequest(env.broker, inst, 2)),
          {
            reason: 'broker.state_ahead',
          },
        );
      });

      it('broker.state_ahead: state claimed before anything was committed', async () => {
        const env = await setup();
        const inst = await env.register();
        await expectRefusal(
          env,
          inst.id,
          async () => env.broker.release(await releaseRequest(env.broker, inst, 1)),
          {
            reason: 'broker.state_ahead',
          },
        );
        assert.deepEqual(await env.store.listKeys(inst.id), [], 'no key created by a refused first boot');
      });

      it('broker.clone: under `refuse`, a second launch while the first holds its lease', async () => {
        const env = await setup();
        const { inst } = await established(env);
        await env.broker.setNewLaunch(inst.id, 'refuse');
        const r = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        env.clock.advance(LEASE - 1);
        await expectRefusal(
          env,
          inst.id,
          async () => env.broker.release(await releaseRequest(env.broker, inst, 1)),
          {
            reason: 'broker.clone',
          },
        );
        assert.equal((await env.store.getInstance(inst.id))?.activeBoot?.bootId, r.bootId);
      });

      it('broker.key_version_unknown', async () => {
        const env = await setup();
        const { inst } = await established(env);
        await expectRefusal(
          env,
          inst.id,
          async () => env.broker.release(await releaseRequest(env.broker, inst, 1, { stateKeyVersion: 7 })),
          { reason: 'broker.key_version_unknown' },
        );
      });

      it('malformed requests (InvalidArgument / NotSupported)', async () => {
        const env = await setup();
        const { inst } = await established(env);
        const req = await releaseRequest(env.broker, inst, 1);
        await expectRefusal(
          env,
          null,
          () => env.broker.release({ ...req, expectedReportData: req.expectedReportData.subarray(0, 32) }),
          { reason: 'broker.expected_report_data', code: ErrorCode.InvalidArgument },
        );
        await expectRefusal(env, null, () => env.broker.release({ ...req, stateCounter: -1 }), {
          reason: 'broker.state_counter',
          code: ErrorCode.InvalidArgument,
        });
        await expectRefusal(
          env,
          null,
          () => env.broker.release({ ...req, tee: 'sgx' } as unknown as ReleaseRequest),
          {
            reason: 'broker.tee',
            code: ErrorCode.NotSupported,
          },
        );
        // None of these consumed the challenge.
        const r = await env.broker.release(req);
        assert.equal(r.keyVersion, 1);
      });
    });

    describe('refusals that name no instance or boot', () => {
      it('are not audited, are counted through onUnattributedRefusal, and are marked for the rate limiter', async () => {
        const seen: string[] = [];
        const env = await setup({
          onUnattributedRefusal: (kind, e) => seen.push(`${kind}:${(e as { reason: string }).reason}`),
        });
        const { inst } = await established(env);
        const head = await env.store.auditHead();
        const unknown = '00000000-0000-4000-8000-000000000000';
        const token = new Uint8Array(32);
        const errors: unknown[] = [];
        for (let i = 0; i < 100; i++) {
          for (const act of [
            () => env.broker.heartbeat(unknown, token),
            () => env.broker.end(unknown, token),
            () => env.broker.commit(unknown, token, 2, stateDigestFor(2)),
          ]) {
            await act().then(
              () => assert.fail('accepted'),
              (e: unknown) => errors.push(e),
            );
          }
        }
        const req = await releaseRequest(env.broker, inst, 1);
        const forged = new Uint8Array(randomBytes(32));
        await env.broker
          .release({ ...req, challenge: forged, expectedReportData: reportDataFor(forged, 1) })
          .then(
            () => assert.fail('accepted'),
            (e: unknown) => errors.push(e),
          );
        assert.equal((await env.store.auditHead()).seq, head.seq, '301 refusals, no audit entry');
        assert.equal(seen.length, 301);
        assert.deepEqual(
          new Set(seen),
          new Set([
            'heartbeat:broker.boot_unknown',
            'end:broker.boot_unknown',
            'commit:broker.boot_unknown',
            'release:broker.challenge_unknown',
          ]),
        );
        assert.ok(errors.every((e) => env.broker.isUnattributedRefusal(e)));
        // A refusal that names a real boot is audited, and is not unattributed.
        const r = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        const wrongToken = await env.broker.heartbeat(r.bootId, new Uint8Array(32)).catch((e: unknown) => e);
        assert.equal((wrongToken as { reason: string }).reason, 'broker.commit_token');
        assert.equal(env.broker.isUnattributedRefusal(wrongToken), false);
        assert.deepEqual(
          [(await lastAudit(env)).kind, (await lastAudit(env)).instance],
          ['heartbeat', inst.id],
        );
      });
    });

    describe('boot lifecycle: commit, heartbeat, end, reset', () => {
      it('commits counters that move forward, from the active boot, with the digest of the file', async () => {
        const env = await setup();
        const inst = await env.register();
        const r = await env.broker.release(await releaseRequest(env.broker, inst, null));
        assert.equal(
          (await env.broker.commit(r.bootId, r.commitToken, 1, stateDigestFor(1))).committedCounter,
          1,
        );
        assert.equal(
          (await env.broker.commit(r.bootId, r.commitToken, 2, stateDigestFor(2))).committedCounter,
          2,
        );
        assert.deepEqual((await lastAudit(env)).reasons, ['broker.committed']);
        for (const n of [2, 1]) {
          await expectRefusal(
            env,
            inst.id,
            () => env.broker.commit(r.bootId, r.commitToken, n, stateDigestFor(n, 'again')),
            { reason: 'broker.counter_mismatch', kind: 'commit' },
          );
        }
        assert.deepEqual((await env.store.getInstance(inst.id))?.committedDigest, stateDigestFor(2));
        // A skip is allowed (a guest that recovered from state_ahead skips the abandoned counter).
        assert.equal(
          (await env.broker.commit(r.bootId, r.commitToken, 4, stateDigestFor(4))).committedCounter,
          4,
        );
        const st = await env.store.getInstance(inst.id);
        assert.deepEqual([st?.committedCounter, st?.committedDigest], [4, stateDigestFor(4)]);
        await assert.rejects(env.broker.commit(r.bootId, r.commitToken, 5, new Uint8Array(31)), {
          code: ErrorCode.InvalidArgument,
          reason: 'broker.state_digest',
        });
      });

      it('broker.commit_token: a wrong token cannot commit, heartbeat or end', async () => {
        const env = await setup();
        const inst = await env.register();
        const r = await env.broker.release(await releaseRequest(env.broker, inst, null));
        const wrong = new Uint8Array(randomBytes(32));
        await expectRefusal(env, inst.id, () => env.broker.commit(r.bootId, wrong, 1, stateDigestFor(1)), {
          reason: 'broker.commit_token',
          kind: 'commit',
        });
        await expectRefusal(env, inst.id, () => env.broker.heartbeat(r.bootId, wrong), {
          reason: 'broker.commit_token',
          kind: 'heartbeat',
        });
        await expectRefusal(env, inst.id, () => env.broker.end(r.bootId, wrong), {
          reason: 'broker.commit_token',
          kind: 'end',
        });
      });

      it('broker.boot_unknown: a boot id that is not active', async () => {
        const env = await setup();
        const { inst } = await established(env);
        await expectRefusal(
          env,
          null,
          () =>
            env.broker.commit(
              '00000000-0000-4000-8000-000000000000',
              new Uint8Array(32),
              2,
              stateDigestFor(2),
            ),
          { reason: 'broker.boot_unknown', kind: 'commit' },
        );
        assert.equal((await env.store.getInstance(inst.id))?.committedCounter, 1);
      });

      it('a boot that ended can no longer commit; the next boot starts at once', async () => {
        const env = await setup();
        const { inst, first } = await established(env);
        await expectRefusal(
          env,
          null,
          () => env.broker.commit(first.bootId, first.commitToken, 2, stateDigestFor(2)),
          {
            reason: 'broker.boot_unknown',
            kind: 'commit',
          },
        );
        const r = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        assert.equal(r.committedCounter, 1);
      });

      it('heartbeats keep the lease; once it lapses another boot takes over and the old one is superseded', async () => {
        const env = await setup();
        const { inst } = await established(env);
        await env.broker.setNewLaunch(inst.id, 'refuse');
        const a = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        env.clock.advance(LEASE - 10);
        const hb = await env.broker.heartbeat(a.bootId, a.commitToken);
        assert.equal(hb.leaseExpiresAt, env.clock.t + LEASE);
        env.clock.advance(LEASE - 10);
        await assert.rejects(env.broker.release(await releaseRequest(env.broker, inst, 1)), {
          reason: 'broker.clone',
        });
        env.clock.advance(10);
        const b = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        assert.deepEqual((await lastAudit(env)).reasons, ['broker.released', 'broker.expired_boot_replaced']);
        assert.deepEqual(b.key, a.key);
        // The superseded boot id no longer leads to any instance.
        await expectRefusal(env, inst.id, () => env.broker.heartbeat(a.bootId, a.commitToken), {
          reason: 'broker.boot_unknown',
          kind: 'heartbeat',
          auditedInstance: null,
        });
        await expectRefusal(
          env,
          inst.id,
          () => env.broker.commit(a.bootId, a.commitToken, 2, stateDigestFor(2)),
          {
            reason: 'broker.boot_unknown',
            kind: 'commit',
            auditedInstance: null,
          },
        );
        assert.equal(
          (await env.broker.commit(b.bootId, b.commitToken, 2, stateDigestFor(2))).committedCounter,
          2,
        );
      });

      it('a boot whose lease lapsed but was not taken over may still heartbeat and commit', async () => {
        const env = await setup();
        const inst = await env.register();
        const r = await env.broker.release(await releaseRequest(env.broker, inst, null));
        env.clock.advance(LEASE * 3);
        await env.broker.heartbeat(r.bootId, r.commitToken);
        assert.equal(
          (await env.broker.commit(r.bootId, r.commitToken, 1, stateDigestFor(1))).committedCounter,
          1,
        );
      });

      it('the control plane can reset a boot it knows has stopped (audited)', async () => {
        const env = await setup();
        const { inst } = await established(env);
        const a = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        assert.deepEqual(await env.broker.resetBoot(inst.id, 'vm stopped'), { hadActiveBoot: true });
        const e = await lastAudit(env);
        assert.deepEqual(
          [e.kind, e.decision, e.details.bootId, e.details.note],
          ['reset', 'accept', a.bootId, 'vm stopped'],
        );
        const b = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        assert.notEqual(b.bootId, a.bootId);
        await assert.rejects(env.broker.heartbeat(a.bootId, a.commitToken), {
          reason: 'broker.boot_unknown',
        });
        await assert.rejects(env.broker.resetBoot('no-such-instance'), {
          reason: 'broker.instance_not_found',
        });
      });
    });

    describe('sealing keys', () => {
      it('rotation makes a new version and keeps the old one', async () => {
        const env = await setup();
        const { inst, first } = await established(env);
        const before = await env.store.listKeys(inst.id);
        assert.deepEqual(await env.broker.rotateKey(inst.id), { keyVersion: 2 });
        const after = await env.store.listKeys(inst.id);
        assert.deepEqual(
          after.map((k) => k.version),
          [1, 2],
        );
        assert.deepEqual(after[0], before[0], 'version 1 untouched');
        assert.deepEqual((await lastAudit(env)).details.keyVersion, 2);
        assert.deepEqual(
          (await env.broker.keyVersions(inst.id)).map((k) => k.version),
          [1, 2],
        );

        const r = await env.broker.release(await releaseRequest(env.broker, inst, 1, { stateKeyVersion: 1 }));
        assert.equal(r.keyVersion, 2);
        assert.notDeepEqual(r.key, first.key);
        assert.deepEqual(r.stateKey, { key: first.key, keyVersion: 1 });
        await env.broker.end(r.bootId, r.commitToken);
        const r2 = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        assert.deepEqual(r2.key, r.key);
        assert.equal(r2.stateKey, undefined);
      });

      it('a broker with another KEK refuses with a typed error and returns no key', async () => {
        const env = await setup();
        const { inst } = await established(env);
        const other = new Broker({
          store: env.store,
          kek: testKek(),
          verifyEvidence: unverifiedTestVerifier,
          appraise: testAppraiser,
          now: env.clock.now,
        });
        const req = await releaseRequest(other, inst, 1);
        await expectRefusal(env, inst.id, () => other.release(req), {
          reason: 'broker.kek.mismatch',
          code: ErrorCode.InvalidArgument,
        });
      });

      it('a wrapped key moved to another instance does not decrypt (AAD binds instance and version)', async () => {
        const env = await setup();
        const a = await established(env);
        const b = await established(env);
        await h.tamper(
          env.location,
          `UPDATE sealing_keys SET wrapped = (SELECT wrapped FROM sealing_keys WHERE instance_id = '${a.inst.id}' AND version = 1) WHERE instance_id = '${b.inst.id}'`,
        );
        await expectRefusal(
          env,
          b.inst.id,
          async () => env.broker.release(await releaseRequest(env.broker, b.inst, 1)),
          { reason: 'broker.kek.unwrap_failed', code: ErrorCode.InvalidArgument },
        );
      });
    });

    describe('leases: ordinary use never trips them (docs/broker.md "Leases")', () => {
      const launch = () => new Uint8Array(randomBytes(32));

      it('a 0.1.0 guest (no heartbeat, no end) reboots at once: the new launch takes over (default)', async () => {
        const env = await setup();
        const inst = await env.register();
        assert.equal(inst.newLaunch, 'takeover');
        const a = await env.broker.release(await releaseRequest(env.broker, inst, null));
        for (let i = 0; i < 3; i++) {
          env.clock.advance(1_000);
          const b = await env.broker.release(await releaseRequest(env.broker, inst, null));
          assert.deepEqual(b.key, a.key);
          const entry = await lastAudit(env);
          assert.deepEqual(entry.reasons, ['broker.released', 'broker.boot_superseded']);
          assert.equal(typeof entry.details.previousBootId, 'string');
        }
        // The superseded boot's token no longer works: a 0.2.0 guest learns it at its next heartbeat.
        await assert.rejects(env.broker.heartbeat(a.bootId, a.commitToken), {
          reason: 'broker.boot_unknown',
        });
      });

      it('the same launch attesting again is the same boot, even under `refuse` (token refresh, retry)', async () => {
        const env = await setup();
        const inst = await env.register(goodPolicy, 'refuse');
        const l = launch();
        const a = await env.broker.release(await releaseRequest(env.broker, inst, null, { launch: l }));
        env.clock.advance(10_000);
        const b = await env.broker.release(
          await releaseRequest(env.broker, inst, null, { launch: Uint8Array.from(l) }),
        );
        assert.equal(b.bootId, a.bootId);
        assert.equal(b.leaseExpiresAt, env.clock.t + LEASE);
        assert.deepEqual((await lastAudit(env)).reasons, ['broker.released', 'broker.same_launch']);
        const view = await env.broker.getInstance(inst.id);
        assert.equal(view?.activeBoot?.launchId, toHex(l));
        // The newest answer's token is the one that works: the launch asked again, it holds the new one.
        await assert.rejects(env.broker.heartbeat(a.bootId, a.commitToken), {
          reason: 'broker.commit_token',
        });
        await env.broker.heartbeat(b.bootId, b.commitToken);
      });

      it("a guest that refused the broker's answer leaves no lease that blocks its next boot", async () => {
        // The guest got a release it could not use (a bad signature, say) and never commits or ends.
        for (const policy of ['takeover', 'refuse'] as const) {
          const env = await setup();
          const inst = await env.register(goodPolicy, policy);
          const l = launch();
          await env.broker.release(await releaseRequest(env.broker, inst, null, { launch: l }));
          // The same launch retrying is the same boot under every policy.
          await env.broker.release(await releaseRequest(env.broker, inst, null, { launch: l }));
          if (policy === 'takeover') {
            // The VM restarted (a new launch): it boots at once.
            await env.broker.release(await releaseRequest(env.broker, inst, null));
          } else {
            // Under `refuse` the VMM ends the stopped VM's boot first (the host path), then it boots at once.
            await assert.rejects(env.broker.release(await releaseRequest(env.broker, inst, null)), {
              reason: 'broker.clone',
            });
            assert.deepEqual(await env.broker.resetBoot(inst.id, 'vm stopped'), { hadActiveBoot: true });
            await env.broker.release(await releaseRequest(env.broker, inst, null));
          }
        }
      });

      it('`allow`: a second live launch gets its key but no boot; the live boot is untouched', async () => {
        const env = await setup();
        const inst = await env.register(goodPolicy, 'allow');
        const a = await env.broker.release(await releaseRequest(env.broker, inst, null));
        const b = await env.broker.release(await releaseRequest(env.broker, inst, null));
        assert.deepEqual(b.key, a.key);
        assert.notEqual(b.bootId, a.bootId);
        assert.equal(b.leaseExpiresAt, env.clock.t);
        assert.deepEqual((await lastAudit(env)).reasons, ['broker.released', 'broker.concurrent_launch']);
        assert.equal((await env.store.getInstance(inst.id))?.activeBoot?.bootId, a.bootId);
        await assert.rejects(env.broker.heartbeat(b.bootId, b.commitToken), {
          reason: 'broker.boot_unknown',
        });
        await env.broker.heartbeat(a.bootId, a.commitToken);
      });

      it('a clone refusal audits the live boot it ran into; a rollback the committed counter', async () => {
        const env = await setup();
        const { inst } = await established(env);
        await env.broker.setNewLaunch(inst.id, 'refuse');
        const a = await env.broker.release(await releaseRequest(env.broker, inst, 1));
        const clone = await expectRefusal(
          env,
          inst.id,
          async () => env.broker.release(await releaseRequest(env.broker, inst, 1)),
          { reason: 'broker.clone' },
        );
        assert.equal(clone?.details.activeBootId, a.bootId);
        assert.equal(clone?.details.activeLeaseExpiresAt, a.leaseExpiresAt);
        assert.equal(clone?.details.newLaunch, 'refuse');
        assert.equal(typeof clone?.details.launchId, 'string');
        const rollback = await expectRefusal(
          env,
          inst.id,
          async () => env.broker.release(await releaseRequest(env.broker, inst, null)),
          { reason: 'broker.rollback' },
        );
        assert.equal(rollback?.details.committedCounter, 1);
        assert.equal(rollback?.details.statedCounter, null);
      });

      it('the new-launch policy is validated, stored and audited', async () => {
        const env = await setup();
        await assert.rejects(
          env.broker.registerInstance({ ...identity(), policy: goodPolicy, newLaunch: 'sometimes' as never }),
          { code: ErrorCode.InvalidArgument, reason: 'broker.new_launch' },
        );
        const inst = await env.register();
        await assert.rejects(env.broker.setNewLaunch(inst.id, 'never' as never), {
          reason: 'broker.new_launch',
        });
        await assert.rejects(env.broker.setNewLaunch('no-such-instance', 'refuse'), {
          reason: 'broker.instance_not_found',
        });
        await env.broker.setNewLaunch(inst.id, 'allow');
        assert.equal((await env.broker.getInstance(inst.id))?.newLaunch, 'allow');
        const entry = await lastAudit(env);
        assert.equal(entry.kind, 'new_launch');
        assert.deepEqual(entry.reasons, ['broker.new_launch_set']);
        assert.equal(entry.details.newLaunch, 'allow');
      });

      it('50 concurrent launches of one instance under `takeover`: all released, one boot active, one key', async () => {
        const env = await setup();
        const inst = await env.register();
        const reqs = await Promise.all(
          Array.from({ length: 50 }, () => releaseRequest(env.broker, inst, null)),
        );
        const results = await Promise.all(reqs.map((r) => env.broker.release(r)));
        assert.equal((await env.store.listKeys(inst.id)).length, 1);
        const active = (await env.store.getInstance(inst.id))?.activeBoot?.bootId;
        assert.equal(results.filter((r) => r.bootId === active).length, 1);
        assert.equal((await env.broker.verifyAuditChain()).ok, true);
      });
    });

    describe('concurrency', () => {
      it('50 concurrent first boots of one instance under `refuse`: one boot wins, the rest are clones, one key', async () => {
        const env = await setup();
        const inst = await env.register(goodPolicy, 'refuse');
        const reqs = await Promise.all(
          Array.from({ length: 50 }, () => releaseRequest(env.broker, inst, null)),
        );
        const results = await Promise.allSettled(reqs.map((r) => env.broker.release(r)));
        const ok = results.filter((r) => r.status === 'fulfilled');
        const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
        assert.equal(ok.length, 1);
        assert.equal(refused.length, 49);
        for (const r of refused) assert.equal((r.reason as BrokerRefused).reason, 'broker.clone');
        assert.equal((await env.store.listKeys(inst.id)).length, 1);
        assert.equal((await env.broker.verifyAuditChain()).ok, true);
      });

      it('50 concurrent boots of one instance, each after the previous lease lapsed: all get the same single key', async () => {
        // A clock that ticks on every read and a 1 ms lease: each boot finds the previous one expired, so
        // all 50 succeed, serialized by the instance lock, and all but the first read the key the first made.
        const kek = testKek();
        const env = await setup({ kek, leaseMs: 1 });
        let t = 1_750_000_000_000;
        const ticking = new Broker({
          store: env.store,
          kek,
          verifyEvidence: unverifiedTestVerifier,
          appraise: testAppraiser,
          now: () => t++,
          leaseMs: 1,
        });
        const inst = await env.register();
        const reqs = await Promise.all(Array.from({ length: 50 }, () => releaseRequest(ticking, inst, null)));
        const results: ReleaseResult[] = await Promise.all(reqs.map((r) => ticking.release(r)));
        assert.equal(results.length, 50);
        for (const r of results) assert.deepEqual(r.key, results[0]!.key);
        assert.equal(new Set(results.map((r) => r.bootId)).size, 50);
        assert.equal((await env.store.listKeys(inst.id)).length, 1);
        const releases = (await env.broker.readAudit(0, 1000)).filter((e) => e.kind === 'release');
        assert.equal(releases.filter((e) => e.reasons.includes('broker.key_created')).length, 1);
      });

      it('two broker processes racing to boot the same 20 instances: one boot and one key per instance', async (t) => {
        const kekDir = mkdtempSync(join(tmpdir(), 'vouchsafe-kek-'));
        t.after(() => rmSync(kekDir, { recursive: true, force: true }));
        const kekPath = join(kekDir, 'kek');
        // Real time here: the child brokers use Date.now.
        const env = await setup({ kek: openFileKek(kekPath), now: Date.now });
        const insts: InstanceView[] = [];
        for (let i = 0; i < 20; i++) insts.push(await env.register(goodPolicy, 'refuse'));
        const wire = async () =>
          Promise.all(
            insts.map(async (inst) => {
              const r = await releaseRequest(env.broker, inst, null);
              return {
                report: toHex(r.report),
                challenge: toHex(r.challenge),
                expectedReportData: toHex(r.expectedReportData),
              };
            }),
          );
        const [a, b] = await raceChildren<Outcome[]>(
          RELEASE_CHILD,
          [env.location, kekPath],
          [await wire(), await wire()],
        );
        for (let i = 0; i < insts.length; i++) {
          const pair = [a![i]!, b![i]!];
          const won = pair.filter((o): o is { key: string } => 'key' in o);
          assert.equal(won.length, 1, `instance ${i}: exactly one process boots it`);
          assert.deepEqual(
            pair.filter((o) => 'reason' in o),
            [{ reason: 'broker.clone' }],
          );
          const keys = await env.store.listKeys(insts[i]!.id);
          assert.equal(keys.length, 1);
          // The key the winner got is the one stored (and this process's broker, same KEK, agrees).
          await env.broker.resetBoot(insts[i]!.id);
          const again = await env.broker.release(await releaseRequest(env.broker, insts[i]!, null));
          assert.equal(toHex(again.key), won[0]!.key);
        }
        const v = await env.broker.verifyAuditChain();
        assert.equal(v.ok, true);
      });

      it('50 instances booting concurrently each get their own key', async () => {
        const env = await setup();
        const insts: InstanceView[] = [];
        for (let i = 0; i < 50; i++) insts.push(await env.register());
        const reqs = await Promise.all(insts.map((inst) => releaseRequest(env.broker, inst, null)));
        const results = await Promise.all(reqs.map((r) => env.broker.release(r)));
        assert.equal(new Set(results.map((r) => toHex(r.key))).size, 50);
        assert.deepEqual(
          results.map((r) => r.instance.id),
          insts.map((i) => i.id),
        );
        const v = await env.broker.verifyAuditChain();
        assert.deepEqual([v.ok, v.entries], [true, 100]);
      });
    });

    describe('audit log', () => {
      it('chains every decision and detects a modified release entry', async () => {
        const env = await setup();
        const { inst } = await established(env);
        await assert.rejects(env.broker.release(await releaseRequest(env.broker, inst, 0)));
        const entries = await env.broker.readAudit();
        assert.deepEqual(
          entries.map((e) => `${e.kind}:${e.decision}`),
          ['register:accept', 'release:accept', 'commit:accept', 'end:accept', 'release:refuse'],
        );
        assert.equal((await env.broker.verifyAuditChain()).ok, true);
        await h.tamper(env.location, `UPDATE audit_log SET decision = 'accept' WHERE seq = 5`);
        assert.deepEqual(await env.broker.verifyAuditChain(), {
          ok: false,
          entries: 4,
          seq: 5,
          problem: 'audit.hash',
        });
      });
    });
  });
}
