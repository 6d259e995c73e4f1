import { parseReport, type SnpReport } from '../../formats/snp/index.js';
import type { EvidenceType } from '../types.js';
import { type SnpClaims, toSnpClaims } from './claims.js';
import { type SnpVerified, SnpVerifier, type SnpVerifyOptions } from './verify.js';

export {
  type AmdCa,
  type AmdLeaf,
  type AmdSigner,
  type AmdSpl,
  leafTcb,
  parseAmdCa,
  parseAmdLeaf,
} from './amd-cert.js';
export {
  reportClaims,
  type SnpClaims,
  type SnpReportClaims,
  type SnpTcbClaims,
  tcbClaims,
  toSnpClaims,
} from './claims.js';
export { type AmdCrl, parseCrl } from './crl.js';
export { type CertInputs, type CertSource, type ResolvedCerts, resolveSnpCerts } from './resolve-certs.js';
export { PINNED_ARK_SHA256, type TrustedRoot } from './roots.js';
export {
  DEFAULT_CACHE_ENTRIES,
  type SnpCerts,
  type SnpLeafInfo,
  type SnpVerified,
  SnpVerifier,
  type SnpVerifyOptions,
  verifySnp,
} from './verify.js';
export { loadDer } from './x509.js';

/**
 * The process-wide verifier behind {@link snpEvidence}: its cache holds only chains that verified, keyed by
 * their content, and it re-checks the clock and the caller's trusted roots on every call.
 */
const shared = new SnpVerifier();

/** SEV-SNP as an {@link EvidenceType}: parse = parseReport, verify = SnpVerifier.verify, toClaims. */
export const snpEvidence: EvidenceType<SnpReport, SnpVerified, SnpClaims, SnpVerifyOptions> = {
  tee: 'snp',
  parse: parseReport,
  verify: (parsed, opts) => shared.verify(parsed, opts),
  toClaims: toSnpClaims,
};
