import { createHash } from 'node:crypto';
import type { VerifiedEvidence, VerifyEvidence } from '../../broker/types.js';
import type { KdsClient } from '../../collateral/kds-client.js';
import { AttestationError, CollateralUnavailable, NotSupported } from '../../errors.js';
import { decodeSignerInfo, parseReport, SigningKey } from '../../formats/snp/index.js';
import {
  type ResolvedCerts,
  resolveSnpCerts,
  type SnpVerified,
  SnpVerifier,
  type TrustedRoot,
} from './index.js';

export interface SnpEvidenceOptions {
  /** The verifier (and its cache of verified chains); default a new one. Use one per process. */
  readonly verifier?: SnpVerifier;
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
  /** Clock (ms since the epoch) for certificate and CRL validity. */
  readonly now: () => number;
}

/**
 * The broker's one SNP evidence verifier, shared by the native API and the KBS routes:
 * - `verifyEvidence` is BrokerOptions.verifyEvidence (the Broker calls it once per release);
 * - `withVerified` runs a release and hands back the full verification result of *that* call, so the KBS
 *   token's claims come from the verification the release decision rested on (no second verification,
 *   no cache keyed by content);
 * - `verify` verifies on its own (tools, tests).
 */
export interface SnpEvidenceVerifier {
  readonly verifyEvidence: VerifyEvidence;
  /**
   * Runs `fn` (which passes `report`, this very Uint8Array object, to a Broker built with
   * `verifyEvidence`) and returns its result with the SnpVerified of the verification made for `report`
   * during `fn`, or `verified: undefined` when none was (a Broker wired to another verifier).
   */
  withVerified<T>(
    report: Uint8Array,
    fn: () => Promise<T>,
  ): Promise<{ readonly result: T; readonly verified: SnpVerified | undefined }>;
  verify(report: Uint8Array, certTable?: Uint8Array): Promise<SnpVerified>;
}

/** Reasons of resolveSnpCerts that mean "collateral missing" here, and the API's reason for each. */
const COLLATERAL_REASONS: Readonly<Record<string, [string, string]>> = {
  'snp.certs_missing': [
    'api.collateral.certs_missing',
    'the report came without a complete certificate table and KDS is not configured',
  ],
  'snp.product_unknown': [
    'api.collateral.product_unknown',
    'the report names no product (no CPUID) and its certificates do not either: send the certificate table',
  ],
  'snp.vlek_missing': ['api.collateral.vlek_missing', 'KDS does not serve VLEKs: send the certificate table'],
};

/**
 * Builds the verifier (see {@link SnpEvidenceVerifier}). Each verification: parse the report; gather the
 * VCEK/VLEK, ASK/ASVK and ARK certificate by certificate with src/evidence/snp resolveSnpCerts (the host's
 * certificate table first, AMD KDS for whatever it lacks; a table that does not parse is refused, not
 * replaced: it is hostile input, not absent input); with `crl: 'kds'`, fetch the chain's CRL; verify
 * signature, chain and TCB with src/evidence/snp (AMD's pinned roots plus `trustedRoots`).
 *
 * Throws what the verifier throws (ERR_SIGNATURE_INVALID, ERR_CHAIN_INVALID, ERR_BINDING_MISMATCH,
 * ERR_MALFORMED `snp.*`), NotSupported `api.tee`, CollateralUnavailable `api.collateral.certs_missing` /
 * `.product_unknown` / `.vlek_missing` / `kds.*`; TypeError for `crl: 'kds'` without a KDS client.
 */
export function createSnpEvidenceVerifier(opts: SnpEvidenceOptions): SnpEvidenceVerifier {
  if (opts.crl === 'kds' && opts.kds === 'none') {
    throw new TypeError("crl: 'kds' needs a KDS client");
  }
  const verifier = opts.verifier ?? new SnpVerifier();
  const kds = opts.kds === 'none' ? undefined : opts.kds;
  /** Releases in flight under withVerified, by the identity of their report bytes. */
  const pending = new WeakMap<Uint8Array, { verified?: SnpVerified }>();

  const verify = async (reportBytes: Uint8Array, certTable?: Uint8Array): Promise<SnpVerified> => {
    const report = parseReport(reportBytes);
    const resolved = await resolveCerts(report, certTable, kds);
    const now = new Date(opts.now());
    const base = { now, certs: resolved.certs, trustedRoots: opts.trustedRoots };
    let crl: Uint8Array | undefined;
    if (opts.crl === 'kds' && kds) {
      // The product decides which CRL; when neither CPUID nor the leaf names it, the verifier learns it.
      const product = resolved.product ?? verifier.verify(report, base).product;
      const vlek = decodeSignerInfo(report.signerInfo).signingKey === SigningKey.VLEK;
      crl = (await kds.getCrl(product, vlek ? 'vlek' : 'vcek')).der;
    }
    return verifier.verify(report, { ...base, ...(crl ? { crl } : {}) });
  };

  const verifyEvidence: VerifyEvidence = async (tee, reportBytes, certTable): Promise<VerifiedEvidence> => {
    if (tee !== 'snp') throw new NotSupported('api.tee', `TEE ${String(tee)} is not supported`);
    const v = await verify(reportBytes, certTable);
    const slot = pending.get(reportBytes);
    if (slot) slot.verified = v;
    return {
      report: v.report,
      product: v.product,
      evidenceDigest: createHash('sha256').update(reportBytes).digest('hex'),
    };
  };

  return {
    verifyEvidence,
    verify,
    async withVerified(report, fn) {
      if (pending.has(report)) throw new TypeError('withVerified: this report object is already in flight');
      const slot: { verified?: SnpVerified } = {};
      pending.set(report, slot);
      try {
        const result = await fn();
        return { result, verified: slot.verified };
      } finally {
        pending.delete(report);
      }
    },
  };
}

async function resolveCerts(
  report: ReturnType<typeof parseReport>,
  certTable: Uint8Array | undefined,
  kds: KdsClient | undefined,
): Promise<ResolvedCerts> {
  try {
    return await resolveSnpCerts(report, {
      ...(certTable !== undefined && certTable.length > 0 ? { certTable } : {}),
      ...(kds ? { kds } : {}),
    });
  } catch (e) {
    const mapped = e instanceof AttestationError ? COLLATERAL_REASONS[e.reason] : undefined;
    if (mapped) throw new CollateralUnavailable(mapped[0], mapped[1], { cause: e });
    throw e;
  }
}
