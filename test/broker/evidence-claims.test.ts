/**
 * The broker consumes evidence only through the TEE-independent claims (src/evidence/types.ts): the report
 * data for the binding, the identity-bearing field to find the instance, the TEE name; and it hands the
 * claims its decision rested on back with the release. SQLite only: none of this depends on the engine.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { VerifiedEvidence, VerifyEvidence } from '../../src/broker/types.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { sqliteHarness } from '../store/harnesses.js';
import { goodPolicy, identity, makeBroker, releaseRequest } from './fixtures.js';
import { unverifiedTestVerifier } from './unverified-test-verifier.js';

const h = sqliteHarness('broker-claims');
const opened: Store[] = [];
after(async () => {
  for (const s of opened) await s.close().catch(() => {});
  await h.teardown?.();
});

/** A broker whose verifier is the test verifier with its claims changed by `edit`. */
async function setup(edit: (v: VerifiedEvidence) => VerifiedEvidence = (v) => v) {
  const store = await openStore(await h.fresh());
  opened.push(store);
  let seen: VerifiedEvidence | undefined;
  const verifyEvidence: VerifyEvidence = async (tee, report, table) => {
    seen = edit(await unverifiedTestVerifier(tee, report, table));
    return seen;
  };
  let appraised: VerifiedEvidence | undefined;
  const { broker } = makeBroker(store, {
    verifyEvidence,
    appraise: (evidence) => {
      appraised = evidence;
      return [];
    },
  });
  const inst = await broker.registerInstance({ ...identity(), policy: goodPolicy });
  return { broker, inst, store, seen: () => seen, appraised: () => appraised };
}

async function rejectsReason(p: Promise<unknown>, code: string, reason: string) {
  await assert.rejects(p, (e: { code?: string; reason?: string }) => {
    assert.equal(e.code, code);
    assert.equal(e.reason, reason);
    return true;
  });
}

describe('broker: evidence through the claims contract', () => {
  it('returns the claims of the verification the release rested on; the appraiser gets that evidence', async () => {
    const env = await setup();
    const req = await releaseRequest(env.broker, env.inst, null);
    const r = await env.broker.release(req);
    assert.equal(r.evidence, env.seen()?.claims);
    assert.equal(env.appraised(), env.seen());
    assert.equal(r.evidence.evidenceDigest, createHash('sha256').update(req.report).digest('hex'));
    assert.deepEqual(r.evidence.identityField?.value, env.inst.hostData);
  });

  it('broker.tee: a TEE not in the table is refused before the challenge is consumed', async () => {
    const env = await setup();
    const req = await releaseRequest(env.broker, env.inst, null);
    await rejectsReason(env.broker.release({ ...req, tee: 'sgx' }), 'ERR_NOT_SUPPORTED', 'broker.tee');
    await rejectsReason(
      env.broker.release({ ...req, tee: 'constructor' }),
      'ERR_NOT_SUPPORTED',
      'broker.tee',
    );
    await env.broker.release(req); // the challenge is still good
  });

  it('broker.tee: claims of another TEE than the one requested are refused', async () => {
    const env = await setup((v) => ({ ...v, claims: { ...v.claims, tee: 'tpm' } }));
    await rejectsReason(
      env.broker.release(await releaseRequest(env.broker, env.inst, null)),
      'ERR_NOT_SUPPORTED',
      'broker.tee',
    );
  });

  it('broker.unknown_instance: evidence without an identity-bearing field names no instance', async () => {
    const env = await setup((v) => ({ ...v, claims: { ...v.claims, identityField: null } }));
    await rejectsReason(
      env.broker.release(await releaseRequest(env.broker, env.inst, null)),
      'ERR_REFUSED',
      'broker.unknown_instance',
    );
  });

  it('broker.unknown_instance: an identity field of another length than HOST_DATA is never looked up', async () => {
    const env = await setup((v) => ({
      ...v,
      claims: {
        ...v.claims,
        identityField: {
          name: 'MRCONFIGID',
          value: new Uint8Array([...env.inst.hostData, ...new Uint8Array(16)]),
        },
      },
    }));
    await rejectsReason(
      env.broker.release(await releaseRequest(env.broker, env.inst, null)),
      'ERR_REFUSED',
      'broker.unknown_instance',
    );
  });

  it('broker.report_data_mismatch: the binding is checked on the claims, not on a report struct', async () => {
    const env = await setup((v) => ({
      ...v,
      claims: { ...v.claims, reportData: new Uint8Array(64) },
    }));
    await rejectsReason(
      env.broker.release(await releaseRequest(env.broker, env.inst, null)),
      'ERR_REFUSED',
      'broker.report_data_mismatch',
    );
  });
});
