/**
 * Trustee's TDX primary evidence `{quote, cc_eventlog}` (src/kbs/evidence-tdx.ts) and the EAR subject of a
 * TDX token (the launch measurement is MRTD: there is no SNP report).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_CCEL_BYTES, parseTdxPrimaryEvidence } from '../../src/kbs/evidence-tdx.js';
import { EarTokens, readSnpEarSubject, TokenKeyRing } from '../../src/kbs/tokens/index.js';
import { throwsCode } from '../helpers/assert-error.js';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

describe('parseTdxPrimaryEvidence', () => {
  it('decodes the quote and the log; null, empty or absent cc_eventlog is no log; aa_eventlog is ignored', () => {
    const q = Uint8Array.of(4, 0, 2, 0);
    const e = parseTdxPrimaryEvidence({ quote: b64(q), cc_eventlog: b64(Uint8Array.of(9)) });
    assert.deepEqual([e.quote, e.ccel], [q, Uint8Array.of(9)]);
    for (const cc of [null, '', undefined]) {
      assert.equal(parseTdxPrimaryEvidence({ quote: b64(q), cc_eventlog: cc }).ccel, undefined);
    }
    assert.equal(parseTdxPrimaryEvidence({ quote: b64(q), aa_eventlog: 'x' }).ccel, undefined);
  });

  it('refuses other shapes, bad base64 and oversize members', () => {
    const shape: unknown[] = [
      null,
      [],
      'x',
      {},
      { quote: '' },
      { quote: 5 },
      { quote: 'AAAA', cc_eventlog: 1 },
      { quote: 'AAAA', aa_eventlog: {} },
      { quote: 'AAAA', tdx: 1 },
      { quote: 'AAAA', __proto__: null, constructor: 1 },
    ];
    for (const v of shape)
      throwsCode(() => parseTdxPrimaryEvidence(v), 'ERR_MALFORMED', 'kbs.evidence.shape');
    throwsCode(() => parseTdxPrimaryEvidence({ quote: 'AAA' }), 'ERR_MALFORMED', 'kbs.evidence.base64');
    throwsCode(() => parseTdxPrimaryEvidence({ quote: 'AB==' }), 'ERR_MALFORMED', 'kbs.evidence.base64');
    throwsCode(
      () => parseTdxPrimaryEvidence({ quote: 'A'.repeat(200_000) }),
      'ERR_MALFORMED',
      'kbs.evidence.size',
    );
    throwsCode(
      () => parseTdxPrimaryEvidence({ quote: 'AAAA', cc_eventlog: 'A'.repeat((MAX_CCEL_BYTES / 3) * 4 + 8) }),
      'ERR_MALFORMED',
      'kbs.evidence.size',
    );
  });
});

describe('EAR of a TDX attestation', () => {
  it('carries the claims under tdx and no snp; the subject measurement is MRTD', async () => {
    const keys = await TokenKeyRing.generate({ maxTokenLifetimeMs: 300_000 });
    const tokens = new EarTokens({ keys, issuer: 'https://broker' });
    const { token, claims } = tokens.issueSnp({
      jti: 'g',
      nonce: 'bm9uY2U=',
      identity: {
        brokerInstanceId: 'i-1',
        project: 'p',
        zone: 'z',
        instanceId: '1',
        instanceName: 'td',
        source: 'registry',
      },
      teeClaims: { tdx: { mrTd: 'bb'.repeat(48) } },
      reportData: '00'.repeat(64),
      runtimeData: { nonce: 'bm9uY2U=', 'tee-pubkey': { kty: 'EC' } },
      binding: 'trustee-jcs-sha384',
      policyId: 'x',
      appraisal: { measurementChecked: true, debugAllowed: false },
    });
    const ev = claims.submods.cpu0!['ear.veraison.annotated-evidence']!;
    assert.equal('snp' in ev, false);
    assert.equal(readSnpEarSubject(tokens.verify(token)).measurement, 'bb'.repeat(48));
    // Neither SNP nor TDX claims: no measurement to read.
    const bare = {
      ...claims,
      submods: {
        cpu0: { ...claims.submods.cpu0!, 'ear.veraison.annotated-evidence': { runtime_data_claims: {} } },
      },
    };
    throwsCode(() => readSnpEarSubject(bare as never), 'ERR_MALFORMED', 'token.claims');
  });
});
