import type { EvidenceType } from '../types.js';
import { type AzSnpVtpmClaims, toAzSnpVtpmClaims } from './claims.js';
import { type AzSnpVtpmInput, type ParsedAzSnpVtpm, parseAzSnpVtpm } from './parse.js';
import { type AzSnpVtpmVerified, type AzSnpVtpmVerifyOptions, verifyAzSnpVtpm } from './verify.js';

export {
  AZURE_IDENTITY_FIELD,
  type AzSnpVtpmClaims,
  azureVmIdentity,
  toAzSnpVtpmClaims,
} from './claims.js';
export { type AzSnpVtpmInput, type ParsedAzSnpVtpm, parseAzSnpVtpm } from './parse.js';
export { type AzSnpVtpmVerified, type AzSnpVtpmVerifyOptions, verifyAzSnpVtpm } from './verify.js';

/**
 * Azure confidential VM evidence (`az-snp-vtpm`: HCL report + vTPM quote) as an {@link EvidenceType}.
 * The TEE name is the KBS protocol's (kbs-types `Tee::AzSnpVtpm`).
 */
export const azSnpVtpmEvidence: EvidenceType<
  AzSnpVtpmInput,
  ParsedAzSnpVtpm,
  AzSnpVtpmVerified,
  AzSnpVtpmVerifyOptions,
  AzSnpVtpmClaims
> = {
  tee: 'az-snp-vtpm',
  parse: parseAzSnpVtpm,
  verify: verifyAzSnpVtpm,
  toClaims: toAzSnpVtpmClaims,
};
