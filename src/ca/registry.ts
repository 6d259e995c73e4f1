import type { PlatformIdentity } from '../formats/platform-identity.js';
import type { GceInstanceIdentity } from '../formats/x509/instance-identity.js';
import type { JsonValue, Store } from '../store/types.js';
import { CaRefused } from './errors.js';

/**
 * The relayed routes (CERTIFY_EK / CERTIFY_AK over the paravirtual channel, docs/pvchannel.md §7.2) learn
 * which instance a report speaks for from the broker's registry, by the report's HOST_DATA, never from the
 * relay (the VMM). This is the CA's view of that registry: one lookup, given to the CA by whoever runs it
 * (the broker process passes its store).
 */

/** An instance as the registry holds it: the broker's id and the control plane's identity. */
export interface RegisteredInstance {
  readonly id: string;
  readonly identity: PlatformIdentity;
  /**
   * The instance's own SEV-SNP policy (what the broker releases its key under). When given, a report must
   * satisfy it as well as the CA's: what the broker would not accept as this instance, the CA does not
   * certify as this instance either.
   */
  readonly policy?: JsonValue;
}

/** Finds the SEV-SNP instance registered with `hostData` (32 bytes), or undefined. */
export type RegistryLookup = (hostData: Uint8Array) => Promise<RegisteredInstance | undefined>;

/** The lookup over a broker store: HOST_DATA registered for `snp` (a TDX MRCONFIGID never matches). */
export function storeRegistry(store: Pick<Store, 'findInstanceByIdentity'>): RegistryLookup {
  return async (hostData) => {
    const rec = await store.findInstanceByIdentity('snp', hostData);
    if (!rec) return undefined;
    return {
      id: rec.id,
      policy: rec.policy,
      identity: {
        project: rec.project,
        zone: rec.zone,
        instanceId: rec.instanceId,
        instanceName: rec.instanceName,
      },
    };
  };
}

/**
 * The registry's platform identity written in the GCE instance-identity schema the EK certificate carries
 * (src/formats/x509/instance-identity.ts): projectId = project, zone = zone, instanceName = instanceName,
 * instanceId = the decimal instance id. The registry has no project number: 0 is written (GCE's schema has
 * the field; a relying party reads the project from projectId). Throws CaRefused `ca.instance_id_not_numeric`
 * when the registered instance id is not a decimal u64 (the schema's instanceId is an INTEGER).
 */
export function gceIdentityOf(id: PlatformIdentity): GceInstanceIdentity {
  if (!/^(0|[1-9]\d{0,19})$/.test(id.instanceId) || BigInt(id.instanceId) >= 1n << 64n) {
    throw new CaRefused(
      'ca.instance_id_not_numeric',
      'the registered instance id is not a decimal unsigned 64-bit integer',
    );
  }
  return {
    zone: id.zone,
    projectNumber: 0n,
    projectId: id.project,
    instanceId: BigInt(id.instanceId),
    instanceName: id.instanceName,
  };
}

/** Field-by-field equality of two platform identities (public values: no constant-time need). */
export function sameIdentity(a: PlatformIdentity, b: PlatformIdentity): boolean {
  return (
    a.project === b.project &&
    a.zone === b.zone &&
    a.instanceId === b.instanceId &&
    a.instanceName === b.instanceName
  );
}
