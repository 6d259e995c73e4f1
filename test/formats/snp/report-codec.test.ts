import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeSignerInfo,
  decodeTcb,
  encodeReport,
  parseReport,
  productFromCpuid,
  productFromName,
  type SnpProduct,
} from '../../../src/formats/snp/index.js';
import { toHex } from '../../../src/util/bytes.js';
import { needsVectors, readVector, readVectorJson, vectorCases } from '../../helpers/vectors.js';

const hex = (n: bigint | number) => `0x${n.toString(16)}`;

// Oracle data from expected.json (descriptive field names, see vectors/README.md).
// biome-ignore lint/suspicious/noExplicitAny: untyped JSON
type Json = any;

function productOf(expected: Json): SnpProduct {
  const name = expected.leaf_cert_fields.productName as string;
  return productFromName(name)!.product;
}

function tcbMatches(raw: bigint, product: SnpProduct, want: Json) {
  const t = decodeTcb(raw, product);
  assert.equal(hex(raw), want.raw);
  assert.equal(t.bootloader, want.bl);
  assert.equal(t.tee, want.tee);
  assert.equal(t.snp, want.snp);
  assert.equal(t.microcode, want.ucode);
  if ('fmc' in want) assert.equal(t.fmc, want.fmc);
}

function checkFields(report: ReturnType<typeof parseReport>, f: Json, product: SnpProduct) {
  assert.equal(report.version, f.version);
  assert.equal(report.guestSvn, f.guest_svn);
  assert.equal(hex(report.policy), f.policy);
  assert.equal(toHex(report.familyId), f.family_id);
  assert.equal(toHex(report.imageId), f.image_id);
  assert.equal(report.vmpl, f.vmpl);
  assert.equal(report.signatureAlgo, f.sig_algo);
  assert.equal(hex(report.platformInfo), f.platform_info);
  const si = decodeSignerInfo(report.signerInfo);
  assert.equal(hex(si.raw), f.signer_info.raw);
  assert.equal(Number(si.authorKeyEn), f.signer_info.author_key_en);
  assert.equal(Number(si.maskChipKey), f.signer_info.mask_chip_key);
  assert.equal(si.signingKey, f.signer_info.signing_key);
  assert.equal(toHex(report.reportData), f.report_data);
  assert.equal(toHex(report.measurement), f.measurement);
  assert.equal(toHex(report.hostData), f.host_data);
  assert.equal(toHex(report.idKeyDigest), f.id_key_digest);
  assert.equal(toHex(report.authorKeyDigest), f.author_key_digest);
  assert.equal(toHex(report.reportId), f.report_id);
  assert.equal(toHex(report.reportIdMa), f.report_id_ma);
  assert.equal(toHex(report.chipId), f.chip_id);
  for (const [field, key] of [
    ['currentTcb', 'current_tcb'],
    ['reportedTcb', 'reported_tcb'],
    ['committedTcb', 'committed_tcb'],
    ['launchTcb', 'launch_tcb'],
  ] as const) {
    tcbMatches(report[field], product, f[key]);
  }
  if (f.cpuid_fam_mod_step === null) assert.equal(report.cpuid, undefined);
  else {
    const [fam, mod, step] = f.cpuid_fam_mod_step;
    assert.deepEqual(report.cpuid, { family: Number(fam), model: Number(mod), stepping: step });
    assert.equal(productFromCpuid(report.cpuid!.family, report.cpuid!.model), product);
  }
  assert.equal(`${report.currentMajor}.${report.currentMinor}.${report.currentBuild}`, f.current_version);
  assert.equal(
    `${report.committedMajor}.${report.committedMinor}.${report.committedBuild}`,
    f.committed_version,
  );
  assert.equal(
    report.launchMitVector === undefined ? null : hex(report.launchMitVector),
    f.launch_mit_vector,
  );
  assert.equal(
    report.currentMitVector === undefined ? null : hex(report.currentMitVector),
    f.current_mit_vector,
  );
}

describe('SNP report codec on real hardware reports', needsVectors, () => {
  for (const name of vectorCases('snp')) {
    it(`${name}: decodes to the values in expected.json and re-encodes byte-exactly`, () => {
      const expected = readVectorJson('snp', name, 'expected.json');
      const product = productOf(expected);
      const files: [string, Json][] = [['report.bin', expected.report_fields]];
      if (expected.report2_fields) files.push(['report2.bin', expected.report2_fields]);
      for (const [file, fields] of files) {
        const bytes = readVector('snp', name, file);
        const report = parseReport(bytes);
        checkFields(report, fields, product);
        assert.deepEqual(encodeReport(report), bytes);
      }
    });
  }
});
