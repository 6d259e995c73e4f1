import { parseReport, type SnpReport } from '../../formats/snp/index.js';
import type { EvidenceType } from '../types.js';
import {
  type SnpAttestation,
  type SnpAttestationInput,
  type SnpAttestationOptions,
  verifySnpAttestation,
} from './attestation.js';
import { type SnpClaims, toSnpEvidenceClaims } from './claims.js';

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
  type SnpAttestation,
  type SnpAttestationInput,
  type SnpAttestationOptions,
  type SnpCollateralGetter,
  verifySnpAttestation,
} from './attestation.js';
export {
  reportClaims,
  type SnpClaims,
  type SnpReportClaims,
  type SnpTcbClaims,
  tcbClaims,
  toSnpClaims,
  toSnpEvidenceClaims,
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

/** SEV-SNP evidence after parsing: the report parsed, its collateral as received. */
export type ParsedSnpEvidence = SnpAttestationInput & { readonly report: SnpReport };

/**
 * SEV-SNP as an {@link EvidenceType}: parse = parseReport (the collateral is parsed where it is used),
 * verify = {@link verifySnpAttestation} (the one pipeline), toClaims = {@link toSnpEvidenceClaims}.
 */
export const snpEvidence: EvidenceType<
  SnpAttestationInput,
  ParsedSnpEvidence,
  SnpAttestation,
  SnpAttestationOptions,
  SnpClaims
> = {
  tee: 'snp',
  parse: (input) => ({
    ...input,
    report: input.report instanceof Uint8Array ? parseReport(input.report) : input.report,
  }),
  verify: verifySnpAttestation,
  toClaims: (a) => toSnpEvidenceClaims(a.verified),
};
