import { parseTpmBootPolicy } from './parse.js';
import {
  ANY,
  type CmdlineRules,
  TPM_BOOT_POLICY_DEFAULTS,
  TPM_BOOT_POLICY_KEYS,
  type TpmBootPolicy,
  type TpmBootRuleName,
} from './policy.js';

/** The effective setting of one measured-boot rule. */
export interface TpmBootRuleSetting {
  readonly rule: TpmBootRuleName;
  /** What the rule enforces, for people: `true (default)`, `one of 2 SHA-256 digests`, `not checked (unset)`. */
  readonly setting: string;
  /** Whether the rule constrains the boot at all (false for unset lists, `'any'`, `require*: false`). */
  readonly enforced: boolean;
}

const digests = (xs: readonly string[]) =>
  xs.length === 1 ? `SHA-256 ${xs[0]}` : `one of ${xs.length} SHA-256 digests`;

function showCmdline(c: CmdlineRules): string {
  const parts: string[] = [];
  if (c.exact)
    parts.push(c.exact.length === 1 ? `exactly "${c.exact[0]}"` : `one of ${c.exact.length} exact lines`);
  if (c.require) parts.push(`requires ${c.require.join(' ')}`);
  if (c.forbid) parts.push(`forbids ${c.forbid.join(' ')}`);
  return parts.join('; ');
}

/**
 * The effective setting of every measured-boot rule, defaults included, in appraisal order: what
 * `vouchsafe verify tpm --boot-policy` prints beside the appraisal, as describeSnpPolicy does for SEV-SNP.
 * Throws InvalidArgument (`policy.invalid`) for a malformed policy, as parseTpmBootPolicy does.
 */
export function describeTpmBootPolicy(policy: TpmBootPolicy): TpmBootRuleSetting[] {
  const p = parseTpmBootPolicy(policy);
  const defaults: Partial<Record<TpmBootRuleName, boolean>> = TPM_BOOT_POLICY_DEFAULTS;
  return TPM_BOOT_POLICY_KEYS.map((rule) => {
    const v = p[rule];
    if (v === ANY) return { rule, setting: 'any (not checked)', enforced: false };
    if (v === undefined) {
      const d = defaults[rule];
      return d === undefined
        ? { rule, setting: 'not checked (unset)', enforced: false }
        : { rule, setting: `${d} (default)`, enforced: d };
    }
    if (typeof v === 'boolean') return { rule, setting: String(v), enforced: v };
    if (rule === 'cmdline') return { rule, setting: showCmdline(v as CmdlineRules), enforced: true };
    const list = v as readonly string[];
    return {
      rule,
      setting: rule === 'requiredDbxDigests' ? `dbx holds all of ${list.length}` : digests(list),
      enforced: true,
    };
  });
}
