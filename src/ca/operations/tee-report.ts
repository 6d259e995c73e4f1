import { verifySnpAttestation } from '../../evidence/snp/attestation.js';
import type { SnpCerts } from '../../evidence/snp/verify.js';
import type { SnpProduct } from '../../formats/snp/product.js';
import type { SnpReport } from '../../formats/snp/report.js';
import { svsmReportData } from '../../formats/svsm/manifest.js';
import { assertSnpPolicy } from '../../policy/snp/appraise.js';
import { ctEqual } from '../../util/bytes.js';
import { bytesArg, type CaContext } from '../context.js';
import { CaRefused } from '../errors.js';

/** The SEV-SNP evidence of the TEE-bound routes: a report over SHA-512(nonce ‖ manifest). */
export interface TeeEvidence {
  readonly nonce: Uint8Array;
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
  readonly certs?: SnpCerts;
  readonly manifest: Uint8Array;
}

/**
 * Steps 2-5 of every TEE-bound route (AK route a, CERTIFY_EK, CERTIFY_AK), after the nonce was consumed:
 * 2. the report verifies through the one SEV-SNP pipeline (src/evidence/snp verifySnpAttestation);
 * 3. it was requested at VMPL0 (by the SVSM, not the guest OS);
 * 4. the CA's SNP policy accepts it (PolicyRejected lists every failure);
 * 5. REPORT_DATA = SHA-512(nonce ‖ manifest), compared in constant time.
 * Returns the verified report and product. Throws what those steps throw (docs/ca.md route a).
 */
export async function verifyTeeReport(
  ctx: CaContext,
  ev: TeeEvidence,
): Promise<{ report: SnpReport; product: SnpProduct }> {
  const certTable = ev.certTable === undefined ? undefined : bytesArg(ev.certTable, 'cert_table');
  const { verified } = await verifySnpAttestation(
    {
      report: ev.report,
      ...(ev.certs ? { certs: ev.certs } : {}),
      ...(certTable ? { certTable } : {}),
    },
    {
      now: ctx.clock(),
      trustedRoots: ctx.config.snp.trustedRoots,
      verifier: ctx.snpVerifier,
      ...(ctx.snpCollateral ? { getter: ctx.snpCollateral } : {}),
      checkRevocations: ctx.checkRevocations,
    },
  );
  const report = verified.report;
  // Step 3: VMPL0. The guest OS (VMPL >= 1) can request reports with any REPORT_DATA it likes; only a
  // VMPL0 report comes from the SVSM, which alone builds the manifest from the vTPM it runs.
  if (report.vmpl !== 0)
    throw new CaRefused('ca.report_vmpl', `the report was requested at VMPL${report.vmpl}`);
  // Step 4: the SNP policy (every failure listed).
  assertSnpPolicy(report, verified.product, ctx.config.snp.policy);
  // Step 5: REPORT_DATA covers this nonce and this manifest.
  if (!ctEqual(report.reportData, svsmReportData(ev.nonce, ev.manifest))) {
    throw new CaRefused('ca.manifest_not_covered', 'REPORT_DATA is not SHA-512(nonce || manifest)');
  }
  return { report, product: verified.product };
}
