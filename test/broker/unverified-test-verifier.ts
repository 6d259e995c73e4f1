/**
 * TEST ONLY. A stand-in for the real SNP verifier (another engineer's src/evidence/snp): it parses the
 * report and checks NOTHING else: no signature, no certificate chain, no TCB binding. It exists so the
 * broker's own logic can be tested with reports built by encodeReport; it must never be wired into
 * anything outside test/.
 */
import { createHash } from 'node:crypto';
import type { VerifyEvidence } from '../../src/broker/types.js';
import { parseReport } from '../../src/formats/snp/index.js';

export const unverifiedTestVerifier: VerifyEvidence = async (_tee, report) => ({
  report: parseReport(report),
  product: 'Milan',
  evidenceDigest: createHash('sha256').update(report).digest('hex'),
});
