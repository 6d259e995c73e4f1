/**
 * NativeService's key agreement for the answer's JWE: started once the evidence is bound to the request
 * (Broker.release `onBound`), so it runs while the broker decides; never for a forged request; its Z
 * zeroized whether or not the release went through.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { computeReportData } from '../../src/formats/aproxy/report-data.js';
import { agreementOnThisThread, type EcdhAgreement } from '../../src/native/ecdh-threads.js';
import { unwrapSecret } from '../../src/native/jwe-ecdh-es.js';
import { p521PointOf } from '../../src/native/p521.js';
import { NativeService, REPORT_DATA_PARAMS } from '../../src/native/service.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store, StoreTx } from '../../src/store/types.js';
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

async function setup(policy: unknown = goodPolicy) {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-native-service-'));
  dirs.push(dir);
  const inner = await openSqliteStore({ dataDir: dir });
  const seen = { agreements: 0, decisionsWaited: 0 };
  let attesting = false;
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
  const signer = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const svc = new NativeService(broker, signer, NO_COUNTERS, agree);
  const guest = generateKeyPairSync('ec', { namedCurve: 'P-521' });
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
  return { inner, seen, zs, attest, guestKey: guest.privateKey as KeyObject };
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
