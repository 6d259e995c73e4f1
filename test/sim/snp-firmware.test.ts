import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import {
  CertGuid,
  decodeSignerInfo,
  encodeGuestPolicy,
  findCert,
  parseCertTable,
  parseReport,
  SigningKey,
} from '../../src/formats/snp/index.js';
import { certTableFor, SimSnpFirmware, sharedSimChain } from '../../src/sim/snp/index.js';
import { publicKeyOf } from './der-helpers.js';
import { verifyReportSignature } from './report-signing.js';

const measurement = new Uint8Array(createHash('sha384').update('guest image').digest());
const hostData = new Uint8Array(32).fill(0x42);
const policy = encodeGuestPolicy({ abiMajor: 1, abiMinor: 55, smt: true });
const invalid = (reason: string) => (e: unknown) => {
  assert.equal((e as { code: string }).code, ErrorCode.InvalidArgument);
  assert.equal((e as { reason: string }).reason, reason);
  return true;
};

describe('SimSnpFirmware', () => {
  it('answers with a signed report carrying the launch parameters and zero-padded REPORT_DATA', async () => {
    const chain = await sharedSimChain('Milan');
    const idKeyDigest = new Uint8Array(48).fill(3);
    const familyId = new Uint8Array(16).fill(4);
    const fw = new SimSnpFirmware(chain, {
      measurement,
      policy,
      hostData,
      idKeyDigest,
      familyId,
      guestSvn: 7,
    });
    const nonce = new Uint8Array([1, 2, 3]);
    const { report, certTable } = fw.getReport(nonce);
    assert.ok(verifyReportSignature(report, publicKeyOf(chain.vcek.der)));
    const r = parseReport(report);
    assert.deepEqual(r.measurement, measurement);
    assert.deepEqual(r.hostData, hostData);
    assert.equal(r.policy, policy);
    assert.deepEqual(r.idKeyDigest, idKeyDigest);
    assert.deepEqual(r.familyId, familyId);
    assert.equal(r.guestSvn, 7);
    assert.deepEqual(r.reportData, Uint8Array.from([1, 2, 3, ...new Array<number>(61).fill(0)]));
    assert.deepEqual(r.chipId, chain.chipId);
    assert.equal(decodeSignerInfo(r.signerInfo).authorKeyEn, false);
    assert.deepEqual(certTable, certTableFor(chain, 'VCEK'));
  });

  it('keeps one REPORT_ID for the guest lifetime; different guests differ', async () => {
    const chain = await sharedSimChain('Milan');
    const fw = new SimSnpFirmware(chain, { measurement, policy, hostData });
    const a = parseReport(fw.getReport(new Uint8Array(64)).report);
    const b = parseReport(fw.getReport(new Uint8Array(64).fill(1)).report);
    assert.deepEqual(a.reportId, b.reportId);
    assert.deepEqual(a.reportId, fw.reportId);
    const other = new SimSnpFirmware(chain, { measurement, policy, hostData });
    assert.notDeepEqual(parseReport(other.getReport(new Uint8Array(0)).report).reportId, a.reportId);
  });

  it('VMPL: defaults to the caller level, allows higher levels, refuses more privileged ones', async () => {
    const chain = await sharedSimChain('Milan');
    const fw = new SimSnpFirmware(chain, { measurement, policy, hostData, vmpl: 1 });
    assert.equal(parseReport(fw.getReport(new Uint8Array(0)).report).vmpl, 1);
    assert.equal(parseReport(fw.getReport(new Uint8Array(0), { vmpl: 3 }).report).vmpl, 3);
    assert.throws(() => fw.getReport(new Uint8Array(0), { vmpl: 0 }), invalid('sim.snp.vmpl'));
    assert.throws(() => fw.getReport(new Uint8Array(0), { vmpl: 4 }), invalid('sim.snp.vmpl'));
  });

  it('a VLEK platform signs with the VLEK and returns the VLEK/ASVK/ARK table', async () => {
    const chain = await sharedSimChain('Milan');
    const fw = new SimSnpFirmware(chain, { measurement, policy, hostData, signer: 'VLEK' });
    const { report, certTable } = fw.getReport(new Uint8Array(64).fill(9));
    assert.ok(verifyReportSignature(report, publicKeyOf(chain.vlek.der)));
    assert.equal(verifyReportSignature(report, publicKeyOf(chain.vcek.der)), false);
    const r = parseReport(report);
    assert.equal(decodeSignerInfo(r.signerInfo).signingKey, SigningKey.VLEK);
    assert.ok(r.chipId.every((b) => b === 0));
    const entries = parseCertTable(certTable);
    assert.deepEqual(
      entries.map((e) => e.guid),
      [CertGuid.VLEK, CertGuid.ASK, CertGuid.ARK],
    );
    assert.deepEqual(findCert(entries, CertGuid.VLEK), chain.vlek.der);
    assert.deepEqual(findCert(entries, CertGuid.ASK), chain.asvk.der);
    assert.deepEqual(findCert(entries, CertGuid.ARK), chain.ark.der);
  });

  it('the VCEK certificate table parses back to the VCEK, ASK and ARK', async () => {
    const chain = await sharedSimChain('Milan');
    const entries = parseCertTable(certTableFor(chain, 'VCEK'));
    assert.deepEqual(
      entries.map((e) => e.guid),
      [CertGuid.VCEK, CertGuid.ASK, CertGuid.ARK],
    );
    assert.deepEqual(findCert(entries, CertGuid.VCEK), chain.vcek.der);
    assert.deepEqual(findCert(entries, CertGuid.ASK), chain.ask.der);
  });

  it('host MASK_CHIP_ID zeroes CHIP_ID; MASK_CHIP_KEY sets the bit and leaves the signature zero', async () => {
    const chain = await sharedSimChain('Milan');
    const masked = new SimSnpFirmware(chain, { measurement, policy, hostData, maskChipId: true });
    const r1 = masked.getReport(new Uint8Array(0)).report;
    assert.ok(parseReport(r1).chipId.every((b) => b === 0));
    assert.ok(verifyReportSignature(r1, publicKeyOf(chain.vcek.der)));
    const unsigned = new SimSnpFirmware(chain, { measurement, policy, hostData, maskChipKey: true });
    const r2 = unsigned.getReport(new Uint8Array(0)).report;
    assert.equal(decodeSignerInfo(parseReport(r2).signerInfo).maskChipKey, true);
    assert.ok(r2.subarray(0x2a0).every((b) => b === 0));
    assert.equal(verifyReportSignature(r2, publicKeyOf(chain.vcek.der)), false);
  });

  it('an author key digest sets AUTHOR_KEY_EN; reportFields force further fields', async () => {
    const chain = await sharedSimChain('Milan');
    const authorKeyDigest = new Uint8Array(48).fill(5);
    const fw = new SimSnpFirmware(chain, {
      measurement,
      policy,
      hostData,
      authorKeyDigest,
      reportFields: { version: 2, committedTcb: 0n },
    });
    const r = parseReport(fw.getReport(new Uint8Array(0)).report);
    assert.equal(decodeSignerInfo(r.signerInfo).authorKeyEn, true);
    assert.deepEqual(r.authorKeyDigest, authorKeyDigest);
    assert.equal(r.version, 2);
    assert.equal(r.committedTcb, 0n);
  });

  it('refuses bad launch parameters and oversized REPORT_DATA', async () => {
    const chain = await sharedSimChain('Milan');
    const ok = { measurement, policy, hostData };
    assert.throws(
      () => new SimSnpFirmware(chain, { ...ok, measurement: new Uint8Array(32) }),
      invalid('sim.snp.measurement'),
    );
    assert.throws(
      () => new SimSnpFirmware(chain, { ...ok, hostData: new Uint8Array(48) }),
      invalid('sim.snp.host_data'),
    );
    assert.throws(() => new SimSnpFirmware(chain, { ...ok, policy: 0n }), invalid('sim.snp.policy'));
    assert.throws(
      () => new SimSnpFirmware(chain, { ...ok, policy: policy | (1n << 40n) }),
      invalid('sim.snp.policy'),
    );
    assert.throws(() => new SimSnpFirmware(chain, { ...ok, vmpl: 4 }), invalid('sim.snp.vmpl'));
    assert.throws(
      () => new SimSnpFirmware(chain, ok).getReport(new Uint8Array(65)),
      invalid('sim.snp.report_data'),
    );
  });
});
