/**
 * Every real TDX quote in shared/vectors/tdx verifies with its collateral, decodes to the fields of its
 * expected.json, and gives the TCB status its expected.json records (the platform level is null where no
 * level matches: go-tdx-guest's 2023 SPR quote and dcap-qvl's "outdated" v5 quote).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../../../src/errors.js';
import { TdxVerifier, tdxEvidence, verifyTdx } from '../../../src/evidence/tdx/index.js';
import { parseTdxQuote } from '../../../src/formats/tdx/quote.js';
import { toHex } from '../../../src/util/bytes.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, vectorCases } from '../../helpers/vectors.js';
import { loadTdxCase } from './vector-collateral.js';

describe('TDX real vectors', needsVectors, () => {
  const cases = vectorCases('tdx');
  it('there are three cases (v4 SPR, v4 EMR, v5 TD 1.5)', () => assert.equal(cases.length, 3));

  for (const name of cases) {
    it(`${name}: decodes to expected.json`, () => {
      const c = loadTdxCase(name);
      const q = parseTdxQuote(c.quote);
      const e = c.expected.quote_fields;
      assert.equal(q.header.version, e.header.version);
      assert.equal(toHex(q.header.qeVendorId), e.header.qe_vendor_id);
      assert.equal(toHex(q.header.userData), e.header.user_data);
      assert.equal(q.bodyType ?? null, e.body_type);
      assert.equal(toHex(q.body.teeTcbSvn), e.body.tee_tcb_svn);
      assert.equal(toHex(q.body.mrSeam), e.body.mr_seam);
      assert.equal(toHex(q.body.tdAttributes), e.body.td_attributes);
      assert.equal(toHex(q.body.xfam), e.body.xfam);
      assert.equal(toHex(q.body.mrTd), e.body.mr_td);
      assert.equal(toHex(q.body.mrConfigId), e.body.mr_config_id);
      assert.deepEqual(q.body.rtmrs.map(toHex), e.body.rtmr);
      assert.equal(toHex(q.body.reportData), e.body.report_data);
      if (e.body.tee_tcb_svn2) assert.equal(toHex(q.body.teeTcbSvn2!), e.body.tee_tcb_svn2);
      assert.equal(q.qeReport.isvSvn, e.qe_report.isv_svn);
      assert.equal(toHex(q.qeReport.mrSigner), e.qe_report.mr_signer);
      assert.equal(toHex(q.qeReport.reportData), e.qe_report.report_data);
      assert.equal(q.qeAuthData.length, e.qe_auth_data_len);
      assert.equal(q.trailingBytes, e.extra_bytes);
    });

    it(`${name}: verifies with its collateral and gives the expected TCB status`, async () => {
      const c = loadTdxCase(name);
      const v = await tdxEvidence.verify(tdxEvidence.parse({ quote: c.quote }), {
        collateral: c.collateral,
        now: c.now,
        verifier: new TdxVerifier(),
      });
      const ev = c.expected.collateral_check.tcb_eval;
      assert.equal(v.tcb.fmspc, c.expected.quote_fields.verify.fmspc);
      assert.equal(v.tcb.platform.status, ev.platform_tcb_status?.[0] ?? null);
      assert.deepEqual(v.tcb.platform.advisoryIds, ev.platform_tcb_status?.[1] ?? []);
      assert.equal(v.tcb.tdxModule?.id ?? null, ev.tdx_module_identity_status?.[0] ?? null);
      assert.equal(v.tcb.tdxModule?.status ?? null, ev.tdx_module_identity_status?.[1] ?? null);
      assert.equal(v.tcb.qe.status, ev.qe.status[0]);
      assert.equal(v.tcb.tcbEvaluationDataNumber, ev.tcbEvaluationDataNumber);
      assert.equal(v.tcb.status, ev.platform_tcb_status === null ? 'NoMatchingTcbLevel' : 'UpToDate');
      assert.equal(v.revocationChecked, true);
      const claims = tdxEvidence.toClaims(v);
      assert.equal(claims.identityField?.name, 'MRCONFIGID');
      assert.equal(toHex(claims.measurements.mrTd!), c.expected.quote_fields.body.mr_td);
      assert.equal(claims.debug, false);
    });
  }

  const name = 'phala-dcap-qvl-v4';
  const load = () => loadTdxCase(name);
  const run = (q: Uint8Array, o: Partial<Parameters<typeof verifyTdx>[1]> = {}) => {
    const c = load();
    return verifyTdx(parseTdxQuote(q), {
      collateral: c.collateral,
      now: c.now,
      verifier: new TdxVerifier(),
      ...o,
    });
  };

  it('a changed body byte: the quote signature fails', () => {
    const q = load().quote.slice();
    q[0x30 + 16 + 48 + 48 + 8 + 8 + 8]! ^= 1; // MRTD
    throwsCode(() => run(q), 'ERR_SIGNATURE_INVALID', 'tdx.quote.signature');
  });

  it('a changed QE report byte: the PCK signature over it fails', () => {
    const q = load().quote.slice();
    q[0x278 + 4 + 128 + 6 + 0x40]! ^= 1; // QE MRENCLAVE
    throwsCode(() => run(q), 'ERR_SIGNATURE_INVALID', 'tdx.qe_report.signature');
  });

  it('a changed attestation key: the QE report no longer binds it', () => {
    const q = load().quote.slice();
    q[0x278 + 4 + 64 + 5]! ^= 1;
    assert.throws(
      () => run(q),
      (e: unknown) =>
        e instanceof AttestationError && /tdx\.(qe_report\.binding|quote\.attestation_key)/.test(e.reason),
    );
  });

  it('collateral: a changed TCB Info byte fails its signature', () => {
    const c = load();
    const body = c.collateral.tcbInfo.body.slice();
    body[body.indexOf(0x33)]! ^= 1; // a digit inside the signed JSON
    const collateral = { ...c.collateral, tcbInfo: { ...c.collateral.tcbInfo, body } };
    throwsCode(() => run(c.quote, { collateral }), 'ERR_SIGNATURE_INVALID', 'tdx.tcb_info.signature');
  });

  it('collateral: a QE identity signed for another body fails', () => {
    const c = load();
    const collateral = {
      ...c.collateral,
      qeIdentity: { ...c.collateral.qeIdentity, signature: c.collateral.tcbInfo.signature },
    };
    throwsCode(() => run(c.quote, { collateral }), 'ERR_SIGNATURE_INVALID', 'tdx.qe_identity.signature');
  });

  it("collateral of another platform (the v5 case's TCB Info): FMSPC mismatch", () => {
    const other = loadTdxCase('phala-dcap-qvl-v5-outdated');
    const c = load();
    const collateral = {
      ...c.collateral,
      tcbInfo: other.collateral.tcbInfo,
      qeIdentity: other.collateral.qeIdentity,
    };
    throwsCode(
      () => run(c.quote, { collateral, now: other.now, checkRevocations: false }),
      'ERR_BINDING_MISMATCH',
      'tdx.tcb.fmspc',
    );
  });

  it('collateral past its nextUpdate: refused', () => {
    throwsCode(
      () => run(load().quote, { now: new Date('2025-08-01T00:00:00Z') }),
      'ERR_CHAIN_INVALID',
      'tdx.tcb_info.expired',
    );
  });

  it('before the PCK was issued: refused', () => {
    throwsCode(
      () => run(load().quote, { now: new Date('2020-01-01T00:00:00Z') }),
      'ERR_CHAIN_INVALID',
      'tdx.chain.expired',
    );
  });

  it('CRLs are checked by default: without them, collateral unavailable; with checkRevocations false, accepted', () => {
    const c = load();
    const { pckCrl: _p, rootCaCrl: _r, ...noCrl } = c.collateral;
    throwsCode(
      () => run(c.quote, { collateral: noCrl }),
      'ERR_COLLATERAL_UNAVAILABLE',
      'tdx.collateral.crl_missing',
    );
    assert.equal(run(c.quote, { collateral: noCrl, checkRevocations: false }).revocationChecked, false);
  });

  it('a PCK CRL of another CA (the root CRL in its place) is refused', () => {
    const c = load();
    const collateral = { ...c.collateral, pckCrl: c.collateral.rootCaCrl };
    throwsCode(() => run(c.quote, { collateral }), 'ERR_CHAIN_INVALID', 'tdx.crl.issuer');
  });

  it('no collateral: collateral unavailable', () => {
    throwsCode(
      () => verifyTdx(parseTdxQuote(load().quote), { now: load().now }),
      'ERR_COLLATERAL_UNAVAILABLE',
      'tdx.collateral.missing',
    );
  });
});
