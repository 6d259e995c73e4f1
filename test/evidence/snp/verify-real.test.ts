import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttestationError, ErrorCode } from '../../../src/errors.js';
import {
  PINNED_ARK_SHA256,
  SnpVerifier,
  snpEvidence,
  toSnpClaims,
  verifySnp,
} from '../../../src/evidence/snp/index.js';
import {
  CertGuid,
  findCert,
  parseCertTable,
  parseReport,
  productFromName,
} from '../../../src/formats/snp/index.js';
import { toHex } from '../../../src/util/bytes.js';
import { throwsCode } from '../../helpers/assert-error.js';
import { needsVectors, readVector, vectorCases } from '../../helpers/vectors.js';
import { amdCert, patched, realCase, VCEK_DATE } from './verify-helpers.js';

const hwIdHex = (s: string) => s.replace(/^(untagged|raw):/, '');

describe('SNP verification of real hardware reports', needsVectors, () => {
  for (const name of vectorCases('snp')) {
    it(`${name}: verifies with its own chain and reports the leaf as expected.json`, () => {
      const c = realCase(name);
      const f = c.expected.leaf_cert_fields;
      const product = productFromName(f.productName)!.product;
      const v = verifySnp(c.report, { now: c.now, certs: c.certs });
      assert.equal(v.product, product);
      assert.equal(v.signer, c.signer);
      assert.equal(v.rootTrust, 'pinned');
      assert.equal(v.rootSha256, PINNED_ARK_SHA256[product]);
      assert.equal(v.crlChecked, false);
      assert.equal(v.leaf.kind, c.signer);
      assert.equal(v.leaf.productName, f.productName);
      assert.equal(v.leaf.structVersion, f.structVersion);
      assert.deepEqual(
        [v.leaf.spl.bl, v.leaf.spl.tee, v.leaf.spl.snp, v.leaf.spl.ucode, v.leaf.spl.fmc],
        [f.blSPL, f.teeSPL, f.snpSPL, f.ucodeSPL, f.fmcSPL],
      );
      assert.deepEqual(
        [v.leaf.spl.spl4, v.leaf.spl.spl5, v.leaf.spl.spl6, v.leaf.spl.spl7],
        [f.spl_4, f.spl_5, f.spl_6, f.spl_7],
      );
      assert.equal(v.leaf.hwId ? toHex(v.leaf.hwId) : undefined, f.hwID ? hwIdHex(f.hwID) : undefined);
      assert.equal(v.leaf.cspId, f.cspID);
      assert.equal(v.leaf.notAfter.toISOString(), new Date(f.not_after).toISOString());
      // The leaf's TCB, decoded for the product, is the report's REPORTED_TCB.
      assert.equal(`0x${v.leaf.tcb.raw.toString(16)}`, c.expected.report_fields.reported_tcb.raw);
      // Every VCEK case carries a real CHIP_ID, so the hwID match ran; VLEKs have no hwID.
      assert.equal(v.chipIdChecked, c.signer === 'VCEK');
    });
  }

  it('VCEK cases verify at the fixed date inside every leaf validity; the check used it', () => {
    for (const name of vectorCases('snp')) {
      const c = realCase(name);
      if (c.signer !== 'VCEK') continue;
      assert.equal(c.now, VCEK_DATE);
      const f = c.expected.leaf_cert_fields;
      assert.ok(new Date(f.not_before) < VCEK_DATE && VCEK_DATE < new Date(f.not_after), name);
    }
  });

  it('claims are JSON and carry the decoded report', async () => {
    for (const name of vectorCases('snp')) {
      const c = realCase(name);
      const parsed = snpEvidence.parse({ report: c.reportBytes, certs: c.certs });
      const claims = snpEvidence.toClaims(await snpEvidence.verify(parsed, { now: c.now }));
      const r = c.expected.report_fields;
      assert.equal(claims.tee, 'snp');
      assert.equal(toHex(claims.measurements.measurement!), r.measurement);
      assert.equal(toHex(claims.identityField!.value), r.host_data);
      assert.equal(toHex(claims.reportData), r.report_data);
      const json = JSON.parse(JSON.stringify(claims.details));
      assert.equal(json.tee, 'snp');
      assert.equal(json.measurement, r.measurement);
      assert.equal(json.reportData, r.report_data);
      assert.equal(json.chipId, r.chip_id);
      assert.equal(json.currentTcb.raw, `0x${BigInt(r.current_tcb.raw).toString(16).padStart(16, '0')}`);
      assert.equal(json.currentTcb.snp, r.current_tcb.snp);
      assert.equal(json.committedTcb.microcode, r.committed_tcb.ucode);
      assert.equal(json.currentFirmware.version, r.current_version);
      assert.equal(json.policy.raw, `0x${BigInt(r.policy).toString(16).padStart(16, '0')}`);
      assert.equal(json.signingCert.kind, c.signer);
      assert.equal(json.verification.rootTrust, 'pinned');
      if (r.cpuid_fam_mod_step === null) assert.equal(json.cpuid, undefined);
    }
  });

  it('the Turin claims use the Turin TCB layout (fmc) and PLATFORM_INFO bit 6', () => {
    const c = realCase('microsoft-tav-turin');
    const claims = toSnpClaims(verifySnp(c.report, { now: c.now, certs: c.certs }));
    assert.deepEqual(claims.reportedTcb, {
      raw: '0x5100000004010101',
      fmc: 1,
      bootloader: 1,
      tee: 1,
      snp: 4,
      microcode: 81,
    });
    assert.equal(claims.platformInfo.iommuWriteSafe, true);
    assert.equal(claims.signingCert.hwId, '59790fb1c39f35c1');
  });

  it('constellation 2023: report2.bin verifies; report_invalid.bin is SignatureInvalid', () => {
    const c = realCase('constellation-aws-milan-vlek-2023');
    const v2 = verifySnp(parseReport(readVector('snp', c.name, 'report2.bin')), {
      now: c.now,
      certs: c.certs,
    });
    assert.equal(toHex(v2.report.reportData), c.expected.report2_fields?.report_data);
    const bad = parseReport(readVector('snp', c.name, 'report_invalid.bin'));
    throwsCode(
      () => verifySnp(bad, { now: c.now, certs: c.certs }),
      ErrorCode.SignatureInvalid,
      'snp.signature',
    );
  });

  it('constellation 2023: the host certificate table yields the VLEK, ASVK and ARK that verify', () => {
    const c = realCase('constellation-aws-milan-vlek-2023');
    const table = parseCertTable(readVector('snp', c.name, 'certs_table.bin'));
    const vlek = findCert(table, CertGuid.VLEK);
    assert.ok(vlek, 'the table has a VLEK entry');
    assert.deepEqual(Buffer.from(vlek), Buffer.from(c.certs.leaf));
    assert.equal(findCert(table, CertGuid.VCEK), undefined);
    const ask = findCert(table, CertGuid.ASK);
    const ark = findCert(table, CertGuid.ARK);
    const certs = { leaf: vlek, intermediate: ask ?? c.certs.intermediate, root: ark ?? c.certs.root };
    if (ask) assert.deepEqual(Buffer.from(ask), Buffer.from(c.certs.intermediate));
    const v = verifySnp(c.report, { now: c.now, certs });
    assert.equal(v.signer, 'VLEK');
    assert.equal(v.leaf.cspId, 'CN=cc-test.amazonaws.com');
  });
});

describe('SNP verification rejects tampered real evidence', needsVectors, () => {
  for (const name of ['microsoft-tav-milan', 'microsoft-tav-turin', 'constellation-aws-milan-vlek-2023']) {
    it(`${name}: any flipped signed byte never verifies (typed error)`, () => {
      const c = realCase(name);
      const verifier = new SnpVerifier();
      verifier.verify(c.report, { now: c.now, certs: c.certs }); // warm: the property exercises the hot path
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 0x29f }), fc.integer({ min: 1, max: 255 }), (off, x) => {
          const b = Uint8Array.from(c.reportBytes);
          b[off]! ^= x;
          try {
            verifier.verify(parseReport(b), { now: c.now, certs: c.certs });
          } catch (e) {
            assert.ok(e instanceof AttestationError, `non-typed error ${String(e)}`);
            return;
          }
          assert.fail(`flip at 0x${off.toString(16)} verified`);
        }),
        { numRuns: 150 },
      );
    });
  }

  it('flips of every byte of REPORTED_TCB, CHIP_ID and REPORT_DATA fail the signature', () => {
    const c = realCase('microsoft-tav-milan');
    const verifier = new SnpVerifier();
    for (const off of [0x180, 0x187, 0x1a0, 0x1df, 0x050, 0x08f]) {
      const b = patched(c.reportBytes, { [off]: [c.reportBytes[off]! ^ 1] });
      throwsCode(
        () => verifier.verify(parseReport(b), { now: c.now, certs: c.certs }),
        ErrorCode.SignatureInvalid,
        'snp.signature',
      );
    }
  });

  it('verifyAsync (signature on the thread pool) agrees with verify: same result, same refusals', async () => {
    for (const name of ['microsoft-tav-milan', 'microsoft-tav-turin', 'constellation-aws-milan-vlek-2023']) {
      const c = realCase(name);
      const verifier = new SnpVerifier();
      const opts = { now: c.now, certs: c.certs };
      assert.deepEqual(await verifier.verifyAsync(c.report, opts), verifier.verify(c.report, opts));
      // A flipped REPORT_DATA byte (offset 0x50 = 80): the signature fails on the thread pool as on the loop.
      const b = patched(c.reportBytes, { 80: [c.reportBytes[80]! ^ 1] });
      await assert.rejects(verifier.verifyAsync(parseReport(b), opts), {
        code: ErrorCode.SignatureInvalid,
        reason: 'snp.signature',
      });
      // R with a bit above 384: refused before any signature work, as verify refuses it.
      const wide = patched(c.reportBytes, { [0x2a0 + 50]: [1] });
      await assert.rejects(verifier.verifyAsync(parseReport(wide), opts), {
        code: ErrorCode.SignatureInvalid,
        reason: 'snp.signature_format',
      });
    }
  });

  it('SIGNATURE_ALGO other than 1 is refused before any signature work', () => {
    const c = realCase('microsoft-tav-milan');
    for (const algo of [0, 2]) {
      const r = parseReport(patched(c.reportBytes, { 52: [algo, 0, 0, 0] }));
      throwsCode(
        () => verifySnp(r, { now: c.now, certs: c.certs }),
        ErrorCode.SignatureInvalid,
        'snp.signature_algo',
      );
    }
  });

  it('MASK_CHIP_KEY, SIGNING_KEY none, and a SIGNING_KEY that names the other key kind', () => {
    const c = realCase('microsoft-tav-milan');
    const at = (v: number) => parseReport(patched(c.reportBytes, { 72: [v, 0, 0, 0] }));
    const opts = { now: c.now, certs: c.certs };
    throwsCode(() => verifySnp(at(0b10), opts), ErrorCode.SignatureInvalid, 'snp.mask_chip_key');
    throwsCode(() => verifySnp(at(7 << 2), opts), ErrorCode.SignatureInvalid, 'snp.signing_key_none');
    throwsCode(() => verifySnp(at(1 << 2), opts), ErrorCode.ChainInvalid, 'snp.leaf_kind_mismatch');
    const vlek = realCase('constellation-aws-milan-vlek-2024');
    const asVcek = parseReport(patched(vlek.reportBytes, { 72: [0, 0, 0, 0] }));
    throwsCode(
      () => verifySnp(asVcek, { now: vlek.now, certs: vlek.certs }),
      ErrorCode.ChainInvalid,
      'snp.leaf_kind_mismatch',
    );
  });

  it("a Milan report with another product's chain fails, even the real Genoa ARK", () => {
    const milan = realCase('microsoft-tav-milan');
    const genoa = realCase('microsoft-tav-genoa');
    const mixed = (certs: Partial<typeof milan.certs>) => () =>
      verifySnp(milan.report, { now: milan.now, certs: { ...milan.certs, ...certs } });
    // Milan VCEK and ASK under the Genoa ARK.
    throwsCode(mixed({ root: genoa.certs.root }), ErrorCode.ChainInvalid, 'snp.chain.root_untrusted');
    // Milan VCEK under the Genoa ASK and ARK.
    throwsCode(
      mixed({ intermediate: genoa.certs.intermediate, root: genoa.certs.root }),
      ErrorCode.ChainInvalid,
      'snp.chain.root_untrusted',
    );
    // The whole Genoa chain: the report's CPUID says Milan, the leaf says Genoa.
    throwsCode(mixed(genoa.certs), ErrorCode.BindingMismatch, 'snp.product_mismatch');
    // Milan VCEK, Genoa ASK, Milan ARK: the ASK is not signed by the Milan ARK (and is named SEV-Genoa).
    throwsCode(
      mixed({ intermediate: genoa.certs.intermediate }),
      ErrorCode.ChainInvalid,
      'snp.chain.intermediate_issuer',
    );
    // The Milan ASK offered as the root.
    throwsCode(mixed({ root: milan.certs.intermediate }), ErrorCode.ChainInvalid, 'snp.chain.root_untrusted');
  });

  it('a VCEK under the ASVK, and a v2 report with a conflicting options.product', () => {
    const c = realCase('google-go-sev-guest-milan-v2');
    throwsCode(
      () =>
        verifySnp(c.report, { now: c.now, certs: { ...c.certs, intermediate: amdCert('milan_asvk.pem') } }),
      ErrorCode.ChainInvalid,
      'snp.chain.intermediate_name',
    );
    throwsCode(
      () => verifySnp(c.report, { now: c.now, certs: c.certs, product: 'Genoa' }),
      ErrorCode.BindingMismatch,
      'snp.product_mismatch',
    );
    assert.equal(verifySnp(c.report, { now: c.now, certs: c.certs, product: 'Milan' }).product, 'Milan');
  });

  it('expired and not-yet-valid leaves fail, also on a warm verifier', () => {
    const vlek = realCase('constellation-aws-milan-vlek-2023');
    const verifier = new SnpVerifier();
    verifier.verify(vlek.report, { now: vlek.now, certs: vlek.certs });
    throwsCode(
      () => verifier.verify(vlek.report, { now: VCEK_DATE, certs: vlek.certs }),
      ErrorCode.ChainInvalid,
      'snp.chain.leaf_expired',
    );
    const vcek = realCase('google-go-sev-guest-milan-v2');
    verifier.verify(vcek.report, { now: vcek.now, certs: vcek.certs });
    throwsCode(
      () => verifier.verify(vcek.report, { now: new Date('2029-09-24T00:55:29Z'), certs: vcek.certs }),
      ErrorCode.ChainInvalid,
      'snp.chain.leaf_expired',
    );
    throwsCode(
      () => verifier.verify(vcek.report, { now: new Date('2022-09-24T00:55:27Z'), certs: vcek.certs }),
      ErrorCode.ChainInvalid,
      'snp.chain.leaf_not_yet_valid',
    );
    // The last second of validity is still valid (RFC 5280: notAfter is inclusive).
    assert.ok(verifier.verify(vcek.report, { now: new Date('2029-09-24T00:55:28Z'), certs: vcek.certs }));
    // The ARK itself expires in 2045.
    throwsCode(
      () => verifier.verify(vcek.report, { now: new Date('2046-01-01T00:00:00Z'), certs: vcek.certs }),
      ErrorCode.ChainInvalid,
      'snp.chain.root_expired',
    );
  });

  it('truncated, oversized and garbage certificates are MalformedEvidence', () => {
    const c = realCase('microsoft-tav-genoa');
    const run = (certs: Partial<typeof c.certs>) => () =>
      verifySnp(c.report, { now: c.now, certs: { ...c.certs, ...certs } });
    throwsCode(run({ leaf: c.certs.leaf.subarray(0, 700) }), ErrorCode.Malformed, 'snp.cert.der');
    throwsCode(
      run({ intermediate: Buffer.concat([c.certs.intermediate, Buffer.alloc(3)]) }),
      ErrorCode.Malformed,
      'snp.cert.der',
    );
    throwsCode(run({ root: new Uint8Array(70_000).fill(0x30) }), ErrorCode.Malformed, 'snp.cert.size');
    throwsCode(run({ root: new Uint8Array([1, 2, 3]) }), ErrorCode.Malformed, 'snp.cert.pem');
    throwsCode(run({ leaf: new Uint8Array(0) }), ErrorCode.Malformed, 'snp.cert.pem');
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 2000 }),
        fc.constantFrom('leaf', 'intermediate', 'root'),
        (b, which) => {
          b[0] = 0x30; // looks like DER
          try {
            run({ [which]: b })();
          } catch (e) {
            assert.ok(e instanceof AttestationError);
            return;
          }
          assert.fail('garbage verified');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('options are checked: now must be a Date, certs must be bytes', () => {
    const c = realCase('microsoft-tav-milan');
    throwsCode(
      () => verifySnp(c.report, { now: undefined as never, certs: c.certs }),
      ErrorCode.InvalidArgument,
      'snp.options.now',
    );
    throwsCode(
      () => verifySnp(c.report, { now: new Date(Number.NaN), certs: c.certs }),
      ErrorCode.InvalidArgument,
      'snp.options.now',
    );
    throwsCode(
      () => verifySnp(c.report, { now: c.now, certs: { ...c.certs, leaf: 'pem' as never } }),
      ErrorCode.InvalidArgument,
      'snp.options.certs',
    );
    throwsCode(
      () => verifySnp(c.report, { now: c.now, certs: c.certs, crl: 'x' as never }),
      ErrorCode.InvalidArgument,
      'snp.options.crl',
    );
  });

  it('a result cannot be used to alter the cache (leaf dates, hwID, SPLs are copies)', () => {
    const c = realCase('microsoft-tav-milan');
    const verifier = new SnpVerifier();
    const v = verifier.verify(c.report, { now: c.now, certs: c.certs });
    v.leaf.notAfter.setTime(Date.parse('2099-01-01'));
    v.leaf.hwId!.fill(0);
    (v.leaf.spl as { bl: number }).bl = 99;
    throwsCode(
      () => verifier.verify(c.report, { now: new Date('2040-01-01'), certs: c.certs }),
      ErrorCode.ChainInvalid,
      'snp.chain.leaf_expired',
    );
    const again = verifier.verify(c.report, { now: c.now, certs: c.certs });
    assert.equal(again.leaf.spl.bl, c.expected.leaf_cert_fields.blSPL);
    assert.equal(again.chipIdChecked, true);
  });
});
