import type { InstanceView } from '../broker/types.js';
import { MalformedEvidence } from '../errors.js';
import { decodeBase64Std, encodeBase64Std } from '../formats/aproxy/base64.js';
import { toHex } from '../util/bytes.js';

/**
 * Request/response encoding of the /v1 API: byte fields are standard base64 with padding (decoded
 * strictly: canonical form only), counters decimal strings, HOST_DATA hex. Throws MalformedEvidence
 * `api.base64`, `api.counter`.
 */
export function b64(s: string, field: string): Uint8Array {
  try {
    return decodeBase64Std(s, field);
  } catch {
    throw new MalformedEvidence('api.base64', `${field}: not canonical standard base64`);
  }
}

export const toB64 = encodeBase64Std;

export function counter(s: string, field: string): bigint {
  if (!/^(?:0|[1-9][0-9]{0,19})$/.test(s))
    throw new MalformedEvidence('api.counter', `${field}: not a decimal counter`);
  return BigInt(s);
}

/** An instance as the admin API shows it: HOST_DATA as hex, times in ms since the epoch. */
export function instanceJson(v: InstanceView) {
  return {
    id: v.id,
    project: v.project,
    zone: v.zone,
    instanceId: v.instanceId,
    instanceName: v.instanceName,
    hostData: toHex(v.hostData),
    policy: v.policy,
    createdAt: v.createdAt,
    committedCounter: v.committedCounter,
    activeBoot: v.activeBoot
      ? {
          bootId: v.activeBoot.bootId,
          startedAt: v.activeBoot.startedAt,
          leaseExpiresAt: v.activeBoot.leaseExpiresAt,
        }
      : null,
  };
}
