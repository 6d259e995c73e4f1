/** The TDX simulator's quotes verify (v4 TD 1.0, v5 TD 1.5) and round-trip; a revoked PCK is refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../../src/errors.js';
import { TdxVerifier, verifyTdx } from '../../src/evidence/tdx/index.js';
import { parseTdxQuote } from '../../src/formats/tdx/quote.js';
import { SimTdxPlatform } from '../../src/sim/tdx/index.js';
import { toHex } from '../../src/util/bytes.js';

const p = new SimTdxPlatform();
const opts = (collateral = p.collateral()) => ({
  collateral,
  now: new Date(),
  trustedRoots: [p.rootSha256],
  verifier: new TdxVerifier(),
});

describe('TDX simulator', () => {
  for (const o of [
    { version: 4 as const },
    { version: 5 as const, kind: 'td1.0' as const },
    { version: 5 as const, kind: 'td1.5' as const },
  ]) {
    it(`v${o.version} ${o.kind ?? 'td1.0'}: parses back to what was signed and verifies UpToDate`, () => {
      const rd = new Uint8Array(64).fill(0x42);
      const q = parseTdxQuote(p.quote(rd, o));
      assert.equal(q.header.version, o.version);
      assert.equal(q.body.kind, o.kind ?? 'td1.0');
      assert.equal(toHex(q.body.reportData), toHex(rd));
      assert.equal(verifyTdx(q, opts()).tcb.status, 'UpToDate');
    });
  }

  it('the parse owns its bytes: changing the input afterwards changes no field, and the quote still verifies', () => {
    const input = p.quote(new Uint8Array(64).fill(7));
    const q = parseTdxQuote(input);
    input.fill(0xff);
    assert.equal(toHex(q.body.reportData), '07'.repeat(64));
    assert.equal(q.header.version, 4);
    assert.equal(verifyTdx(q, opts()).tcb.status, 'UpToDate');
  });

  it('a PCK listed in the PCK CRL is refused', () => {
    assert.throws(
      () => verifyTdx(parseTdxQuote(p.quote(new Uint8Array(64))), opts(p.collateral({ revokedPck: true }))),
      (e: unknown) =>
        e instanceof AttestationError && e.code === 'ERR_CHAIN_INVALID' && e.reason === 'tdx.chain.revoked',
    );
  });

  it('a CRL that does not parse is reported as a TDX CRL (tdx.crl.*, not snp.crl.*)', () => {
    const good = p.collateral();
    const cut = good.pckCrl!.subarray(0, good.pckCrl!.length - 5);
    const cases: [Uint8Array, string][] = [
      [cut, 'tdx.crl.der'],
      [new TextEncoder().encode('not a CRL'), 'tdx.crl.pem'],
      [new Uint8Array((1 << 20) + 1).fill(0x30), 'tdx.crl.size'],
    ];
    for (const [crl, reason] of cases) {
      for (const which of ['pckCrl', 'rootCaCrl'] as const) {
        assert.throws(
          () => verifyTdx(parseTdxQuote(p.quote(new Uint8Array(64))), opts({ ...good, [which]: crl })),
          (e: unknown) => e instanceof AttestationError && e.code === 'ERR_MALFORMED' && e.reason === reason,
          `${which}: ${reason}`,
        );
      }
    }
  });
});
