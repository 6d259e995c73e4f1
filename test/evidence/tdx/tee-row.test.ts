/**
 * The TDX row of the TEE table (src/policy/tees.ts): the broker's verifier and appraiser dispatch to the TDX
 * pipeline with the deployment's collateral source; without one, or with a host-sent blob, a quote is
 * refused; the KBS attests `tdx` through it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tdxCollateralFromDirectory } from '../../../src/collateral/pcs-directory.js';
import { AttestationError } from '../../../src/errors.js';
import { TdxVerifier } from '../../../src/evidence/tdx/index.js';
import { kbsTeeOf, SUPPORTED_KBS_TEES } from '../../../src/kbs/tees.js';
import {
  appraiseEvidence,
  assertSupportedTee,
  checkTeePolicy,
  createTeeVerifier,
  isSupportedTee,
  registryIdentityOf,
  TEE_NAMES,
} from '../../../src/policy/tees.js';
import { toHex } from '../../../src/util/bytes.js';
import { errorWith } from '../../helpers/assert-error.js';
import { needsVectors, readVector, vectorPath } from '../../helpers/vectors.js';
import { tdxCaseNow } from './vector-collateral.js';

const CASE = 'phala-dcap-qvl-v4';

describe('TEE table: the TDX row', () => {
  it('is in the table and releases keys, named by MRCONFIGID; its policy parser is the TDX one (mrTd required)', () => {
    assert.ok(TEE_NAMES.includes('tdx'));
    assert.equal(isSupportedTee('tdx'), true);
    assertSupportedTee('tdx', 'broker.tee');
    assert.deepEqual(registryIdentityOf('tdx'), { registryTee: 'tdx', field: 'MRCONFIGID', bytes: 48 });
    checkTeePolicy('tdx', { mrTd: 'any' });
    assert.throws(() => checkTeePolicy('tdx', {}), errorWith('ERR_INVALID_ARGUMENT', 'policy.invalid'));
  });

  it('the KBS serves tdx with this row (kbs-types `tdx`); Azure TDX (`az-tdx-vtpm`) is still refused', () => {
    assert.ok(SUPPORTED_KBS_TEES.includes('tdx'));
    assert.equal(kbsTeeOf('tdx'), 'tdx');
    assert.throws(() => kbsTeeOf('az-tdx-vtpm'), errorWith('ERR_NOT_SUPPORTED', 'kbs.tee'));
  });

  it('a malformed quote is refused as malformed before any collateral is asked for', async () => {
    let asked = false;
    const tees = createTeeVerifier({
      now: Date.now,
      tdx: {
        collateral: {
          getTdxCollateral: async () => {
            asked = true;
            throw new Error('not reached');
          },
        },
      },
    });
    await assert.rejects(
      tees.verifyEvidence('tdx', new Uint8Array(10), undefined),
      (e) => e instanceof AttestationError && e.code === 'ERR_MALFORMED',
    );
    assert.equal(asked, false);
  });

  it(
    'verifies a real quote with the configured source and appraises it with the TDX appraiser',
    needsVectors,
    async () => {
      const now = tdxCaseNow(CASE).getTime();
      const quote = readVector('tdx', CASE, 'quote.bin');
      const unconfigured = createTeeVerifier({ now: () => now });
      await assert.rejects(
        unconfigured.verifyEvidence('tdx', quote, undefined),
        errorWith('ERR_COLLATERAL_UNAVAILABLE', 'api.collateral.tdx_unconfigured'),
      );
      const tees = createTeeVerifier({
        now: () => now,
        tdx: { collateral: tdxCollateralFromDirectory(vectorPath('tdx', CASE)), verifier: new TdxVerifier() },
      });
      // The blob beside a TDX quote is its CCEL event log: bytes that are not one are refused.
      await assert.rejects(
        tees.verifyEvidence('tdx', quote, Uint8Array.of(1)),
        (e) => e instanceof AttestationError && e.code === 'ERR_MALFORMED',
      );
      const evidence = await tees.verifyEvidence('tdx', quote, undefined);
      assert.equal(evidence.claims.tee, 'tdx');
      assert.equal(evidence.claims.identityField?.name, 'MRCONFIGID');
      const mrTd = toHex(evidence.claims.measurements.mrTd ?? new Uint8Array(0));
      assert.deepEqual(await tees.appraise(evidence, { mrTd: [mrTd] }), []);
      const other = appraiseEvidence(evidence, { mrTd: ['00'.repeat(48)] });
      assert.deepEqual(
        other.failures.map((f) => f.code),
        ['tdx.mr_td'],
      );
      // A clock past the collateral's window: the row passes the deployment's clock to the verifier.
      const late = createTeeVerifier({
        now: () => Date.parse('2030-01-01T00:00:00Z'),
        tdx: { collateral: tdxCollateralFromDirectory(vectorPath('tdx', CASE)) },
      });
      await assert.rejects(
        late.verifyEvidence('tdx', quote, undefined),
        (e) => e instanceof AttestationError && e.code === 'ERR_CHAIN_INVALID',
      );
    },
  );
});
