import { InvalidArgument } from '../../errors.js';

/**
 * The pinned Intel SGX Root CA: SHA-256 of its DER (shared/vectors/intel/Intel_SGX_Root_CA.der, the
 * certificate Intel publishes at https://certificates.trustedservices.intel.com/Intel_SGX_Provisioning_
 * Certification_RootCA.cer; the root of every PCK chain in the real TDX quotes, and of the TCB Signing
 * chain of the collateral). A chain must end in exactly this certificate, not one with the same names.
 */
export const PINNED_INTEL_ROOT_SHA256 = '44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3';

const PINNED_ONLY: readonly string[] = Object.freeze([PINNED_INTEL_ROOT_SHA256]);

/**
 * SHA-256 (hex) of extra roots the caller trusts besides Intel's (the simulator's in tests and the demo).
 * Throws InvalidArgument `tdx.trusted_roots` on a bad entry.
 */
export function normalizeTdxRoots(roots: readonly string[] | undefined): readonly string[] {
  if (roots === undefined) return PINNED_ONLY;
  if (!Array.isArray(roots) || roots.some((r) => typeof r !== 'string' || !/^[0-9a-fA-F]{64}$/.test(r)))
    throw new InvalidArgument('tdx.trusted_roots', 'trustedRoots are SHA-256 hex digests');
  return [PINNED_INTEL_ROOT_SHA256, ...roots.map((r) => r.toLowerCase())];
}
