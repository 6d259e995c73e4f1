/** TDX appraisal: every failure listed, safe defaults, 'any' explicit; each rule shown rejecting. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../../../src/errors.js';
import { TdxVerifier, verifyTdx } from '../../../src/evidence/tdx/index.js';
import { parseTdxQuote } from '../../../src/formats/tdx/quote.js';
import { appraiseTdx, parseTdxPolicy } from '../../../src/policy/tdx/policy.js';
import { SimTdxPlatform } from '../../../src/sim/tdx/index.js';
import { toHex } from '../../../src/util/bytes.js';
import { loadTdxCase } from '../../evidence/tdx/vector-collateral.js';
import { needsVectors } from '../../helpers/vectors.js';

const platform = new SimTdxPlatform();
const le = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return new Uint8Array(b);
};
function verified(body: Parameters<SimTdxPlatform['quote']>[1] = {}, collateral = platform.collateral()) {
  return verifyTdx(parseTdxQuote(platform.quote(new Uint8Array(64).fill(7), body)), {
    collateral,
    now: new Date(),
    trustedRoots: [platform.rootSha256],
    verifier: new TdxVerifier(),
  });
}
const codes = (v: ReturnType<typeof verified>, p: unknown) =>
  appraiseTdx(v, parseTdxPolicy(p)).failures.map((f) => f.code);

describe('TDX policy', () => {
  it('a good quote passes with mrTd any; unset rules are listed as not checked', () => {
    const a = appraiseTdx(verified(), parseTdxPolicy({ mrTd: 'any' }));
    assert.deepEqual(a.failures, []);
    assert.ok(a.unchecked.includes('mr_td') && a.unchecked.includes('mr_config_id'));
  });

  it('mrTd must be given (no silent skip); unknown rules and Revoked are refused', () => {
    for (const p of [
      {},
      { mrTd: [] },
      { mrTd: 'any', bogus: 1 },
      { mrTd: 'any', tcbStatuses: ['Revoked'] },
      // fuzz seed -610202272: an entry whose toString is not a function made String() throw a TypeError
      { mrTd: 'any', tcbStatuses: [{ toString: 0 }, 'SWHardeningNeeded'] },
      { mrTd: 'any', tcbStatuses: [Object.create(null)] },
    ]) {
      assert.throws(
        () => parseTdxPolicy(p),
        (e: unknown) => e instanceof AttestationError && e.reason === 'policy.invalid',
      );
    }
  });

  it('MRTD allow-list, RTMR, MRCONFIGID, REPORTDATA: every failure listed', () => {
    const z48 = '00'.repeat(48);
    assert.deepEqual(
      codes(verified(), {
        mrTd: [z48],
        rtmrs: ['any', z48.replace(/^00/, '01'), 'any', 'any'],
        mrConfigId: 'ff'.repeat(48),
        reportData: '00'.repeat(64),
      }),
      ['tdx.mr_td', 'tdx.rtmr1', 'tdx.mr_config_id', 'tdx.report_data'],
    );
  });

  it('debug TD refused by default, accepted only with allowDebug', () => {
    const v = verified({ body: { tdAttributes: le(1n | (1n << 28n)) } });
    assert.deepEqual(codes(v, { mrTd: 'any' }), ['tdx.td_attributes.debug']);
    assert.deepEqual(codes(v, { mrTd: 'any', allowDebug: true }), []);
  });

  it('reserved TD_ATTRIBUTES bits, XFAM outside the allowed set or without x87/SSE: refused', () => {
    assert.deepEqual(codes(verified({ body: { tdAttributes: le(1n << 5n) } }), { mrTd: 'any' }), [
      'tdx.td_attributes.reserved',
    ]);
    assert.deepEqual(codes(verified({ body: { xfam: le(0x3n | (1n << 3n)) } }), { mrTd: 'any' }), [
      'tdx.xfam',
    ]);
    assert.deepEqual(codes(verified({ body: { xfam: le(0x1n) } }), { mrTd: 'any' }), ['tdx.xfam']);
  });

  it('minimum TEE_TCB_SVN, component-wise', () => {
    assert.deepEqual(codes(verified(), { mrTd: 'any', minTeeTcbSvn: `06${'00'.repeat(15)}` }), [
      'tdx.tee_tcb_svn',
    ]);
    assert.deepEqual(codes(verified(), { mrTd: 'any', minTeeTcbSvn: `05${'00'.repeat(15)}` }), []);
  });

  it('TCB status: SWHardeningNeeded refused unless the policy names it; advisories are in the failure', () => {
    const v = verified(
      {},
      platform.collateral({ platformStatus: 'SWHardeningNeeded', advisoryIds: ['INTEL-SA-00615'] }),
    );
    assert.equal(v.tcb.status, 'SWHardeningNeeded');
    const a = appraiseTdx(v, parseTdxPolicy({ mrTd: 'any' }));
    assert.deepEqual(
      a.failures.map((f) => f.code),
      ['tdx.tcb_status'],
    );
    assert.match(a.failures[0]!.actual!, /INTEL-SA-00615/);
    assert.deepEqual(codes(v, { mrTd: 'any', tcbStatuses: ['UpToDate', 'SWHardeningNeeded'] }), []);
  });

  it(
    'real vectors: the UpToDate v4 quote passes; the outdated v5 quote is rejected on its TCB status',
    needsVectors,
    () => {
      for (const [name, want] of [
        ['phala-dcap-qvl-v4', []],
        ['phala-dcap-qvl-v5-outdated', ['tdx.tcb_status']],
        ['google-go-tdx-guest-spr-e4-v4', ['tdx.tcb_status']],
      ] as const) {
        const c = loadTdxCase(name);
        const v = verifyTdx(parseTdxQuote(c.quote), {
          collateral: c.collateral,
          now: c.now,
          verifier: new TdxVerifier(),
        });
        assert.deepEqual(codes(v, { mrTd: [toHex(v.quote.body.mrTd)] }), want, name);
      }
    },
  );
});
