import { type PolicyFailure, PolicyRejected } from '../../errors.js';
import { type BootClaims, bootClaims } from '../../evidence/tpm/eventlog-claims.js';
import type { VerifiedEventLog } from '../../evidence/tpm/eventlog-verify.js';
import { parseTpmBootPolicy } from './parse.js';
import type { TpmBootPolicy, TpmBootRuleName } from './policy.js';
import { TPM_BOOT_RULES } from './rules.js';

/** The outcome of appraising one verified event log: every failure, and which rules constrained it. */
export interface TpmBootAppraisal {
  readonly failures: readonly PolicyFailure[];
  readonly checked: readonly TpmBootRuleName[];
  /** Rules that placed no constraint (unset without a default, `'any'`, `require*: false`): "not checked". */
  readonly unchecked: readonly TpmBootRuleName[];
  /** The claims the rules saw. */
  readonly claims: BootClaims;
}

/**
 * Appraises a verified event log (verifyEventLog: replay equal to the quote) against a measured-boot
 * policy. Every rule is evaluated and every failure returned; nothing is thrown for a rejected log.
 * Throws InvalidArgument (`policy.invalid`) for a malformed policy, validated as parseTpmBootPolicy does.
 */
export function appraiseTpmBoot(log: VerifiedEventLog, policy: TpmBootPolicy): TpmBootAppraisal {
  const p = parseTpmBootPolicy(policy);
  const claims = bootClaims(log);
  const failures: PolicyFailure[] = [];
  const checked: TpmBootRuleName[] = [];
  const unchecked: TpmBootRuleName[] = [];
  for (const rule of TPM_BOOT_RULES) {
    const outcome = rule.check(claims, p);
    if (outcome === undefined) unchecked.push(rule.name);
    else {
      checked.push(rule.name);
      failures.push(...outcome);
    }
  }
  return { failures, checked, unchecked, claims };
}

/** Appraises like appraiseTpmBoot and throws PolicyRejected (every failure listed) when anything failed. */
export function assertTpmBootPolicy(log: VerifiedEventLog, policy: TpmBootPolicy): TpmBootAppraisal {
  const a = appraiseTpmBoot(log, policy);
  if (a.failures.length > 0) throw new PolicyRejected(a.failures);
  return a;
}
