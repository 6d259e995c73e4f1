import { parseTdxQuote, type TdxQuote } from '../../formats/tdx/quote.js';
import type { EvidenceType } from '../types.js';
import { type TdxClaims, toTdxEvidenceClaims } from './claims.js';
import { type TdxVerified, type TdxVerifyOptions, verifyTdx } from './verify.js';

export { CcelRtmrMismatch, type VerifiedCcelLog, verifyCcelEventLog } from './ccel.js';
export { readPemChain } from './chain.js';
export {
  attributesOf,
  TD_ATTRIBUTES_DEBUG,
  type TdxClaims,
  toTdxClaims,
  toTdxEvidenceClaims,
} from './claims.js';
export { type SignedCollateral, type TdxCollateral, verifyCollateralSignatures } from './collateral.js';
export { normalizeTdxRoots, PINNED_INTEL_ROOT_SHA256 } from './roots.js';
export {
  type TdxCollateralQuery,
  type TdxCollateralSource,
  tdxCollateralQuery,
} from './source.js';
export { evaluateTdxTcb, type TdxTcbEvaluation } from './tcb.js';
export {
  TDX_CACHE_ENTRIES,
  type TdxVerified,
  TdxVerifier,
  type TdxVerifyOptions,
  verifyTdx,
} from './verify.js';

/** TDX evidence as received: the quote bytes (its PCK chain inside) and, separately, the collateral. */
export interface TdxEvidenceInput {
  readonly quote: Uint8Array;
}

/**
 * Intel TDX as an {@link EvidenceType}: parse = parseTdxQuote, verify = {@link verifyTdx} (collateral in
 * the options), toClaims = {@link toTdxEvidenceClaims}.
 */
export const tdxEvidence: EvidenceType<TdxEvidenceInput, TdxQuote, TdxVerified, TdxVerifyOptions, TdxClaims> =
  {
    tee: 'tdx',
    parse: (input) => parseTdxQuote(input.quote),
    verify: async (q, opts) => verifyTdx(q, opts),
    toClaims: toTdxEvidenceClaims,
  };
