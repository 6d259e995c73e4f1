import type { KdsClient } from '../../collateral/kds-client.js';
import { InvalidArgument } from '../../errors.js';
import {
  decodeSignerInfo,
  parseReport,
  SigningKey,
  type SnpProduct,
  type SnpReport,
} from '../../formats/snp/index.js';
import { type CertSource, resolveSnpCerts } from './resolve-certs.js';
import type { TrustedRoot } from './roots.js';
import { type SnpVerified, SnpVerifier } from './verify.js';

/**
 * Where missing collateral comes from: AMD KDS (src/collateral KdsClient, cache first) or anything shaped
 * like it (a test double, an offline import). Passed in, never reached for: the verifier core does no I/O.
 */
export type SnpCollateralGetter = Pick<KdsClient, 'getVcekForReport' | 'getCertChain' | 'getCrl'>;

/** SEV-SNP evidence as a caller received it: the report and whatever collateral came with it. */
export interface SnpAttestationInput {
  /** The 1184-byte ATTESTATION_REPORT, raw or already parsed. */
  readonly report: Uint8Array | SnpReport;
  /** The extended report's certificate table (GHCB 56421 §4.1.8.1) as the host returned it. */
  readonly certTable?: Uint8Array;
  /** Certificates given explicitly (DER or PEM); they win over the table and KDS. */
  readonly certs?: {
    /** VCEK or VLEK. */
    readonly leaf?: Uint8Array;
    /** ASK or ASVK. */
    readonly intermediate?: Uint8Array;
    /** ARK. */
    readonly root?: Uint8Array;
  };
  /** A CRL (DER or PEM) for the chain, given explicitly: always checked. */
  readonly crl?: Uint8Array;
}

/**
 * The options of {@link verifySnpAttestation}: go-sev-guest's `verify.Options{Getter, Now, TrustedRoots,
 * CheckRevocations}`, plus the product for v2 reports and the verifier (cache) to use.
 */
export interface SnpAttestationOptions {
  /** The time at which every certificate (and the CRL) must be valid. */
  readonly now: Date;
  /** Roots trusted besides AMD's pinned ARKs (e.g. the simulator's). Empty or absent: AMD only. */
  readonly trustedRoots?: readonly TrustedRoot[];
  /**
   * Fetches what the input lacks: the VCEK and the ASK/ARK (never a VLEK: KDS does not serve them), and
   * the CRL when `checkRevocations` is set. Absent: only the input's own certificates are used.
   */
  readonly getter?: SnpCollateralGetter;
  /**
   * Fetch the chain's CRL through `getter` (when the input carries none) and check the ASK/ASVK against it.
   * Needs `getter` (InvalidArgument `snp.options.getter`).
   */
  readonly checkRevocations?: boolean;
  /** Accept a CRL up to this long past its nextUpdate (ms; default 0). SnpVerifyOptions.crlGraceMs. */
  readonly crlGraceMs?: number;
  /** The product of a v2 report whose certificates do not name one. */
  readonly product?: SnpProduct;
  /** The verifier and its cache of verified chains (default: one shared per process). */
  readonly verifier?: SnpVerifier;
}

/** The result of {@link verifySnpAttestation}: what the verifier proved, and where each certificate came from. */
export interface SnpAttestation {
  readonly verified: SnpVerified;
  readonly sources: {
    readonly leaf: CertSource;
    readonly intermediate: CertSource;
    readonly root: CertSource;
  };
}

/** The process-wide verifier: its cache holds only chains that verified, keyed by their content. */
const shared = new SnpVerifier();

/**
 * The one SEV-SNP attestation pipeline, used by the broker, the KBS, the CA and the CLI alike:
 * 1. parse the report (when given raw);
 * 2. gather the VCEK/VLEK, ASK/ASVK and ARK certificate by certificate: explicit certificates first, then
 *    the certificate table, then `getter` for whatever is still missing (src/evidence/snp resolveSnpCerts;
 *    a table that does not parse is refused, not replaced: it is hostile input, not absent input);
 * 3. the CRL: the one given, else with `checkRevocations` the getter's for the chain's product and signer;
 * 4. verify signature, chain to a pinned root, CRL, REPORTED_TCB and CHIP_ID binding (SnpVerifier.verify,
 *    pure: the clock and every byte of collateral are passed in).
 *
 * Throws what the verifier throws (SignatureInvalid, ChainInvalid, BindingMismatch, MalformedEvidence
 * `snp.*`, NotSupported `snp.product_unknown`), CollateralUnavailable `snp.certs_missing` /
 * `snp.vlek_missing` / `kds.*`, InvalidArgument `snp.product_unknown` (v2 report, product needed for the
 * getter and unknown), `snp.options.getter` (`checkRevocations` without a getter).
 */
export async function verifySnpAttestation(
  input: SnpAttestationInput,
  opts: SnpAttestationOptions,
): Promise<SnpAttestation> {
  if (opts.checkRevocations && !opts.getter) {
    throw new InvalidArgument('snp.options.getter', 'checkRevocations needs a collateral getter');
  }
  const report = input.report instanceof Uint8Array ? parseReport(input.report) : input.report;
  const verifier = opts.verifier ?? shared;
  const given = input.certs ?? {};
  const resolved = await resolveSnpCerts(report, {
    ...(given.leaf ? { leaf: given.leaf } : {}),
    ...(given.intermediate ? { intermediate: given.intermediate } : {}),
    ...(given.root ? { root: given.root } : {}),
    ...(input.certTable !== undefined && input.certTable.length > 0 ? { certTable: input.certTable } : {}),
    ...(opts.getter ? { kds: opts.getter } : {}),
    ...(opts.product ? { product: opts.product } : {}),
  });
  const product = resolved.product ?? opts.product;
  const base = {
    now: opts.now,
    certs: resolved.certs,
    ...(product ? { product } : {}),
    ...(opts.trustedRoots ? { trustedRoots: opts.trustedRoots } : {}),
  };
  let crl = input.crl;
  if (!crl && opts.checkRevocations && opts.getter) {
    // The product picks the CRL; when neither CPUID nor the leaf names it, the verifier learns it (and
    // caches the chain, so the second verification below is a warm one).
    const p = product ?? verifier.verify(report, base).product;
    const vlek = decodeSignerInfo(report.signerInfo).signingKey === SigningKey.VLEK;
    crl = (await opts.getter.getCrl(p, vlek ? 'vlek' : 'vcek')).der;
  }
  // The report's signature is checked on the thread pool (verifyAsync): this is the path every release,
  // KBS attestation and CA request takes, many at once on one event loop.
  const verified = await verifier.verifyAsync(report, {
    ...base,
    ...(crl ? { crl } : {}),
    ...(crl && opts.crlGraceMs ? { crlGraceMs: opts.crlGraceMs } : {}),
  });
  return { verified, sources: resolved.sources };
}
