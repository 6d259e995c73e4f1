import type { GceInstanceIdentity } from '../../formats/x509/instance-identity.js';
import { assertSnpPolicy } from '../../policy/snp/appraise.js';
import { parseSnpPolicy } from '../../policy/snp/parse.js';
import { bytesArg, type CaContext } from '../context.js';
import { CaRefused } from '../errors.js';
import { gceIdentityOf, type RegisteredInstance, type RegistryLookup, sameIdentity } from '../registry.js';
import type { RelayedTeeRequest } from '../relayed.js';
import { consumeScopedNonce, relayScope } from './nonce.js';
import { verifyTeeReport } from './tee-report.js';

/** What the shared steps of a relayed route establish. */
export interface RelayedEvidence {
  readonly instance: RegisteredInstance;
  /** The CA's key for the instance: its decimal instance id. */
  readonly key: string;
  /** The identity the certificates carry: the registry's, in the GCE schema. */
  readonly identity: GceInstanceIdentity;
  readonly product: string;
}

/**
 * The steps CERTIFY_EK and CERTIFY_AK share, in order:
 * 1. the nonce was issued to this relay (`caller`), is unused (consumed now) and fresh;
 * 2-5. the report verifies (one SNP pipeline), VMPL0, the CA's SNP policy, REPORT_DATA over nonce and manifest;
 * 6. the instance is the one registered with the report's HOST_DATA (measured at launch: the VMM set it but
 *    cannot change it afterwards, and a HOST_DATA registered for nobody names nobody);
 * 7. its identity fits the certificate schema; the report satisfies the instance's own SNP policy (when the
 *    registry gives one: PolicyRejected listing every failure); the relay's claimed identity, if any, is the
 *    registry's.
 * Sets `where.instance` as soon as the instance is known, so a later refusal is logged against it.
 * Throws CaRefused `ca.nonce_unknown`, `ca.nonce_expired`, `ca.report_vmpl`, `ca.manifest_not_covered`,
 * `ca.instance_unregistered`, `ca.instance_id_not_numeric`, `ca.identity_mismatch`; the verifier's errors.
 */
export async function relayedEvidence(
  ctx: CaContext,
  req: RelayedTeeRequest,
  registry: RegistryLookup,
  where: { instance: string | null },
): Promise<RelayedEvidence> {
  const nonce = bytesArg(req.nonce, 'nonce');
  await consumeScopedNonce(ctx, nonce, relayScope(req.caller));
  const { report, product } = await verifyTeeReport(ctx, {
    nonce,
    report: req.report,
    manifest: req.manifest,
    ...(req.certTable !== undefined ? { certTable: req.certTable } : {}),
    ...(req.certs ? { certs: req.certs } : {}),
  });
  const instance = await registry(report.hostData);
  if (!instance) {
    throw new CaRefused('ca.instance_unregistered', 'no instance is registered with the report HOST_DATA');
  }
  const identity = gceIdentityOf(instance.identity);
  const key = identity.instanceId.toString();
  where.instance = key;
  // The instance's own policy too (every failure listed): the registry says what launches are this instance.
  if (instance.policy !== undefined) assertSnpPolicy(report, product, parseSnpPolicy(instance.policy));
  if (req.claimedIdentity !== undefined && !sameIdentity(req.claimedIdentity, instance.identity)) {
    throw new CaRefused('ca.identity_mismatch', 'the relay claimed an identity the registry does not hold');
  }
  return { instance, key, identity, product };
}

/** The identity fields a relayed certificate carries (projectNumber aside: the registry has none). */
export function sameCertIdentity(a: GceInstanceIdentity, b: GceInstanceIdentity): boolean {
  return (
    a.projectId === b.projectId &&
    a.zone === b.zone &&
    a.instanceId === b.instanceId &&
    a.instanceName === b.instanceName
  );
}
