/**
 * The az-snp-vtpm policy ({snp, pcrs}): parse refusals, and appraisal of a verified simulated Azure VM:
 * every failure listed (SNP and PCR together), checked and not-checked rules named, `'any'` explicit.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type AzSnpVtpmVerified, azSnpVtpmEvidence } from '../../../src/evidence/az-snp-vtpm/index.js';
import { appraiseAzSnpVtpm, parseAzSnpVtpmPolicy } from '../../../src/policy/az-snp-vtpm/policy.js';
import { appraiseEvidence, checkTeePolicy } from '../../../src/policy/tees.js';
import { SimAzureVm } from '../../../src/sim/azure/index.js';
import { SIM_DEFAULT_MEASUREMENT, sharedSimChain } from '../../../src/sim/snp/index.js';
import { toHex } from '../../../src/util/bytes.js';

const GOOD = toHex(SIM_DEFAULT_MEASUREMENT);
const pcrHex = (b: number) => toHex(new Uint8Array(32).fill(b));
const invalid = { code: 'ERR_INVALID_ARGUMENT', reason: 'policy.invalid' };

describe('az-snp-vtpm policy', () => {
  let v: AzSnpVtpmVerified;
  let claims: ReturnType<typeof azSnpVtpmEvidence.toClaims>;
  before(async () => {
    const chain = await sharedSimChain('Milan');
    const vm = new SimAzureVm(chain);
    const parsed = azSnpVtpmEvidence.parse({ json: vm.evidence(new Uint8Array(48).fill(1), 2) });
    v = await azSnpVtpmEvidence.verify(parsed, {
      now: new Date(),
      trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
      amdChain: { intermediate: chain.ask.der, root: chain.ark.der },
    });
    claims = azSnpVtpmEvidence.toClaims(v);
  });

  it('parse: snp and pcrs required (pcrs may be the explicit any); unknown keys, PCR indexes and values refused', () => {
    for (const bad of [
      null,
      [],
      { pcrs: 'any' },
      { snp: {} },
      { snp: {}, pcrs: 'any', extra: 1 },
      { snp: { nope: 1 }, pcrs: 'any' },
      { snp: {}, pcrs: { 24: 'any' } },
      { snp: {}, pcrs: { '07': 'any' } },
      { snp: {}, pcrs: { '-1': 'any' } },
      { snp: {}, pcrs: { 7: [] } },
      { snp: {}, pcrs: { 7: ['00'] } },
      { snp: {}, pcrs: { 7: [`${'0'.repeat(63)}g`] } },
      { snp: {}, pcrs: { 7: 'none' } },
      { snp: {}, pcrs: [] },
    ]) {
      assert.throws(() => parseAzSnpVtpmPolicy(bad), invalid, JSON.stringify(bad));
      assert.throws(() => checkTeePolicy('az-snp-vtpm', bad), invalid);
    }
    const p = parseAzSnpVtpmPolicy({ snp: {}, pcrs: { 0: [pcrHex(0)], 7: 'any' } });
    assert.equal(p.pcrs === 'any' ? 'any' : p.pcrs.size, 2);
  });

  it('accepts when the SNP rules and every PCR rule pass; unconstrained PCRs are reported not checked', () => {
    const a = appraiseAzSnpVtpm(
      v,
      parseAzSnpVtpmPolicy({ snp: { measurements: [GOOD] }, pcrs: { 4: [pcrHex(9), pcrHex(4)], 7: 'any' } }),
    );
    assert.deepEqual(a.failures, []);
    assert.ok(a.checked.includes('snp.measurements'));
    assert.ok(a.checked.includes('pcr4'));
    assert.ok(a.unchecked.includes('pcr7'));
    assert.ok(a.unchecked.includes('pcr0'));
    const open = appraiseAzSnpVtpm(v, parseAzSnpVtpmPolicy({ snp: { measurements: 'any' }, pcrs: 'any' }));
    assert.deepEqual(open.failures, []);
    assert.equal(open.unchecked.filter((r) => r.startsWith('pcr')).length, 24);
  });

  it('lists every failure: the SNP measurement and each PCR not allowed, with their codes', () => {
    const a = appraiseAzSnpVtpm(
      v,
      parseAzSnpVtpmPolicy({
        snp: { measurements: ['00'.repeat(48)] },
        pcrs: { 0: [pcrHex(0)], 7: [pcrHex(8)], 11: [pcrHex(0)] },
      }),
    );
    assert.deepEqual(
      a.failures.map((f) => f.code),
      ['snp.measurement', 'azure.pcr', 'azure.pcr'],
    );
    assert.equal(a.failures[1]!.actual, pcrHex(7));
  });

  it('the TEE table appraises az-snp-vtpm with this policy (and refuses an SNP policy for it)', () => {
    const evidence = { claims, native: v };
    const a = appraiseEvidence(evidence, { snp: { measurements: [GOOD] }, pcrs: { 1: [pcrHex(2)] } });
    assert.deepEqual(
      a.failures.map((f) => f.code),
      ['azure.pcr'],
    );
    assert.throws(() => appraiseEvidence(evidence, { measurements: [GOOD] }), invalid);
  });
});
