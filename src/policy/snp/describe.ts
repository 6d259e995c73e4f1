import { TCB_COMPONENTS } from '../../formats/snp/tcb.js';
import { parseSnpPolicy } from './parse.js';
import { ANY, SNP_POLICY_DEFAULTS, type SnpPolicy, type TcbMinimums } from './policy.js';
import { SNP_RULES, type SnpRuleName } from './rules.js';

export interface SnpRuleSetting {
  readonly rule: SnpRuleName;
  /** What the rule enforces, for people: `false (default)`, `>= 1.55`, `not checked (unset)`, ... */
  readonly setting: string;
  /** Whether the rule constrains reports at all (false for unset reference values, 'any', allow: true...). */
  readonly enforced: boolean;
}

function showTcbs(m: TcbMinimums): string {
  return Object.entries(m)
    .map(([product, min]) => {
      if (min === ANY || min === undefined) return `${product}: any`;
      const parts = TCB_COMPONENTS.filter((c) => min[c] !== undefined).map((c) => `${c}=${min[c]}`);
      return `${product}: ${parts.join(' ')}`;
    })
    .join('; ');
}

function show(v: unknown): string {
  if (Array.isArray(v)) return v.length === 1 ? String(v[0]) : `one of [${v.join(', ')}]`;
  if (typeof v === 'object' && v !== null && 'major' in v && 'minor' in v) return `>= ${v.major}.${v.minor}`;
  return String(v);
}

/**
 * The effective setting of every rule of a policy, defaults included, in appraisal order: what a CLI prints
 * before (or beside) an appraisal. Throws InvalidArgument (`policy.invalid`) for a malformed policy.
 */
export function describeSnpPolicy(policy: SnpPolicy): SnpRuleSetting[] {
  const p = parseSnpPolicy(policy);
  const defaults: Partial<Record<string, boolean | number>> = SNP_POLICY_DEFAULTS;
  return SNP_RULES.map(({ name }) => {
    const v = p[name];
    if (v === ANY) return { rule: name, setting: 'any (not checked)', enforced: false };
    if (v === undefined) {
      if (name === 'requireIdBlock') {
        const implied =
          Array.isArray(p.trustedIdKeyDigests) ||
          Array.isArray(p.trustedAuthorKeyDigests) ||
          p.requireAuthorKey === true;
        return {
          rule: name,
          setting: implied ? 'true (implied by the trusted key digests)' : 'false (default)',
          enforced: implied,
        };
      }
      const d = defaults[name];
      if (d === undefined && name.startsWith('require')) {
        return { rule: name, setting: 'not required (unset)', enforced: false };
      }
      if (d === undefined) return { rule: name, setting: 'not checked (unset)', enforced: false };
      // allow*: true places no constraint; every other default does.
      return { rule: name, setting: `${d} (default)`, enforced: d !== true };
    }
    let setting: string;
    if (name === 'minimumTcb' || name === 'minimumLaunchTcb') setting = showTcbs(v as TcbMinimums);
    else if (name === 'requireAuthorKey' && v === true)
      setting = `true, trusted: ${show(p.trustedAuthorKeyDigests)}`;
    else if (name === 'requireIdBlock' && v === true) {
      setting = `true, trusted ID keys: ${show(p.trustedIdKeyDigests ?? 'none')}, author keys: ${show(p.trustedAuthorKeyDigests ?? 'none')}`;
    } else if (name.endsWith('MitVector')) setting = `all bits of ${show(v)}`;
    else if (name.startsWith('minimum') && typeof v !== 'object') setting = `>= ${show(v)}`;
    else setting = show(v);
    const noConstraint =
      (name.startsWith('allow') && v === true) || (name.startsWith('require') && v === false);
    return { rule: name, setting, enforced: !noConstraint };
  });
}
