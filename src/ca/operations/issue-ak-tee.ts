import { SVSM_NONCE_SIZE } from '../../formats/svsm/manifest.js';
import { toHex } from '../../util/bytes.js';
import { checkOutputFormat } from '../c509-output.js';
import { bytesArg, type CaContext, decide, sha256 } from '../context.js';
import { CaRefused } from '../errors.js';
import { instanceKey } from '../instance-record.js';
import { fromTpmPublic } from '../key-input.js';
import type { IssuedCertificate, TeeAkRequest } from '../options.js';
import { vtpmManifestOf } from '../tee-evidence.js';
import { matchEk } from './certified-ek.js';
import { issueAk } from './issue-ak.js';
import { verifyTeeReport } from './tee-report.js';

/**
 * AK route (a), TEE-bound: an SEV-SNP report whose REPORT_DATA covers the COCONUT-SVSM services manifest
 * holding the vTPM's EK and AK. Steps, in order (each refusal is logged with its reason):
 * 1. the nonce is one this CA issued for this instance, unused (consumed now) and fresh;
 * 2. the SNP report verifies through the one SEV-SNP pipeline (src/evidence/snp verifySnpAttestation, as
 *    the broker and the CLI): certificates given, else the table, else AMD KDS (`snpCollateral`);
 *    signature, VCEK/VLEK chain to a pinned or configured AMD root, the CRL with `checkRevocations`;
 * 3. it was requested at VMPL0 (by the SVSM, not the guest OS);
 * 4. the configured SNP policy accepts it (PolicyRejected lists every failure);
 * 5. REPORT_DATA = SHA-512(nonce ‖ manifest);
 * 6. the manifest lists the vTPM service and is v1 (EK and AK);
 * 7. its EK is an EK this CA certified for the instance (valid, unrevoked);
 * 8. its AK is a restricted signing key, fixedTPM, fixedParent, sensitiveDataOrigin;
 * 9. a CSR, when given, verifies and requests the AK's key and allowed names;
 * then the AK certificate is issued with the instance identity from the EK certificate.
 *
 * Throws CaRefused (`ca.nonce_unknown`, `ca.nonce_expired`, `ca.report_vmpl`, `ca.manifest_not_covered`,
 * `ca.manifest_no_vtpm`, `ca.manifest_no_ak`, `ca.instance_unknown`, `ca.ek_mismatch`, `ca.ak_attributes`,
 * `ca.csr_key_mismatch`, `ca.csr_name_not_allowed`); SignatureInvalid/ChainInvalid/BindingMismatch from the
 * SNP verifier; CollateralUnavailable `snp.certs_missing` / `snp.vlek_missing` / `kds.*` when certificates
 * are missing and cannot be fetched; PolicyRejected; MalformedEvidence for malformed report, table, manifest or CSR;
 * InvalidArgument for unusable arguments.
 */
export async function issueAkFromTee(ctx: CaContext, req: TeeAkRequest): Promise<IssuedCertificate> {
  const instanceId = instanceKey(req.instanceId);
  const format = checkOutputFormat(req.format ?? 'x509');
  const nonce = bytesArg(req.nonce, 'nonce');
  const reportBytes = bytesArg(req.report, 'report');
  const manifest = bytesArg(req.manifest, 'manifest');
  return decide(ctx, 'ca.issue_ak', { instance: instanceId }, reportBytes, async () => {
    // Step 1: the nonce is ours, for this instance, unused and fresh. Consumed whatever happens next.
    const found =
      nonce.length === SVSM_NONCE_SIZE ? await ctx.repository.consumeNonce(sha256(nonce)) : undefined;
    if (!found || found.instanceId !== instanceId) throw new CaRefused('ca.nonce_unknown');
    if (found.expiresAt <= ctx.clock().getTime()) throw new CaRefused('ca.nonce_expired');

    // Steps 2-5: a genuine AMD SEV-SNP report, VMPL0, the CA's policy, REPORT_DATA over nonce and manifest.
    const verified = await verifyTeeReport(ctx, {
      nonce,
      report: reportBytes,
      manifest,
      ...(req.certTable !== undefined ? { certTable: req.certTable } : {}),
      ...(req.certs ? { certs: req.certs } : {}),
    });

    // Step 6: the vTPM entry, with the AK.
    const vtpm = vtpmManifestOf(manifest);
    if (vtpm.version !== 1) {
      throw new CaRefused(
        'ca.manifest_no_ak',
        'a v0 vTPM manifest carries only the EK; use v1 or credential activation',
      );
    }

    // Step 7: the EK is the instance's certified EK.
    const ekRecord = await matchEk(ctx, instanceId, fromTpmPublic(vtpm.ek).spki);

    // Steps 8-9 and issuance.
    return issueAk(ctx, instanceId, ekRecord, vtpm.ak, req.csr, format, {
      route: 'tee',
      details: { route: 'tee', manifestVersion: vtpm.version, product: verified.product },
      evidenceDigest: toHex(sha256(reportBytes)),
    });
  });
}
