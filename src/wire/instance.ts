import type { InstanceView } from '../broker/types.js';
import { toHex } from '../util/bytes.js';

/**
 * An instance as the admin API shows it (wire/schemas.ts `InstanceView`): its TEE and identity value (HOST_DATA or MRCONFIGID) as hex, times in ms
 * since the epoch. The admin routes and the local admin client both answer with it, so the HTTP and the
 * direct paths cannot drift.
 */
export function instanceJson(v: InstanceView) {
  return {
    id: v.id,
    project: v.project,
    zone: v.zone,
    instanceId: v.instanceId,
    instanceName: v.instanceName,
    tee: v.tee,
    identityField: v.identityField,
    hostData: toHex(v.hostData),
    policy: v.policy,
    createdAt: v.createdAt,
    newLaunch: v.newLaunch,
    committedCounter: v.committedCounter,
    activeBoot: v.activeBoot
      ? {
          bootId: v.activeBoot.bootId,
          startedAt: v.activeBoot.startedAt,
          leaseExpiresAt: v.activeBoot.leaseExpiresAt,
          launchId: v.activeBoot.launchId,
        }
      : null,
  };
}
