/**
 * What a warm TdxVerifier remembers, and that it never turns a refusal into an acceptance: the imported
 * attestation key is remembered by its exact 64 bytes (a different key is imported and checked, an off-curve
 * one is refused with its code), the QE report signature and binding are checked on every quote, and a
 * (PCK chain, collateral) pair that passed its CRL checks still has its dates checked at each `now`, while
 * new collateral (a CRL that now revokes) is checked in full.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { TdxVerifier, verifyTdx } from '../../../src/evidence/tdx/index.js';
import type { TdxCollateral } from '../../../src/formats/tdx/collateral-source.js';
import { parseTdxQuote } from '../../../src/formats/tdx/quote.js';
import { simIntelCrl } from '../../../src/sim/tdx/certs.js';
import { SimTdxPlatform } from '../../../src/sim/tdx/index.js';
import { rawP256 } from '../../../src/sim/tdx/quote.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { throwsCode } from '../../helpers/assert-error.js';

const DAY = 86_400_000;
const p1363 = (data: Uint8Array, key: KeyObject) =>
  new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));

/**
 * `quote` with its attestation key replaced by `ak` (64 bytes, any), the QE report re-bound to it
 * (REPORTDATA = SHA-256(ak || auth data) || zeros) and re-signed by the platform's PCK, and, when
 * `signer` is given, the quote re-signed by it. Offsets come from the parsed quote's views (into a whole
 * copy, so a view's byteOffset is its offset in the quote).
 */
function withAttestationKey(
  p: SimTdxPlatform,
  quote: Uint8Array,
  ak: Uint8Array,
  signer?: KeyObject,
): Uint8Array {
  const q = parseTdxQuote(quote);
  const out = quote.slice();
  out.set(ak, q.attestationKey.byteOffset);
  const report = out.subarray(q.qeReport.raw.byteOffset, q.qeReport.raw.byteOffset + 384);
  report.set(createHash('sha256').update(ak).update(q.qeAuthData).digest(), 0x140);
  out.set(p1363(report, p.pck.privateKey), q.qeReportSignature.byteOffset);
  if (signer) out.set(p1363(q.signed, signer), q.signature.byteOffset);
  return out;
}

describe('TDX warm verifier: attestation key cache', () => {
  const p = new SimTdxPlatform();
  const collateral = p.collateral();
  const opts = (verifier: TdxVerifier) => ({
    collateral,
    now: new Date(),
    trustedRoots: [p.rootSha256],
    verifier,
  });
  const good = p.quote(new Uint8Array(64).fill(7));
  const verifies = (quote: Uint8Array, verifier: TdxVerifier) =>
    verifyTdx(parseTdxQuote(quote), opts(verifier));
  const refuses = (quote: Uint8Array, verifier: TdxVerifier, code: string, reason: string) =>
    throwsCode(() => verifies(quote, verifier), code, reason);

  it('an off-curve attestation key that the QE report binds is refused with tdx.quote.attestation_key, warm or cold', () => {
    const ak = rawP256(p.attestationKey.publicKey).slice();
    ak[63]! ^= 0x01; // y changed: (x, y') is not on P-256
    assert.throws(() =>
      createPublicKey({
        key: {
          kty: 'EC',
          crv: 'P-256',
          x: Buffer.from(ak.subarray(0, 32)).toString('base64url'),
          y: Buffer.from(ak.subarray(32)).toString('base64url'),
        },
        format: 'jwk',
      }),
    );
    const forged = withAttestationKey(p, good, ak);
    const warm = new TdxVerifier();
    verifies(good, warm);
    for (const verifier of [warm, new TdxVerifier()])
      refuses(forged, verifier, 'ERR_MALFORMED', 'tdx.quote.attestation_key');
    // Not remembered either: refused again, and the good quote still verifies.
    refuses(forged, warm, 'ERR_MALFORMED', 'tdx.quote.attestation_key');
    verifies(good, warm);
  });

  it('another attestation key (bound by the QE) is its own key: a quote signed by the remembered key fails under it', () => {
    const other = newKeyPairSync('ec', { namedCurve: 'P-256' });
    const otherRaw = rawP256(other.publicKey);
    const verifier = new TdxVerifier();
    verifies(good, verifier); // the platform's key is now remembered
    // The new key's bytes, but the quote still signed by the platform's (remembered) key.
    refuses(withAttestationKey(p, good, otherRaw), verifier, 'ERR_SIGNATURE_INVALID', 'tdx.quote.signature');
    // Signed by the new key: verifies, and the first key is still the first key's.
    verifies(withAttestationKey(p, good, otherRaw, other.privateKey), verifier);
    verifies(good, verifier);
    refuses(
      withAttestationKey(p, good, rawP256(p.attestationKey.publicKey), other.privateKey),
      verifier,
      'ERR_SIGNATURE_INVALID',
      'tdx.quote.signature',
    );
  });

  it('the QE report signature and binding are checked for every quote, also with the key remembered', () => {
    const verifier = new TdxVerifier();
    verifies(good, verifier);
    const q = parseTdxQuote(good);
    const forgedSig = good.slice();
    forgedSig[q.qeReportSignature.byteOffset + 63]! ^= 0x01;
    refuses(forgedSig, verifier, 'ERR_SIGNATURE_INVALID', 'tdx.qe_report.signature');
    // A QE report that no longer binds the (remembered) key, re-signed by the PCK: the binding fails.
    const unbound = good.slice();
    const rd = q.qeReport.raw.byteOffset + 0x140;
    unbound[rd]! ^= 0x01;
    unbound.set(
      p1363(unbound.subarray(q.qeReport.raw.byteOffset, q.qeReport.raw.byteOffset + 384), p.pck.privateKey),
      q.qeReportSignature.byteOffset,
    );
    refuses(unbound, verifier, 'ERR_BINDING_MISMATCH', 'tdx.qe_report.binding');
    verifies(good, verifier);
  });
});

describe('TDX warm verifier: a (PCK chain, collateral) pair that passed its CRL checks', () => {
  const p = new SimTdxPlatform();
  const quote = parseTdxQuote(p.quote(new Uint8Array(64)));
  const run = (verifier: TdxVerifier, collateral: TdxCollateral, now: Date) =>
    verifyTdx(quote, { collateral, now, trustedRoots: [p.rootSha256], verifier });
  /** Every refusal here is a chain, CRL or collateral date: ERR_CHAIN_INVALID with `reason`. */
  const refuses = (verifier: TdxVerifier, collateral: TdxCollateral, now: Date, reason: string) =>
    throwsCode(() => run(verifier, collateral, now), 'ERR_CHAIN_INVALID', reason);
  /** `days` after the platform's collateral was issued. */
  const after = (days: number) => new Date(p.issued.getTime() + days * DAY);

  it('a CRL that revokes the PCK after the pair was remembered still revokes (new collateral, checked in full)', () => {
    const verifier = new TdxVerifier();
    const now = new Date();
    run(verifier, p.collateral(), now);
    run(verifier, p.collateral(), now);
    refuses(verifier, p.collateral({ revokedPck: true }), now, 'tdx.chain.revoked');
    run(verifier, p.collateral(), now);
  });

  it('its CRLs, collateral and chain dates are still checked at each `now`', () => {
    const verifier = new TdxVerifier();
    // A PCK CRL due two days after issue, well inside every other window.
    const shortCrl = simIntelCrl({
      issuerCn: 'Intel SGX PCK Platform CA',
      issuerKey: p.pckCa.privateKey,
      thisUpdate: p.issued,
      nextUpdate: after(2),
      revoked: [],
    });
    const collateral = { ...p.collateral(), pckCrl: shortCrl };
    run(verifier, collateral, after(1));
    refuses(verifier, collateral, after(3), 'tdx.crl.expired');
    refuses(verifier, collateral, new Date(p.issued.getTime() - 1000), 'tdx.chain.expired');
    // The TCB Info's nextUpdate (30 days) and the chain's notAfter (a year) with the usual collateral.
    const usual = p.collateral();
    run(verifier, usual, after(1));
    refuses(verifier, usual, after(31), 'tdx.tcb_info.expired');
    refuses(verifier, usual, after(400), 'tdx.chain.expired');
    run(verifier, usual, after(1));
  });
});

describe('TDX warm verifier: the last TCB evaluation', () => {
  it('is reused only for equal inputs: a quote with another TEE_TCB_SVN gets its own status, before and after', () => {
    const p = new SimTdxPlatform();
    const collateral = p.collateral();
    const verifier = new TdxVerifier();
    const run = (q: Uint8Array) =>
      verifyTdx(parseTdxQuote(q), { collateral, now: new Date(), trustedRoots: [p.rootSha256], verifier });
    const current = p.quote(new Uint8Array(64));
    // TEE_TCB_SVN[2] = 1: below the UpToDate level's 2, at the OutOfDate level's 1.
    const older = p.quote(new Uint8Array(64), {
      body: { teeTcbSvn: Uint8Array.from([5, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) },
    });
    const a = run(current);
    assert.equal(a.tcb.status, 'UpToDate');
    assert.equal(run(current).tcb, a.tcb, 'the same inputs share the evaluation');
    assert.ok(
      Object.isFrozen(a.tcb) && Object.isFrozen(a.tcb.platform) && Object.isFrozen(a.tcb.advisoryIds),
    );
    const b = run(older);
    assert.equal(b.tcb.platform.status, 'OutOfDate');
    assert.deepEqual(b.tcb.advisoryIds, ['INTEL-SA-00000']);
    assert.equal(run(current).tcb.status, 'UpToDate');
    // Other collateral (another status for this level): evaluated again under it.
    const c = verifyTdx(parseTdxQuote(current), {
      collateral: p.collateral({ platformStatus: 'SWHardeningNeeded', advisoryIds: ['INTEL-SA-00001'] }),
      now: new Date(),
      trustedRoots: [p.rootSha256],
      verifier,
    });
    assert.equal(c.tcb.status, 'SWHardeningNeeded');
    assert.deepEqual(c.tcb.advisoryIds, ['INTEL-SA-00001']);
  });
});

describe('TDX verifier: the time it judges validity at', () => {
  it('an invalid Date is refused (tdx.options.now) instead of passing every validity window', () => {
    const p = new SimTdxPlatform();
    const quote = parseTdxQuote(p.quote(new Uint8Array(64)));
    const o = { collateral: p.collateral(), trustedRoots: [p.rootSha256] };
    assert.ok(verifyTdx(quote, { ...o, now: new Date() }));
    throwsCode(
      () => verifyTdx(quote, { ...o, now: new Date(Number.NaN) }),
      'ERR_INVALID_ARGUMENT',
      'tdx.options.now',
    );
  });
});
