import { InvalidArgument } from '../../errors.js';
import { isSnpProduct, type SnpProduct } from '../../formats/snp/index.js';

/**
 * Pinned AMD Root Keys: SHA-256 of each ARK certificate's DER.
 *
 * Computed from the AMD public certificates in shared/vectors/amd/{milan,genoa,turin}_ark.pem (the bodies
 * AMD KDS serves at /vcek/v1/{Product}/cert_chain, byte-identical in google/go-sev-guest, virtee/sev and
 * microsoft/TEE-Attestation-Verification). The ARK that ends the VLEK chains (/vlek/v1/{Product}/cert_chain,
 * *_ark_from_vlek_chain.pem) has the same DER for every product, so one pin per product covers both the
 * VCEK and the VLEK chain.
 *
 * A chain must end in exactly this root, not merely a root with the same names: go-sev-guest issue #185
 * accepted a forged chain under a self-made "ARK-Milan".
 */
export const PINNED_ARK_SHA256: Readonly<Record<SnpProduct, string>> = Object.freeze({
  Milan: '69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd',
  Genoa: '4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1',
  Turin: '1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a',
});

/**
 * An extra root the caller trusts for one product, e.g. the simulator's ARK in tests and demos. Extra roots
 * are never trusted unless configured; they are still checked (self-signature, names, CA constraints).
 */
export interface TrustedRoot {
  readonly product: SnpProduct;
  /** SHA-256 of the root certificate's DER, hex. */
  readonly sha256: string;
}

/** Validates configured roots; throws InvalidArgument `snp.trusted_roots` on a bad entry. */
export function normalizeTrustedRoots(roots: readonly TrustedRoot[] | undefined): readonly TrustedRoot[] {
  if (roots === undefined) return [];
  if (!Array.isArray(roots)) throw new InvalidArgument('snp.trusted_roots', 'trustedRoots must be an array');
  return roots.map((r) => {
    if (
      !r ||
      !isSnpProduct(r.product) ||
      typeof r.sha256 !== 'string' ||
      !/^[0-9a-fA-F]{64}$/.test(r.sha256)
    ) {
      throw new InvalidArgument(
        'snp.trusted_roots',
        'trustedRoots entries are {product, sha256 (64 hex digits)}',
      );
    }
    return { product: r.product, sha256: r.sha256.toLowerCase() };
  });
}

/**
 * How a root with SHA-256 `sha256` is trusted for `product`: `'pinned'` (AMD's ARK), `'configured'`
 * (an extra root the caller listed for that product) or undefined (not trusted). A pinned ARK of another
 * product is not trusted.
 */
export function rootTrust(
  sha256: string,
  product: SnpProduct,
  extra: readonly TrustedRoot[],
): 'pinned' | 'configured' | undefined {
  if (PINNED_ARK_SHA256[product] === sha256) return 'pinned';
  for (const r of extra) if (r.product === product && r.sha256 === sha256) return 'configured';
  return undefined;
}
