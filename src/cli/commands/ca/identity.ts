import { InvalidArgument } from '../../../errors.js';
import type { GceInstanceIdentity } from '../../../formats/x509/instance-identity.js';
import { readInput } from '../../io.js';

/** The instance identity on the `vouchsafe ca` command line: `--identity` JSON or the individual flags. */

/** An unsigned 64-bit decimal integer. Throws InvalidArgument `cli.identity` naming `flag`. */
export function u64(s: string | undefined, flag: string): bigint {
  if (s === undefined || !/^\d{1,20}$/.test(s) || BigInt(s) >= 1n << 64n) {
    throw new InvalidArgument('cli.identity', `${flag} must be an unsigned 64-bit decimal integer`);
  }
  return BigInt(s);
}

function text(s: unknown, flag: string): string {
  if (typeof s !== 'string' || s.length === 0)
    throw new InvalidArgument('cli.identity', `${flag} is required`);
  return s;
}

export interface IdentityFlags {
  identity?: string;
  projectId?: string;
  projectNumber?: string;
  zone?: string;
  instanceId?: string;
  instanceName?: string;
}

/** The instance identity from --identity (JSON text or @file) or the individual flags. */
export function identityFrom(o: IdentityFlags): GceInstanceIdentity {
  if (o.identity !== undefined) {
    const raw = o.identity.startsWith('@')
      ? Buffer.from(readInput(o.identity.slice(1), '--identity')).toString('utf8')
      : o.identity;
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw new InvalidArgument('cli.identity', '--identity is not JSON');
    }
    if (typeof j !== 'object' || j === null)
      throw new InvalidArgument('cli.identity', '--identity must be an object');
    return {
      projectId: text(j.projectId, 'identity.projectId'),
      projectNumber: u64(String(j.projectNumber), 'identity.projectNumber'),
      zone: text(j.zone, 'identity.zone'),
      instanceId: u64(String(j.instanceId), 'identity.instanceId'),
      instanceName: text(j.instanceName, 'identity.instanceName'),
    };
  }
  return {
    projectId: text(o.projectId, '--project-id'),
    projectNumber: u64(o.projectNumber, '--project-number'),
    zone: text(o.zone, '--zone'),
    instanceId: u64(o.instanceId, '--instance-id'),
    instanceName: text(o.instanceName, '--instance-name'),
  };
}
