/**
 * The evidence contract (src/evidence/types.ts): one suite, run against every EvidenceType (contract.test.ts
 * registers one case per TEE). A TEE whose module does not behave like the others fails here, not in the
 * broker or the KBS that rely on it.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { EvidenceClaims, EvidenceType } from '../../src/evidence/types.js';
import { toHex } from '../../src/util/bytes.js';
import { rejectsCode } from '../helpers/assert-error.js';

/** What a claim set is expected to hold; byte fields as lower-case hex. */
export interface ExpectedClaims {
  readonly measurements: Readonly<Record<string, string>>;
  readonly identityField: { readonly name: string; readonly value: string } | null;
  readonly reportData: string;
  readonly debug: boolean | null;
  readonly evidenceDigest: string;
}

/** One good piece of evidence of a TEE and the ways of breaking it that every TEE must refuse alike. */
export interface EvidenceFixture<I, O> {
  readonly input: I;
  readonly options: O;
  readonly expected: ExpectedClaims;
  /** The input with one signed byte changed: parses, but its signature does not verify. */
  readonly tampered: I;
  /** The good input's signer key replaced by another's (a signed byte flip in the certificate). */
  readonly untrusted: O;
  /** The good options at a time outside the signer's certificate validity. */
  readonly expired: O;
  /** Inputs that must not parse. */
  readonly malformed: readonly I[];
  /** Mutates every buffer of `input` in place (the claims must not change with them). */
  scribble(input: I): void;
}

export interface EvidenceCase<I, P, V, O> {
  readonly type: EvidenceType<I, P, V, O>;
  fixture(): Promise<EvidenceFixture<I, O>>;
}

function hexClaims(c: EvidenceClaims): ExpectedClaims {
  return {
    measurements: Object.fromEntries(Object.entries(c.measurements).map(([k, v]) => [k, toHex(v)])),
    identityField: c.identityField && { name: c.identityField.name, value: toHex(c.identityField.value) },
    reportData: toHex(c.reportData),
    debug: c.debug,
    evidenceDigest: c.evidenceDigest,
  };
}

export function runEvidenceContract<I, P, V, O>(c: EvidenceCase<I, P, V, O>): void {
  const t = c.type;
  describe(`evidence contract: ${t.tee}`, () => {
    let f: EvidenceFixture<I, O>;
    before(async () => {
      f = await c.fixture();
    });
    const claimsOf = async (input: I, options: O) => t.toClaims(await t.verify(t.parse(input), options));

    it('names itself with a short stable TEE name, and its claims carry it', async () => {
      assert.match(t.tee, /^[a-z][a-z0-9-]{1,15}$/);
      assert.equal((await claimsOf(f.input, f.options)).tee, t.tee);
    });

    it('claims: measurements, identity-bearing field, report data, debug and evidence digest', async () => {
      const claims = await claimsOf(f.input, f.options);
      assert.deepEqual(hexClaims(claims), f.expected);
      assert.ok(Object.keys(claims.measurements).length > 0, 'at least one measurement');
      assert.match(claims.evidenceDigest, /^[0-9a-f]{64}$/);
      for (const [k, v] of Object.entries(claims.tcb)) {
        assert.ok(typeof v === 'number' || typeof v === 'string', `tcb.${k}`);
      }
    });

    it('details are JSON: they survive a round trip unchanged', async () => {
      const { details } = await claimsOf(f.input, f.options);
      assert.deepEqual(JSON.parse(JSON.stringify(details)), details);
    });

    it('claims are private copies: changing the input buffers afterwards changes nothing', async () => {
      const copy = structuredClone(f.input);
      const claims = await claimsOf(copy, f.options);
      const before = hexClaims(claims);
      f.scribble(copy);
      assert.deepEqual(hexClaims(claims), before);
    });

    it('the same evidence gives the same claims (nothing depends on call order or a cache)', async () => {
      const a = hexClaims(await claimsOf(f.input, f.options));
      const b = hexClaims(await claimsOf(f.input, f.options));
      assert.deepEqual(a, b);
    });

    it('parse refuses malformed input with ERR_MALFORMED and nothing else', async () => {
      assert.ok(f.malformed.length > 0);
      for (const bad of f.malformed) await rejectsCode(() => t.parse(bad), 'ERR_MALFORMED');
    });

    it('a changed signed byte: ERR_SIGNATURE_INVALID', async () => {
      await rejectsCode(() => t.verify(t.parse(f.tampered), f.options), 'ERR_SIGNATURE_INVALID');
    });

    it('a signer that does not chain to a trusted root: ERR_CHAIN_INVALID', async () => {
      await rejectsCode(() => t.verify(t.parse(f.input), f.untrusted), 'ERR_CHAIN_INVALID');
    });

    it('outside the certificate validity (the clock is an option): ERR_CHAIN_INVALID', async () => {
      await rejectsCode(() => t.verify(t.parse(f.input), f.expired), 'ERR_CHAIN_INVALID');
    });
  });
}
