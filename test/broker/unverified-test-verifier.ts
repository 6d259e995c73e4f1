/**
 * TEST ONLY. A stand-in for the real SEV-SNP verifier (src/policy/tees.ts over src/evidence/snp): it parses
 * the report and checks NOTHING else: no signature, no certificate chain, no TCB binding. It exists so the
 * broker's own logic can be tested with reports built by encodeReport; it must never be wired into
 * anything outside test/. Its `native` is the parsed report (what testAppraiser reads).
 */
import { createHash } from 'node:crypto';
import type { VerifyEvidence } from '../../src/broker/types.js';
import { decodeGuestPolicy, parseReport } from '../../src/formats/snp/index.js';

export const unverifiedTestVerifier: VerifyEvidence = async (tee, bytes) => {
  const report = parseReport(bytes);
  return {
    claims: {
      tee,
      measurements: { measurement: report.measurement },
      identityField: { name: 'HOST_DATA', value: report.hostData },
      launchId: { name: 'REPORT_ID', value: report.reportId },
      reportData: report.reportData,
      tcb: {},
      debug: decodeGuestPolicy(report.policy).debug,
      evidenceDigest: createHash('sha256').update(bytes).digest('hex'),
      details: { measurement: Buffer.from(report.measurement).toString('hex') },
    },
    native: report,
  };
};
