import { createHash } from 'node:crypto';
import type { VerifyEvidence } from '../../broker/types.js';
import { CollateralUnavailable, NotSupported } from '../../errors.js';
import { type SnpCerts, type SnpVerified, SnpVerifier, type TrustedRoot } from '../../evidence/snp/index.js';
import { CertGuid, findCert, parseCertTable, parseReport, type SnpReport } from '../../formats/snp/index.js';

export interface SnpEvidenceVerifierOptions {
  /** Extra roots (e.g. the simulator's ARK); AMD's ARKs are always trusted. */
  readonly trustedRoots?: readonly TrustedRoot[];
  /** Verification time (default: now). */
  readonly now?: () => Date;
  /**
   * Certificates for a report that came without a complete certificate table (COCONUT-SVSM never sends
   * one): e.g. the VCEK from AMD KDS via src/collateral. Without it such evidence is refused with
   * ERR_COLLATERAL_UNAVAILABLE `kbs.collateral.certs_missing`.
   */
  readonly certsFor?: (report: SnpReport) => Promise<SnpCerts>;
  /** The verifier (and its chain cache) to use; default a new one. */
  readonly verifier?: SnpVerifier;
}

/**
 * One SNP verification function in the two shapes the KBS needs: `verifyEvidence` for the Broker
 * (BrokerOptions.verifyEvidence), and `verify` returning the full verification result for the token's
 * claims. Results of `verifyEvidence` are remembered briefly by report digest, so the `verify` call that
 * follows a release does not verify the same report twice; anything not remembered is verified again.
 */
export interface SnpEvidenceVerifier {
  readonly verifyEvidence: VerifyEvidence;
  verify(report: Uint8Array, certTable?: Uint8Array): Promise<SnpVerified>;
}

const MEMO_MAX = 256;
const MEMO_TTL_MS = 30_000;

/** The certificates in an extended report's table, when it holds a leaf, its issuer and the ARK. */
export function certsFromTable(table: Uint8Array): SnpCerts | undefined {
  const entries = parseCertTable(table);
  const leaf = findCert(entries, CertGuid.VCEK) ?? findCert(entries, CertGuid.VLEK);
  const intermediate = findCert(entries, CertGuid.ASK);
  const root = findCert(entries, CertGuid.ARK);
  return leaf && intermediate && root ? { leaf, intermediate, root } : undefined;
}

export function createSnpEvidenceVerifier(o: SnpEvidenceVerifierOptions = {}): SnpEvidenceVerifier {
  const verifier = o.verifier ?? new SnpVerifier();
  const now = o.now ?? (() => new Date());
  const memo = new Map<string, { v: SnpVerified; at: number }>();

  const run = async (bytes: Uint8Array, certTable: Uint8Array | undefined): Promise<SnpVerified> => {
    const report = parseReport(bytes);
    const certs =
      (certTable && certsFromTable(certTable)) ?? (o.certsFor ? await o.certsFor(report) : undefined);
    if (!certs) {
      throw new CollateralUnavailable(
        'kbs.collateral.certs_missing',
        'no certificate table with VCEK/VLEK, ASK and ARK, and no certificate source configured',
      );
    }
    return verifier.verify(report, {
      now: now(),
      certs,
      ...(o.trustedRoots ? { trustedRoots: o.trustedRoots } : {}),
    });
  };
  const digestOf = (b: Uint8Array, t: Uint8Array | undefined) => {
    const h = createHash('sha256').update(b);
    if (t) h.update(t);
    return h.digest('hex');
  };

  return {
    verifyEvidence: async (tee, report, certTable) => {
      if (tee !== 'snp') throw new NotSupported('kbs.tee', `TEE ${String(tee)} is not supported`);
      const v = await run(report, certTable);
      if (memo.size >= MEMO_MAX) memo.delete(memo.keys().next().value as string);
      memo.set(digestOf(report, certTable), { v, at: Date.now() });
      return {
        report: v.report,
        product: v.product,
        evidenceDigest: createHash('sha256').update(report).digest('hex'),
      };
    },
    verify: async (report, certTable) => {
      const k = digestOf(report, certTable);
      const hit = memo.get(k);
      if (hit) {
        memo.delete(k);
        if (Date.now() - hit.at < MEMO_TTL_MS) return hit.v;
      }
      return run(report, certTable);
    },
  };
}
