import { createHash } from 'node:crypto';
import type { VerifiedEvidence, VerifyEvidence } from '../broker/types.js';
import type { KdsClient } from '../collateral/kds-client.js';
import { CollateralUnavailable, NotSupported } from '../errors.js';
import type { SnpCerts, SnpVerifier, TrustedRoot } from '../evidence/snp/index.js';
import {
  CertGuid,
  decodeSignerInfo,
  findCert,
  parseCertTable,
  parseReport,
  productFromCpuid,
  SigningKey,
  type SnpProduct,
  type SnpReport,
} from '../formats/snp/index.js';

export interface SnpEvidenceOptions {
  /** One verifier per process: it caches verified chains. */
  readonly verifier: SnpVerifier;
  /** Roots trusted besides AMD's pinned ARKs (e.g. the simulator's). Empty: AMD only. */
  readonly trustedRoots: readonly TrustedRoot[];
  /**
   * Where certificates come from when the host's certificate table lacks them (the real SVSM sends none):
   * AMD KDS through this client, or `'none'` (then a report without a complete table is refused with
   * CollateralUnavailable `api.collateral.certs_missing`).
   */
  readonly kds: KdsClient | 'none';
  /** `'kds'`: fetch and check the CRL of the chain (needs `kds`); `'none'`: revocation is not checked. */
  readonly crl: 'kds' | 'none';
  /** Clock (ms since the epoch) for certificate validity. */
  readonly now: () => number;
}

/**
 * The broker's evidence verifier (its `verifyEvidence`): parses the report, takes the VCEK/VLEK, ASK/ASVK
 * and ARK from the host's certificate table first and from AMD KDS for whatever is missing, then verifies
 * signature and chain with src/evidence/snp (AMD's pinned roots plus `trustedRoots`). A certificate table
 * that does not parse is refused rather than replaced (it is hostile input, not absent input).
 *
 * Throws what the verifier throws (ERR_SIGNATURE_INVALID, ERR_CHAIN_INVALID, ERR_BINDING_MISMATCH,
 * ERR_MALFORMED `snp.*`), NotSupported `api.tee`, CollateralUnavailable `api.collateral.*` / `kds.*`.
 */
export function createSnpEvidenceVerifier(opts: SnpEvidenceOptions): VerifyEvidence {
  if (opts.crl === 'kds' && opts.kds === 'none') {
    throw new TypeError("crl: 'kds' needs a KDS client");
  }
  return async (tee, reportBytes, certTable): Promise<VerifiedEvidence> => {
    if (tee !== 'snp') throw new NotSupported('api.tee', `TEE ${String(tee)} is not supported`);
    const report = parseReport(reportBytes);
    const vlek = decodeSignerInfo(report.signerInfo).signingKey === SigningKey.VLEK;
    const certs = await certificatesFor(report, vlek, certTable, opts);
    const now = new Date(opts.now());
    let crl: Uint8Array | undefined;
    if (opts.crl === 'kds' && opts.kds !== 'none') {
      // The product decides which CRL; without CPUID the verifier learns it from the leaf first.
      const product =
        cpuidProduct(report) ??
        opts.verifier.verify(report, { now, certs, trustedRoots: opts.trustedRoots }).product;
      crl = (await opts.kds.getCrl(product, vlek ? 'vlek' : 'vcek')).der;
    }
    const v = opts.verifier.verify(report, {
      now,
      certs,
      trustedRoots: opts.trustedRoots,
      ...(crl ? { crl } : {}),
    });
    return {
      report: v.report,
      product: v.product,
      evidenceDigest: createHash('sha256').update(reportBytes).digest('hex'),
    };
  };
}

function cpuidProduct(report: SnpReport): SnpProduct | undefined {
  const c = report.cpuid;
  if (!c || (c.family | c.model | c.stepping) === 0) return undefined;
  return productFromCpuid(c.family, c.model);
}

async function certificatesFor(
  report: SnpReport,
  vlek: boolean,
  certTable: Uint8Array | undefined,
  opts: SnpEvidenceOptions,
): Promise<SnpCerts> {
  let leaf: Uint8Array | undefined;
  let intermediate: Uint8Array | undefined;
  let root: Uint8Array | undefined;
  if (certTable !== undefined && certTable.length > 0) {
    const entries = parseCertTable(certTable);
    leaf = findCert(entries, vlek ? CertGuid.VLEK : CertGuid.VCEK);
    intermediate = findCert(entries, CertGuid.ASK);
    root = findCert(entries, CertGuid.ARK);
  }
  if (leaf && intermediate && root) return { leaf, intermediate, root };

  const kds = opts.kds;
  if (kds === 'none') {
    throw new CollateralUnavailable(
      'api.collateral.certs_missing',
      'the report came without a complete certificate table and KDS is not configured',
    );
  }
  const product = cpuidProduct(report);
  if (!product) {
    throw new CollateralUnavailable(
      'api.collateral.product_unknown',
      'the report names no product (no CPUID): send the certificate table',
    );
  }
  if (!leaf) {
    if (vlek) {
      throw new CollateralUnavailable(
        'api.collateral.vlek_missing',
        'KDS does not serve VLEKs: send the certificate table',
      );
    }
    leaf = await kds.getVcekForReport(report, product);
  }
  if (!intermediate || !root) {
    const chain = await kds.getCertChain(product, vlek ? 'vlek' : 'vcek');
    intermediate ??= chain.intermediate;
    root ??= chain.ark;
  }
  return { leaf, intermediate, root };
}
