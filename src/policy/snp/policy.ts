import type { SnpProduct } from '../../formats/snp/product.js';

/**
 * The SEV-SNP appraisal policy: what a verified attestation report must show to be accepted. It covers the
 * options of go-sev-guest's `validate.Options` (reference/snp-tdx.md A5, steps 7-17) except those that need
 * the certificate (REPORTED_TCB == certificate TCB, CHIP_ID == hwID), which the verifier has already checked,
 * plus platform-info requirements and mitigation-vector minimums.
 *
 * ## Unset, `'any'` and defaults
 * Every rule takes either a value or the string `'any'`, the explicit "don't care": a rule set to `'any'` is
 * never evaluated and is reported in `unchecked`. A rule left unset takes its **safe default**:
 *
 * | rule | unset means |
 * |---|---|
 * | `allowDebug` | `false`: DEBUG must be 0 (a debuggable guest's memory is readable by the host) |
 * | `allowMigrateMa` | `false`: MIGRATE_MA must be 0 (a migration agent can export the guest's memory) |
 * | `allowCxl` | `false`: CXL_ALLOW must be 0 (the report cannot show how CXL-attached memory is protected) |
 * | `allowSmt` | `true`: SMT may be allowed (see below) |
 * | `permitProvisionalFirmware` | `false`: COMMITTED_TCB == CURRENT_TCB and committed == current firmware version |
 * | `vmpl` | `0`: the report was requested at VMPL0 (the SVSM requests its reports at VMPL0; a report from a lower-privileged VMPL could come from the guest OS) |
 * | `allowSmtEnabled`, `allowTsme`, `allowSevTio` | `true`: host platform features, allowed (as go-sev-guest does when `PlatformInfo` is nil) |
 * | `require*` | `false`: nothing required |
 * | `minimum*` | no minimum |
 * | `requireIdBlock` | `true` when `trustedIdKeyDigests` or `trustedAuthorKeyDigests` (or `requireAuthorKey: true`) is given, else `false` |
 *
 * SMT is allowed by default because it is on for practically every cloud host (every real report the
 * project holds sets POLICY.SMT and PLATFORM_INFO.SMT_EN); forbidding it by default would make operators
 * write `'any'` everywhere and so hide the choice. SMT widens the side-channel surface between sibling
 * threads: set `allowSmt: false` (and `allowSmtEnabled: false`) where the fleet runs without it.
 *
 * Reference values that have no safe default - `measurements`, `hostData`, `reportData`, `familyId`,
 * `imageId`, `reportId`, `reportIdMa`, `chipId`, the trusted key digests - are not checked when unset.
 * Appraisal lists every rule that placed no constraint on the report (unset without a default, a default
 * that requires nothing, `'any'`, or an `allow*: true`) in `unchecked`, so callers can say honestly what was
 * not checked. docs/policy.md has the full table and the failure codes.
 *
 * Byte fields are lower- or upper-case hex, optionally with a `0x` prefix, of exactly the field's length.
 * The type is plain JSON data so that a policy can be stored and sent as a JSON document unchanged.
 */
export type Any = 'any';
export const ANY: Any = 'any';

/** A minimum TCB for one product, compared component by component. `fmc` exists on Turin only. */
export interface TcbMinimum {
  readonly fmc?: number;
  readonly bootloader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
}

/**
 * Minimum TCBs per product: a report from a product that is not listed fails (the policy said a minimum
 * matters but gave none for that product); list it with `'any'` to accept it without a minimum.
 */
export type TcbMinimums = { readonly [P in SnpProduct]?: TcbMinimum | Any };

/** A major.minor pair (firmware API version, guest-policy ABI version). */
export interface MajorMinor {
  readonly major: number;
  readonly minor: number;
}

export interface SnpPolicy {
  // --- TCB and firmware (A5 steps 10, 11) ---
  /** Minimum REPORTED_TCB per product. REPORTED_TCB is the TCB the signing key (VCEK/VLEK) is derived from, so it is the one TCB an attacker holding an older firmware's key cannot raise. */
  readonly minimumTcb?: TcbMinimums | Any;
  /** Minimum LAUNCH_TCB per product (the CURRENT_TCB when the guest was launched). */
  readonly minimumLaunchTcb?: TcbMinimums | Any;
  /** Unset/false: COMMITTED_TCB == CURRENT_TCB and committed == current firmware version. true: committed <= current (component-wise; version lexicographic). */
  readonly permitProvisionalFirmware?: boolean | Any;
  /** Minimum CURRENT_BUILD (compared alone, as go-sev-guest does; pair it with `minimumVersion`). */
  readonly minimumBuild?: number | Any;
  /** Minimum CURRENT_MAJOR.CURRENT_MINOR firmware API version. */
  readonly minimumVersion?: MajorMinor | Any;

  // --- guest (A5 step 7) ---
  readonly minimumGuestSvn?: number | Any;

  // --- guest policy (A5 step 8): maximums ---
  readonly allowDebug?: boolean | Any;
  readonly allowMigrateMa?: boolean | Any;
  readonly allowSmt?: boolean | Any;
  readonly allowCxl?: boolean | Any;
  // --- guest policy: requirements ---
  readonly requireSingleSocket?: boolean | Any;
  readonly requireMemAes256Xts?: boolean | Any;
  readonly requireRaplDis?: boolean | Any;
  readonly requireCiphertextHiding?: boolean | Any;
  readonly requirePageSwapDisable?: boolean | Any;
  /** Minimum POLICY.ABI_MAJOR.ABI_MINOR. */
  readonly minimumAbi?: MajorMinor | Any;

  // --- reference values (A5 step 9); unchecked when unset ---
  /** Allowed MEASUREMENT values (48-byte hex each); the report must equal one of them. */
  readonly measurements?: readonly string[] | Any;
  readonly hostData?: string | Any;
  readonly reportData?: string | Any;
  readonly familyId?: string | Any;
  readonly imageId?: string | Any;
  readonly reportId?: string | Any;
  readonly reportIdMa?: string | Any;
  /**
   * 64-byte CHIP_ID, or (Turin) the 8-byte hwID, which must then be followed by 56 zero bytes in the report.
   * All zeros is refused: masked and VLEK-signed reports carry a zero CHIP_ID, so it would match them all.
   */
  readonly chipId?: string | Any;

  // --- ID block and author key (A5 step 13) ---
  /** SHA-384 digests (48-byte hex) of trusted ID keys in SEV format. */
  readonly trustedIdKeyDigests?: readonly string[] | Any;
  /** SHA-384 digests (48-byte hex) of trusted author keys in SEV format. */
  readonly trustedAuthorKeyDigests?: readonly string[] | Any;
  /** true: AUTHOR_KEY_EN must be 1 and AUTHOR_KEY_DIGEST must be trusted. */
  readonly requireAuthorKey?: boolean | Any;
  /** true: the author key is trusted (AUTHOR_KEY_EN=1) or ID_KEY_DIGEST is trusted. Default: see the module doc. */
  readonly requireIdBlock?: boolean | Any;

  // --- VMPL (A5 step 15) ---
  /** The VMPL the report was requested at (0-3). */
  readonly vmpl?: number | Any;

  // --- PLATFORM_INFO (A5 step 12): maximums, then requirements ---
  readonly allowSmtEnabled?: boolean | Any;
  readonly allowTsme?: boolean | Any;
  readonly allowSevTio?: boolean | Any;
  readonly requireEcc?: boolean | Any;
  readonly requireRaplDisabled?: boolean | Any;
  /** PLATFORM_INFO.CIPHERTEXT_HIDING_DRAM_EN (named apart from the guest-policy `requireCiphertextHiding`). */
  readonly requireCiphertextHidingEnabled?: boolean | Any;
  readonly requireAliasCheckComplete?: boolean | Any;

  // --- mitigation vectors (A5 step 14; report v5 only) ---
  /** Bits that LAUNCH_MIT_VECTOR must all have: (vector & min) == min. A safe integer or a hex string (`0x3f`). */
  readonly minimumLaunchMitVector?: number | string | Any;
  /** Bits that CURRENT_MIT_VECTOR must all have. */
  readonly minimumCurrentMitVector?: number | string | Any;
}

/** The defaults of rules that have one (see the module doc); everything else is unchecked when unset. */
export const SNP_POLICY_DEFAULTS = {
  allowDebug: false,
  allowMigrateMa: false,
  allowSmt: true,
  allowCxl: false,
  permitProvisionalFirmware: false,
  vmpl: 0,
  allowSmtEnabled: true,
  allowTsme: true,
  allowSevTio: true,
} as const satisfies Partial<SnpPolicy>;

/** Every key an SnpPolicy may have, in the order appraisal evaluates and reports them. */
export const SNP_POLICY_KEYS = [
  'minimumGuestSvn',
  'minimumAbi',
  'allowDebug',
  'allowMigrateMa',
  'allowSmt',
  'allowCxl',
  'requireSingleSocket',
  'requireMemAes256Xts',
  'requireRaplDis',
  'requireCiphertextHiding',
  'requirePageSwapDisable',
  'measurements',
  'hostData',
  'reportData',
  'familyId',
  'imageId',
  'reportId',
  'reportIdMa',
  'chipId',
  'permitProvisionalFirmware',
  'minimumTcb',
  'minimumLaunchTcb',
  'minimumBuild',
  'minimumVersion',
  'allowSmtEnabled',
  'allowTsme',
  'allowSevTio',
  'requireEcc',
  'requireRaplDisabled',
  'requireCiphertextHidingEnabled',
  'requireAliasCheckComplete',
  'requireAuthorKey',
  'trustedAuthorKeyDigests',
  'trustedIdKeyDigests',
  'requireIdBlock',
  'minimumLaunchMitVector',
  'minimumCurrentMitVector',
  'vmpl',
] as const satisfies readonly (keyof SnpPolicy)[];
export type SnpPolicyKey = (typeof SNP_POLICY_KEYS)[number];
