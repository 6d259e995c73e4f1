/** The verifier remembers CRL signatures it found good, by digest: a changed CRL is verified afresh. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../../src/errors.js';
import { TdxVerifier, verifyTdx } from '../../src/evidence/tdx/index.js';
import { parseTdxQuote } from '../../src/formats/tdx/quote.js';
import { needsVectors } from '../helpers/vectors.js';
import { loadTdxCase } from './vector-collateral.js';

describe('TDX CRL signature cache', needsVectors, () => {
  it('a CRL with one signature byte changed is refused by a verifier that accepted the original', () => {
    const c = loadTdxCase('phala-dcap-qvl-v4');
    const verifier = new TdxVerifier();
    const q = parseTdxQuote(c.quote);
    verifyTdx(q, { collateral: c.collateral, now: c.now, verifier });
    for (const which of ['rootCaCrl', 'pckCrl'] as const) {
      const crl = c.collateral[which]!.slice();
      crl[crl.length - 5]! ^= 0x01; // inside the signature's s value
      assert.throws(
        () => verifyTdx(q, { collateral: { ...c.collateral, [which]: crl }, now: c.now, verifier }),
        (e: unknown) => e instanceof AttestationError && e.reason === 'tdx.crl.signature',
        which,
      );
    }
    // The original still verifies (and its dates are still checked each time).
    verifyTdx(q, { collateral: c.collateral, now: c.now, verifier });
  });
});
