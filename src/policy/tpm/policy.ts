/**
 * The measured-boot appraisal policy: what a TPM event log, verified against a quote, must show. It is
 * appraised over the events of PCRs whose replayed value equals the quoted one (src/evidence/tpm/eventlog-verify.ts);
 * events in other PCRs are not evidence and count as absent.
 *
 * ## Unset, `'any'` and defaults (as the SEV-SNP policy, docs/policy.md)
 * | rule | unset means |
 * |---|---|
 * | `requireSecureBoot` | `true`: PCR 7 holds the SecureBoot variable with value 1, its digest of its data |
 * | `requireSeparators` | `true`: PCRs 0-7 each hold an EV_SEPARATOR of value 0 (an error separator, 1, fails) |
 * | `bootLoaders` | not checked: else every EV_EFI_BOOT_SERVICES_APPLICATION in PCR 4 has a listed SHA-256 |
 * | `kernels` | not checked: else the kernel image's SHA-256 is listed |
 * | `cmdline` | not checked: else the kernel command line meets every given rule |
 * | `requiredDbxDigests` | not checked: else dbx (as measured in PCR 7) holds every listed SHA-256 |
 *
 * `'any'` is the explicit "don't care" and is reported as not checked, like every unset rule without a
 * default. Digests are SHA-256 hex (the log's SHA-256 bank); a log without one fails the digest rules.
 */
export type Any = 'any';
export const ANY: Any = 'any';

/** Rules over the kernel command line, split into whitespace-separated words. */
export interface CmdlineRules {
  /** The command line (after the kernel path GRUB puts first) must equal one of these exactly. */
  readonly exact?: readonly string[];
  /** Words that must be present (`ro`, `lockdown=integrity`). */
  readonly require?: readonly string[];
  /** Words that must be absent; `init` forbids `init` and `init=…`. */
  readonly forbid?: readonly string[];
}

export interface TpmBootPolicy {
  readonly requireSecureBoot?: boolean | Any;
  readonly requireSeparators?: boolean | Any;
  readonly bootLoaders?: readonly string[] | Any;
  readonly kernels?: readonly string[] | Any;
  readonly cmdline?: CmdlineRules | Any;
  readonly requiredDbxDigests?: readonly string[] | Any;
}

export const TPM_BOOT_POLICY_KEYS = [
  'requireSecureBoot',
  'requireSeparators',
  'bootLoaders',
  'kernels',
  'cmdline',
  'requiredDbxDigests',
] as const;
export type TpmBootRuleName = (typeof TPM_BOOT_POLICY_KEYS)[number];

export const TPM_BOOT_POLICY_DEFAULTS = { requireSecureBoot: true, requireSeparators: true } as const;
