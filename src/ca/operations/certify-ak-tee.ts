import { toHex } from '../../util/bytes.js';
import { checkOutputFormat } from '../c509-output.js';
import { bytesArg, type CaContext, decide, sha256 } from '../context.js';
import { CaRefused } from '../errors.js';
import { identityFromJson } from '../instance-record.js';
import { fromTpmPublic } from '../key-input.js';
import type { RegistryLookup } from '../registry.js';
import type { RelayedAkRequest, RelayedCertificate } from '../relayed.js';
import { vtpmManifestOf } from '../tee-evidence.js';
import { matchEk } from './certified-ek.js';
import { issueAk } from './issue-ak.js';
import { relayedEvidence, sameCertIdentity } from './relayed-evidence.js';

/**
 * CERTIFY_AK (docs/pvchannel.md §7.2): AK route (a) with the instance found by HOST_DATA instead of named
 * by the caller. Steps, in order (each refusal logged as `ca.issue_ak`):
 * 1-7. as {@link relayedEvidence} (relay nonce, SNP pipeline, VMPL0, policy, REPORT_DATA, registry, claim);
 * 8. the manifest is a v1 vTPM entry (EK and AK) — `ca.manifest_no_ak`;
 * 9. its EK is the instance's certified EK (valid, for this registry identity) — `ca.instance_unknown`,
 *    `ca.ek_mismatch`;
 * 10. the AK is restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin — `ca.ak_attributes`;
 * 11. the CSR (required here) verifies and requests the manifest's AK — `ca.csr.signature`,
 *    `ca.csr_key_mismatch` (an AK not in the manifest), `ca.csr_name_not_allowed`;
 * then issues the AK certificate with the EK certificate's identity.
 */
export async function certifyAkFromTee(
  ctx: CaContext,
  req: RelayedAkRequest,
  registry: RegistryLookup,
): Promise<RelayedCertificate> {
  const format = checkOutputFormat(req.format ?? 'x509');
  const reportBytes = bytesArg(req.report, 'report');
  const manifest = bytesArg(req.manifest, 'manifest');
  const csr = bytesArg(req.csr, 'csr');
  const where: { instance: string | null } = { instance: null };
  return decide(ctx, 'ca.issue_ak', where, reportBytes, async () => {
    const ev = await relayedEvidence(ctx, req, registry, where);
    const vtpm = vtpmManifestOf(manifest);
    if (vtpm.version !== 1) {
      throw new CaRefused(
        'ca.manifest_no_ak',
        'a v0 vTPM manifest carries only the EK; use v1 or credential activation',
      );
    }
    const ekRecord = await matchEk(ctx, ev.key, fromTpmPublic(vtpm.ek).spki);
    // The CA keys instances by decimal id; the registry's identity must be the one the EK was certified for.
    if (
      ekRecord.identityJson === null ||
      !sameCertIdentity(identityFromJson(ekRecord.identityJson), ev.identity)
    ) {
      throw new CaRefused('ca.ek_mismatch', 'the EK was certified for another identity');
    }
    const issued = await issueAk(ctx, ev.key, ekRecord, vtpm.ak, csr, format, {
      route: 'tee',
      details: {
        route: 'relay',
        caller: req.caller,
        manifestVersion: vtpm.version,
        product: ev.product,
        brokerInstance: ev.instance.id,
      },
      evidenceDigest: toHex(sha256(reportBytes)),
    });
    return { ...issued, instance: ev.instance, reused: false };
  });
}
