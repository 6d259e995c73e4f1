import type { PlatformIdentity } from '../platform-identity.js';
import { checkLength, expectBoundedString, LIMITS } from './fields.js';
import { expectObject, type JsonValue } from './json.js';

const FIELDS = ['project', 'zone', 'instanceId', 'instanceName'] as const;

/** 0.2.0 `identity`: `{"project","zone","instanceId","instanceName"}`, each 1..256 UTF-8 bytes. */
export function parseIdentity(v: JsonValue | undefined, field: string): PlatformIdentity {
  const o = expectObject(v, field, FIELDS);
  const [min, max] = LIMITS.identityField;
  return {
    project: expectBoundedString(o.get('project'), `${field}.project`, min, max),
    zone: expectBoundedString(o.get('zone'), `${field}.zone`, min, max),
    instanceId: expectBoundedString(o.get('instanceId'), `${field}.instanceId`, min, max),
    instanceName: expectBoundedString(o.get('instanceName'), `${field}.instanceName`, min, max),
  };
}

/** The identity as a wire object, fields in declared order; checks bounds (InvalidArgument). */
export function identityToWire(id: PlatformIdentity): Record<string, string> {
  const [min, max] = LIMITS.identityField;
  for (const k of FIELDS) {
    const v = id[k];
    checkLength(
      typeof v === 'string' ? Buffer.from(v, 'utf8') : new Uint8Array(0),
      `identity.${k}`,
      min,
      max,
    );
  }
  return { project: id.project, zone: id.zone, instanceId: id.instanceId, instanceName: id.instanceName };
}
