/**
 * The verifier remembers CRL signatures it found good, by digest: a changed CRL is verified afresh; the
 * collateral digest is remembered per collateral object only while its parts are the same objects.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../../../src/errors.js';
import { collateralDigest, type TdxCollateral } from '../../../src/evidence/tdx/collateral.js';
import { TdxVerifier, verifyTdx } from '../../../src/evidence/tdx/index.js';
import { parseTdxQuote } from '../../../src/formats/tdx/quote.js';
import { SimTdxPlatform } from '../../../src/sim/tdx/index.js';
import { needsVectors } from '../../helpers/vectors.js';
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

describe('TDX collateral digest, remembered per collateral object', () => {
  it('a part swapped into the same collateral object (a newer CRL revoking the PCK) is digested and checked afresh', () => {
    const p = new SimTdxPlatform();
    const verifier = new TdxVerifier();
    const opts = (collateral: TdxCollateral) => ({
      collateral,
      now: new Date(),
      trustedRoots: [p.rootSha256],
      verifier,
    });
    const q = parseTdxQuote(p.quote(new Uint8Array(64)));
    const col = p.collateral() as { -readonly [K in keyof TdxCollateral]: TdxCollateral[K] };
    const d0 = collateralDigest(col);
    assert.equal(collateralDigest(col), d0, 'remembered');
    verifyTdx(q, opts(col));
    col.pckCrl = p.collateral({ revokedPck: true }).pckCrl;
    assert.notEqual(collateralDigest(col), d0);
    assert.throws(
      () => verifyTdx(q, opts(col)),
      (e: unknown) => e instanceof AttestationError && e.reason === 'tdx.chain.revoked',
    );
    // A new issuer-chain array (same bytes) is a new part too: same digest, computed again.
    const fresh = p.collateral();
    const same = { ...fresh, tcbInfo: { ...fresh.tcbInfo, issuerChain: [...fresh.tcbInfo.issuerChain] } };
    assert.equal(collateralDigest(same), collateralDigest(fresh));
  });

  it('collateral whose parts are not bytes is refused with a typed reason, not a TypeError', () => {
    const p = new SimTdxPlatform();
    const c = p.collateral();
    assert.throws(
      () => collateralDigest({ ...c, tcbInfo: { ...c.tcbInfo, body: 'x' as never } }),
      (e: unknown) => e instanceof AttestationError && e.reason === 'tdx.collateral.tcb_info_missing',
    );
    assert.throws(
      () => collateralDigest({ ...c, pckCrl: 'x' as never }),
      (e: unknown) => e instanceof AttestationError && e.reason === 'tdx.crl.der',
    );
  });
});
