import { InvalidArgument, type PolicyFailure } from '../errors.js';
import type { EarStatus, SnpEarSubject } from './tokens/index.js';

/**
 * Who may read an operator-provided secret over the KBS. Every constraint is explicit (a list, or `'any'`
 * to say "not constrained"): leaving one out is an error, never a silent "allow".
 *
 *   {"instances": ["<broker instance id>", ...] | "any",
 *    "projects": ["proj-a", ...] | "any",
 *    "measurements": ["<96 hex>", ...] | "any",
 *    "statuses": ["affirming", ...]}          // optional; default ["affirming"]
 *
 * A caller is allowed when its token's instance, project, measurement and EAR status each satisfy their
 * constraint (AND across constraints, OR within a list). The caller's attributes come from the broker's
 * own verified EAR token: `ear.vouchsafe.platform-identity` and the verified MEASUREMENT.
 */
export interface ResourcePolicy {
  readonly instances: readonly string[] | 'any';
  readonly projects: readonly string[] | 'any';
  readonly measurements: readonly string[] | 'any';
  readonly statuses: readonly EarStatus[];
}

const STATUSES: readonly EarStatus[] = ['none', 'affirming', 'warning', 'contraindicated'];
const KEYS = new Set(['instances', 'projects', 'measurements', 'statuses']);

function list(v: unknown, field: string, check: (s: string) => boolean): readonly string[] | 'any' {
  if (v === 'any') return 'any';
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string' && check(s))) {
    throw new InvalidArgument(
      'kbs.resource_policy',
      `${field} must be "any" or a non-empty list of valid values`,
    );
  }
  return v.map((s: string) => s.toLowerCase());
}

/** Validates a resource policy document. Throws InvalidArgument `kbs.resource_policy`. */
export function parseResourcePolicy(v: unknown): ResourcePolicy {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new InvalidArgument('kbs.resource_policy', 'a resource policy is an object');
  }
  const o = v as { [k: string]: unknown };
  for (const k of Object.keys(o)) {
    if (!KEYS.has(k)) throw new InvalidArgument('kbs.resource_policy', `unknown member ${k}`);
  }
  for (const k of ['instances', 'projects', 'measurements']) {
    if (!(k in o)) throw new InvalidArgument('kbs.resource_policy', `${k} is required (a list, or "any")`);
  }
  const nonEmpty = (s: string) => s.length > 0 && s.length <= 255;
  let statuses: readonly EarStatus[] = ['affirming'];
  if (o.statuses !== undefined) {
    if (
      !Array.isArray(o.statuses) ||
      o.statuses.length === 0 ||
      !o.statuses.every((s) => STATUSES.includes(s as EarStatus))
    ) {
      throw new InvalidArgument(
        'kbs.resource_policy',
        `statuses must be a non-empty list of ${STATUSES.join(', ')}`,
      );
    }
    statuses = o.statuses as EarStatus[];
  }
  return {
    // Instance ids and project names are compared exactly; only measurements are case-folded (hex).
    instances: o.instances === 'any' ? 'any' : exact(o.instances, 'instances', nonEmpty),
    projects: o.projects === 'any' ? 'any' : exact(o.projects, 'projects', nonEmpty),
    measurements: list(o.measurements, 'measurements', (s) => /^[0-9a-fA-F]{96}$/.test(s)),
    statuses,
  };
}

function exact(v: unknown, field: string, check: (s: string) => boolean): readonly string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string' && check(s))) {
    throw new InvalidArgument('kbs.resource_policy', `${field} must be "any" or a non-empty list of strings`);
  }
  return [...(v as string[])];
}

/** Every failed constraint (codes `kbs.resource.instance|project|measurement|status`); empty allows. */
export function evaluateResourcePolicy(p: ResourcePolicy, s: SnpEarSubject): PolicyFailure[] {
  const failures: PolicyFailure[] = [];
  if (p.instances !== 'any' && !p.instances.includes(s.identity.brokerInstanceId)) {
    failures.push({ code: 'kbs.resource.instance', message: 'instance not allowed for this resource' });
  }
  if (p.projects !== 'any' && !p.projects.includes(s.identity.project)) {
    failures.push({ code: 'kbs.resource.project', message: 'project not allowed for this resource' });
  }
  if (p.measurements !== 'any' && !p.measurements.includes(s.measurement.toLowerCase())) {
    failures.push({ code: 'kbs.resource.measurement', message: 'measurement not allowed for this resource' });
  }
  if (!p.statuses.includes(s.status)) {
    failures.push({ code: 'kbs.resource.status', message: `attestation status ${s.status} not allowed` });
  }
  return failures;
}
