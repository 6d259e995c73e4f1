import { InvalidArgument } from '../errors.js';
import type { GceInstanceIdentity } from '../formats/x509/instance-identity.js';

/**
 * How the CA keys and stores instances: by the decimal instance id (GCE's instanceId is a u64), with the
 * identity kept as JSON text in the EK certificate record.
 */

/** The decimal key of an instance id. Throws InvalidArgument `ca.instance_id` outside 0..2^64-1. */
export function instanceKey(id: bigint | string): string {
  const s = typeof id === 'bigint' ? id.toString() : id;
  if (typeof s !== 'string' || !/^\d{1,20}$/.test(s) || BigInt(s) >= 1n << 64n) {
    throw new InvalidArgument('ca.instance_id', 'instanceId must be an unsigned 64-bit integer');
  }
  return BigInt(s).toString();
}

/** The identity as stored: JSON text, integers as decimal strings. */
export function identityToJson(id: GceInstanceIdentity): string {
  return JSON.stringify({
    zone: id.zone,
    projectNumber: id.projectNumber.toString(),
    projectId: id.projectId,
    instanceId: id.instanceId.toString(),
    instanceName: id.instanceName,
  });
}

export function identityFromJson(s: string): GceInstanceIdentity {
  const o = JSON.parse(s) as Record<string, string>;
  return {
    zone: o.zone!,
    projectNumber: BigInt(o.projectNumber!),
    projectId: o.projectId!,
    instanceId: BigInt(o.instanceId!),
    instanceName: o.instanceName!,
  };
}
