/**
 * NativeService's key agreement for the answer's JWE: started once the evidence is bound to the request
 * (Broker.release `onBound`), so it runs while the broker decides; never for a forged request; its Z
 * zeroized whether or not the release went through. And the commit's acknowledgement: signed while the
 * broker decides, sent only with a committed decision.
 */
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { computeReportData } from '../../src/formats/aproxy/report-data.js';
import { parseSecretPayload } from '../../src/formats/aproxy/secret-payload.js';
import { type EcSigner, keyObjectSigner } from '../../src/keys/signer.js';
import { verifyCommit } from '../../src/native/broker-signature.js';
import { agreementOnThisThread, type EcdhAgreement } from '../../src/native/ecdh-threads.js';
import { unwrapSecret } from '../../src/native/jwe-ecdh-es.js';
import { p521PointOf } from '../../src/native/p521.js';
import { NativeService, REPORT_DATA_PARAMS } from '../../src/native/service.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store, StoreTx } from '../../src/store/types.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { NO_COUNTERS } from '../../src/util/metrics.js';
import { goodPolicy, identity, makeBroker, makeReport } from '../broker/fixtures.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Bounded by a count of turns, there only to turn a hang into a failure. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; !done(); i++) {
    assert.ok(i < 100_000, `never happened: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

async function setup(
  policy: unknown = goodPolicy,
  signer: KeyObject | EcSigner = newKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
) {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-native-service-'));
  dirs.push(dir);
  const inner = await openSqliteStore({ dataDir: dir });
  const seen = { agreements: 0, decisionsWaited: 0 };
  let attesting = false;
  /** Called inside every transaction, after its body and before its commit (tests set it). */
  const hooks: { beforeCommit?: () => Promise<void> } = {};
  // A decision made inside its transaction does not commit until the answer's agreement has started: it
  // must have started by then (it began only after the commit, before onBound).
  const store: Store = Object.assign(Object.create(inner) as Store, {
    transaction: <T>(fn: (tx: StoreTx) => Promise<T>) =>
      inner.transaction(async (tx) => {
        const r = await fn(tx);
        if (attesting) {
          await until(() => seen.agreements > 0, 'the agreement started before the decision committed');
          seen.decisionsWaited++;
        }
        await hooks.beforeCommit?.();
        return r;
      }),
  });
  const zs: Uint8Array[] = [];
  const here = agreementOnThisThread();
  const agree: EcdhAgreement = async (recipient) => {
    seen.agreements++;
    const a = await here(recipient);
    zs.push(a.z);
    return a;
  };
  const { broker } = makeBroker(store);
  const inst = await broker.registerInstance({ ...identity(), policy: policy as never });
  const svc = new NativeService(broker, signer, NO_COUNTERS, agree);
  const guest = newKeyPairSync('ec', { namedCurve: 'P-521' });
  /** A 0.2.0 attest for `inst`, its report data bound to the challenge and the guest key (or `reportData`). */
  const attest = async (reportData?: Uint8Array) => {
    const { challenge } = await svc.challenge('snp', '0.2.0');
    const key = p521PointOf(guest.publicKey);
    const bound = computeReportData(REPORT_DATA_PARAMS['0.2.0'], {
      challenge,
      key,
      stateCounter: null,
      stateDigest: null,
    });
    const report = makeReport({ hostData: inst.hostData, reportData: reportData ?? bound });
    attesting = true;
    return svc.attest({
      tee: 'snp',
      version: '0.2.0',
      report,
      challenge,
      key,
      stateCounter: null,
      stateDigest: null,
    });
  };
  return { inner, seen, zs, attest, svc, hooks, guestKey: guest.privateKey as KeyObject };
}

describe('native/service: the answer key agreement', () => {
  it('starts before the decision commits, and the guest unwraps the answer sealed with it', async () => {
    const env = await setup();
    try {
      const out = await env.attest();
      assert.deepEqual(env.seen, { agreements: 1, decisionsWaited: 1 });
      assert.equal(unwrapSecret(env.guestKey, out.sealed).length > 32, true);
      assert.deepEqual(env.zs, [new Uint8Array(66)], 'Z is zeroized once the answer is sealed');
    } finally {
      await env.inner.close();
    }
  });

  it('a bound request the broker refuses (policy) had its agreement started; its Z is zeroized', async () => {
    const env = await setup({ measurement: 'ff'.repeat(48) });
    try {
      await assert.rejects(env.attest(), { reason: 'snp.measurement' });
      // The refused release's agreement may still be running when the refusal returns.
      await until(() => env.zs.length === 1, 'the agreement finished');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(env.zs, [new Uint8Array(66)]);
    } finally {
      await env.inner.close();
    }
  });

  it('a forged request (report data not bound to the challenge and key) costs no agreement', async () => {
    const env = await setup();
    try {
      await assert.rejects(env.attest(new Uint8Array(64).fill(1)), { reason: 'broker.report_data_mismatch' });
      assert.deepEqual(env.seen, { agreements: 0, decisionsWaited: 0 });
      assert.deepEqual(env.zs, []);
    } finally {
      await env.inner.close();
    }
  });
});

describe('native/service: the commit acknowledgement', () => {
  /** A signer that counts the signatures started and can be made to fail. */
  function countingSigner(fail = false) {
    const inner = keyObjectSigner(newKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);
    const started = { n: 0 };
    const signer: EcSigner = {
      ...inner,
      signAsync: async (hash, data) => {
        started.n++;
        if (fail) throw new Error('signer failed');
        return inner.signAsync!(hash, data);
      },
    };
    return { signer, started, publicKey: inner.publicKey };
  }

  /** A boot started through the service, its token read from the answer as the guest reads it. */
  async function boot(env: Awaited<ReturnType<typeof setup>>) {
    const out = await env.attest();
    const payload = parseSecretPayload(unwrapSecret(env.guestKey, out.sealed));
    return { bootId: out.bootId, commitToken: payload.commitToken! };
  }

  it('is signed while the broker decides (before its commit), and verifies over what the guest asked', async () => {
    const { signer, started, publicKey } = countingSigner();
    const env = await setup(goodPolicy, signer);
    try {
      const { bootId, commitToken } = await boot(env);
      const before = started.n; // the attest's answer was signed
      let startedBeforeCommit: boolean | undefined;
      env.hooks.beforeCommit = async () => {
        startedBeforeCommit = started.n > before;
      };
      const challenge = new Uint8Array(32).fill(7);
      const digest = new Uint8Array(32).fill(9);
      const r = await env.svc.commit(bootId, commitToken, 1n, digest, challenge);
      assert.equal(startedBeforeCommit, true);
      assert.equal(r.committedCounter, 1);
      verifyCommit(publicKey, { challenge, bootId, counter: 1n, stateDigest: digest }, r.signature);
    } finally {
      await env.inner.close();
    }
  });

  it("a refused commit reports the broker's refusal, even when the signature made meanwhile failed too", async () => {
    const { signer, started } = countingSigner(true);
    const env = await setup(goodPolicy, signer);
    try {
      const before = started.n;
      await assert.rejects(
        env.svc.commit('b'.repeat(32), new Uint8Array(32), 1n, new Uint8Array(32), new Uint8Array(32)),
        { reason: 'broker.boot_unknown' },
      );
      assert.equal(started.n, before + 1, 'the signature was started, and its failure stayed unseen');
      await new Promise((r) => setImmediate(r)); // an unhandled rejection would fail the test run here
    } finally {
      await env.inner.close();
    }
  });
});
