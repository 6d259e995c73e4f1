import type { PolicyFailure } from '../../errors.js';
import {
  decodeGuestPolicy,
  decodePlatformInfo,
  decodeSignerInfo,
  type GuestPolicy,
  type PlatformInfo,
  type SignerInfo,
} from '../../formats/snp/bits.js';
import type { SnpProduct } from '../../formats/snp/product.js';
import type { SnpReport } from '../../formats/snp/report.js';
import {
  decodeTcb,
  encodeTcb,
  formatTcb,
  TCB_COMPONENTS,
  type Tcb,
  tcbComponentsBelow,
} from '../../formats/snp/tcb.js';
import { ctEqual, fromHex, toHex } from '../../util/bytes.js';
import { ANY, type MajorMinor, SNP_POLICY_DEFAULTS, type SnpPolicy, type TcbMinimums } from './policy.js';

/**
 * The appraisal rules, one entry per policy rule, evaluated in this order (go-sev-guest validate order,
 * reference/snp-tdx.md A5 steps 7-15). A rule returns `undefined` when the policy places no constraint
 * on the report (unset without a default, `'any'`, an `allow*: true`, a `require*: false`), or the list of
 * its failures (empty when it passed). Rules see only the parsed report and its product.
 */
export interface RuleContext {
  readonly report: SnpReport;
  readonly product: SnpProduct;
  /** Already validated by parseSnpPolicy: hex is well-formed and of the right length. */
  readonly policy: SnpPolicy;
  readonly guest: GuestPolicy;
  readonly platform: PlatformInfo;
  readonly signer: SignerInfo;
}

/** Every failure code appraisal can report (docs/policy.md explains each). */
export const SNP_FAILURE_CODES = [
  'snp.guest_svn',
  'snp.policy.abi',
  'snp.policy.debug',
  'snp.policy.migrate_ma',
  'snp.policy.smt',
  'snp.policy.cxl',
  'snp.policy.single_socket',
  'snp.policy.mem_aes_256_xts',
  'snp.policy.rapl_dis',
  'snp.policy.ciphertext_hiding',
  'snp.policy.page_swap_disable',
  'snp.measurement',
  'snp.host_data',
  'snp.report_data',
  'snp.family_id',
  'snp.image_id',
  'snp.report_id',
  'snp.report_id_ma',
  'snp.chip_id',
  'snp.firmware.provisional',
  'snp.firmware.provisional_version',
  'snp.tcb.minimum',
  'snp.tcb.launch_minimum',
  'snp.firmware.build',
  'snp.firmware.version',
  'snp.platform.smt',
  'snp.platform.tsme',
  'snp.platform.sev_tio',
  'snp.platform.ecc',
  'snp.platform.rapl_disabled',
  'snp.platform.ciphertext_hiding',
  'snp.platform.alias_check_complete',
  'snp.author_key',
  'snp.id_block',
  'snp.mit_vector.launch',
  'snp.mit_vector.current',
  'snp.vmpl',
] as const;
export type SnpFailureCode = (typeof SNP_FAILURE_CODES)[number];

export type RuleOutcome = readonly PolicyFailure[] | undefined;

/** Rule names are the policy keys; the trusted-digest lists are inputs of requireAuthorKey/requireIdBlock. */
export type SnpRuleName = Exclude<keyof SnpPolicy, 'trustedIdKeyDigests' | 'trustedAuthorKeyDigests'>;

export interface SnpRule {
  readonly name: SnpRuleName;
  /** The failure codes this rule can report. */
  readonly codes: readonly SnpFailureCode[];
  readonly check: (c: RuleContext) => RuleOutcome;
}

export function ruleContext(report: SnpReport, product: SnpProduct, policy: SnpPolicy): RuleContext {
  return {
    report,
    product,
    policy,
    guest: decodeGuestPolicy(report.policy),
    platform: decodePlatformInfo(report.platformInfo),
    signer: decodeSignerInfo(report.signerInfo),
  };
}

const PASSED: readonly PolicyFailure[] = Object.freeze([]);

function fail(code: SnpFailureCode, message: string, expected?: string, actual?: string): PolicyFailure[] {
  return [
    {
      code,
      message,
      ...(expected !== undefined ? { expected } : {}),
      ...(actual !== undefined ? { actual } : {}),
    },
  ];
}

/** Bytes of a hex string that parseSnpPolicy has already validated. */
const bytesOf = (hex: string): Uint8Array => fromHex(hex) ?? new Uint8Array(0);

/** True when `value` equals any of `candidates`; compares against every candidate (no early exit). */
function oneOf(value: Uint8Array, candidates: readonly string[]): boolean {
  let found = false;
  for (const c of candidates) found = ctEqual(value, bytesOf(c)) || found;
  return found;
}

function showList(values: readonly string[]): string {
  if (values.length === 1) return values[0]!;
  if (values.length <= 8) return `one of [${values.join(', ')}]`;
  return `one of ${values.length} allowed values`;
}

const showVersion = (v: MajorMinor): string => `${v.major}.${v.minor}`;
const versionKey = (major: number, minor: number): number => (major << 8) | minor;

// --- rule builders ---------------------------------------------------------------------------------------

type FlagKey = {
  [K in keyof SnpPolicy]-?: NonNullable<SnpPolicy[K]> extends boolean | 'any' ? K : never;
}[keyof SnpPolicy];

function flagSetting(c: RuleContext, key: FlagKey): boolean | 'any' | undefined {
  const v = c.policy[key];
  if (v !== undefined) return v;
  return (SNP_POLICY_DEFAULTS as Partial<Record<FlagKey, boolean>>)[key];
}

/** A maximum: when the policy does not allow the feature, the bit must be clear. */
function allowRule(
  name: SnpRuleName & FlagKey,
  code: SnpFailureCode,
  what: string,
  bit: (c: RuleContext) => boolean,
): SnpRule {
  return {
    name,
    codes: [code],
    check(c) {
      const allowed = flagSetting(c, name);
      if (allowed === ANY || allowed === true || allowed === undefined) return undefined;
      return bit(c) ? fail(code, `${what} is set but the policy does not allow it`, '0', '1') : PASSED;
    },
  };
}

/** A requirement: when the policy requires the feature, the bit must be set. */
function requireRule(
  name: SnpRuleName & FlagKey,
  code: SnpFailureCode,
  what: string,
  bit: (c: RuleContext) => boolean,
): SnpRule {
  return {
    name,
    codes: [code],
    check(c) {
      if (flagSetting(c, name) !== true) return undefined;
      return bit(c) ? PASSED : fail(code, `${what} is required but not set`, '1', '0');
    },
  };
}

/** A major.minor minimum (guest policy ABI, firmware API version), compared as one ordered pair. */
function minVersionRule(
  name: 'minimumAbi' | 'minimumVersion',
  code: SnpFailureCode,
  what: string,
  get: (c: RuleContext) => { major: number; minor: number },
): SnpRule {
  return {
    name,
    codes: [code],
    check(c) {
      const min = c.policy[name];
      if (min === undefined || min === ANY) return undefined;
      const got = get(c);
      return versionKey(got.major, got.minor) >= versionKey(min.major, min.minor)
        ? PASSED
        : fail(code, `${what} is below the policy minimum`, `>= ${showVersion(min)}`, showVersion(got));
    },
  };
}

type HexKey = 'hostData' | 'reportData' | 'familyId' | 'imageId' | 'reportId' | 'reportIdMa';

function exactRule(
  name: HexKey,
  code: SnpFailureCode,
  field: string,
  value: (r: SnpReport) => Uint8Array,
): SnpRule {
  return {
    name,
    codes: [code],
    check(c) {
      const want = c.policy[name];
      if (want === undefined || want === ANY) return undefined;
      const got = value(c.report);
      return ctEqual(got, bytesOf(want))
        ? PASSED
        : fail(code, `${field} does not match the policy`, want, toHex(got));
    },
  };
}

function tcbMinimumRule(
  name: 'minimumTcb' | 'minimumLaunchTcb',
  code: SnpFailureCode,
  field: string,
  raw: (r: SnpReport) => bigint,
): SnpRule {
  return {
    name,
    codes: [code],
    check(c) {
      const minimums: TcbMinimums | 'any' | undefined = c.policy[name];
      if (minimums === undefined || minimums === ANY) return undefined;
      const min = minimums[c.product];
      if (min === ANY) return undefined;
      const actual = decodeTcb(raw(c.report), c.product);
      if (min === undefined) {
        return fail(
          code,
          `the policy sets ${name} for ${Object.keys(minimums).join(', ')} but not for ${c.product}`,
          `a minimum for ${c.product}`,
          formatTcb(actual),
        );
      }
      // Component-wise, decoded for this product's layout: a raw u64 comparison would let a high
      // microcode byte hide a low SNP SPL.
      const minimum = decodeTcb(encodeTcb(min, c.product), c.product);
      const below = tcbComponentsBelow(actual, minimum);
      return below.length === 0
        ? PASSED
        : fail(
            code,
            `${field} is below the policy minimum in: ${below.join(', ')}`,
            `>= ${formatTcb(minimum)}`,
            formatTcb(actual),
          );
    },
  };
}

function mitVectorRule(
  name: 'minimumLaunchMitVector' | 'minimumCurrentMitVector',
  code: SnpFailureCode,
  field: string,
  value: (r: SnpReport) => bigint | undefined,
): SnpRule {
  return {
    name,
    codes: [code],
    check(c) {
      const setting = c.policy[name];
      if (setting === undefined || setting === ANY) return undefined;
      const min = BigInt(setting);
      const show = (v: bigint) => `0x${v.toString(16)}`;
      const got = value(c.report);
      if (got === undefined) {
        return fail(
          code,
          `${field} is required but a version ${c.report.version} report has none (v5 and later only)`,
          `all bits of ${show(min)}`,
          'absent',
        );
      }
      const missing = min & ~got;
      return missing === 0n
        ? PASSED
        : fail(code, `${field} lacks required bits ${show(missing)}`, `all bits of ${show(min)}`, show(got));
    },
  };
}

/** Whether the report's author key is enabled and trusted (go-sev-guest validateKeys). */
function authorKeyTrusted(c: RuleContext): boolean {
  const list = c.policy.trustedAuthorKeyDigests;
  return c.signer.authorKeyEn && Array.isArray(list) && oneOf(c.report.authorKeyDigest, list);
}

// --- the rules --------------------------------------------------------------------------------------------

export const SNP_RULES: readonly SnpRule[] = [
  // A5 step 7.
  {
    name: 'minimumGuestSvn',
    codes: ['snp.guest_svn'],
    check(c) {
      const min = c.policy.minimumGuestSvn;
      if (min === undefined || min === ANY) return undefined;
      return c.report.guestSvn >= min
        ? PASSED
        : fail('snp.guest_svn', 'GUEST_SVN is below the policy minimum', `>= ${min}`, `${c.report.guestSvn}`);
    },
  },
  // A5 step 8: guest policy.
  minVersionRule('minimumAbi', 'snp.policy.abi', 'the guest policy ABI version', (c) => ({
    major: c.guest.abiMajor,
    minor: c.guest.abiMinor,
  })),
  allowRule('allowDebug', 'snp.policy.debug', 'POLICY.DEBUG', (c) => c.guest.debug),
  allowRule('allowMigrateMa', 'snp.policy.migrate_ma', 'POLICY.MIGRATE_MA', (c) => c.guest.migrateMa),
  allowRule('allowSmt', 'snp.policy.smt', 'POLICY.SMT', (c) => c.guest.smt),
  allowRule('allowCxl', 'snp.policy.cxl', 'POLICY.CXL_ALLOW', (c) => c.guest.cxlAllow),
  requireRule(
    'requireSingleSocket',
    'snp.policy.single_socket',
    'POLICY.SINGLE_SOCKET',
    (c) => c.guest.singleSocket,
  ),
  requireRule(
    'requireMemAes256Xts',
    'snp.policy.mem_aes_256_xts',
    'POLICY.MEM_AES_256_XTS',
    (c) => c.guest.memAes256Xts,
  ),
  requireRule('requireRaplDis', 'snp.policy.rapl_dis', 'POLICY.RAPL_DIS', (c) => c.guest.raplDis),
  requireRule(
    'requireCiphertextHiding',
    'snp.policy.ciphertext_hiding',
    'POLICY.CIPHERTEXT_HIDING_DRAM',
    (c) => c.guest.ciphertextHiding,
  ),
  requireRule(
    'requirePageSwapDisable',
    'snp.policy.page_swap_disable',
    'POLICY.PAGE_SWAP_DISABLE',
    (c) => c.guest.pageSwapDisable,
  ),
  // A5 step 9: exact byte fields.
  {
    name: 'measurements',
    codes: ['snp.measurement'],
    check(c) {
      const list = c.policy.measurements;
      if (list === undefined || list === ANY) return undefined;
      return oneOf(c.report.measurement, list)
        ? PASSED
        : fail(
            'snp.measurement',
            'MEASUREMENT is not one the policy allows',
            showList(list),
            toHex(c.report.measurement),
          );
    },
  },
  exactRule('hostData', 'snp.host_data', 'HOST_DATA', (r) => r.hostData),
  exactRule('reportData', 'snp.report_data', 'REPORT_DATA', (r) => r.reportData),
  exactRule('familyId', 'snp.family_id', 'FAMILY_ID', (r) => r.familyId),
  exactRule('imageId', 'snp.image_id', 'IMAGE_ID', (r) => r.imageId),
  exactRule('reportId', 'snp.report_id', 'REPORT_ID', (r) => r.reportId),
  exactRule('reportIdMa', 'snp.report_id_ma', 'REPORT_ID_MA', (r) => r.reportIdMa),
  {
    name: 'chipId',
    codes: ['snp.chip_id'],
    check(c) {
      const want = c.policy.chipId;
      if (want === undefined || want === ANY) return undefined;
      // An 8-byte value is a Turin hwID: the report's CHIP_ID holds it in bytes 0-7 and zeros after.
      const expected = new Uint8Array(64);
      expected.set(bytesOf(want));
      return ctEqual(c.report.chipId, expected)
        ? PASSED
        : fail('snp.chip_id', 'CHIP_ID does not match the policy', toHex(expected), toHex(c.report.chipId));
    },
  },
  // A5 steps 10-11: committed vs current firmware.
  {
    name: 'permitProvisionalFirmware',
    codes: ['snp.firmware.provisional', 'snp.firmware.provisional_version'],
    check(c) {
      const permit = flagSetting(c, 'permitProvisionalFirmware');
      if (permit === ANY || permit === undefined) return undefined;
      const r = c.report;
      const failures: PolicyFailure[] = [];
      const committed = decodeTcb(r.committedTcb, c.product);
      const current = decodeTcb(r.currentTcb, c.product);
      const tcbProblem = committedTcbProblem(committed, current, c.product, permit);
      if (tcbProblem) {
        failures.push(
          ...fail(
            'snp.firmware.provisional',
            permit
              ? `COMMITTED_TCB is not at most CURRENT_TCB in: ${tcbProblem}`
              : `COMMITTED_TCB differs from CURRENT_TCB in: ${tcbProblem} (provisional firmware is not permitted)`,
            `${permit ? '<=' : '=='} CURRENT_TCB ${formatTcb(current)}`,
            formatTcb(committed),
          ),
        );
      }
      // Firmware versions are ordered major, then minor, then build (build numbers restart per minor).
      const cur = [r.currentMajor, r.currentMinor, r.currentBuild] as const;
      const com = [r.committedMajor, r.committedMinor, r.committedBuild] as const;
      const cmp = compareVersions(com, cur);
      if (permit ? cmp > 0 : cmp !== 0) {
        failures.push(
          ...fail(
            'snp.firmware.provisional_version',
            permit
              ? 'the committed firmware version is above the current one'
              : 'the committed firmware version differs from the current one (provisional firmware is not permitted)',
            `${permit ? '<=' : '=='} ${cur.join('.')}`,
            com.join('.'),
          ),
        );
      }
      return failures;
    },
  },
  // A5 step 10: minimum TCBs (REPORTED_TCB == certificate TCB was checked by the verifier).
  tcbMinimumRule('minimumTcb', 'snp.tcb.minimum', 'REPORTED_TCB', (r) => r.reportedTcb),
  tcbMinimumRule('minimumLaunchTcb', 'snp.tcb.launch_minimum', 'LAUNCH_TCB', (r) => r.launchTcb),
  // A5 step 11: firmware minimums.
  {
    name: 'minimumBuild',
    codes: ['snp.firmware.build'],
    check(c) {
      const min = c.policy.minimumBuild;
      if (min === undefined || min === ANY) return undefined;
      return c.report.currentBuild >= min
        ? PASSED
        : fail(
            'snp.firmware.build',
            'CURRENT_BUILD is below the policy minimum',
            `>= ${min}`,
            `${c.report.currentBuild}`,
          );
    },
  },
  minVersionRule('minimumVersion', 'snp.firmware.version', 'the firmware API version', (c) => ({
    major: c.report.currentMajor,
    minor: c.report.currentMinor,
  })),
  // A5 step 12: PLATFORM_INFO.
  allowRule('allowSmtEnabled', 'snp.platform.smt', 'PLATFORM_INFO.SMT_EN', (c) => c.platform.smtEnabled),
  allowRule('allowTsme', 'snp.platform.tsme', 'PLATFORM_INFO.TSME_EN', (c) => c.platform.tsmeEnabled),
  allowRule(
    'allowSevTio',
    'snp.platform.sev_tio',
    'PLATFORM_INFO.SEV_TIO_EN',
    (c) => c.platform.sevTioEnabled,
  ),
  requireRule('requireEcc', 'snp.platform.ecc', 'PLATFORM_INFO.ECC_EN', (c) => c.platform.eccEnabled),
  requireRule(
    'requireRaplDisabled',
    'snp.platform.rapl_disabled',
    'PLATFORM_INFO.RAPL_DIS',
    (c) => c.platform.raplDisabled,
  ),
  requireRule(
    'requireCiphertextHidingEnabled',
    'snp.platform.ciphertext_hiding',
    'PLATFORM_INFO.CIPHERTEXT_HIDING_DRAM_EN',
    (c) => c.platform.ciphertextHidingEnabled,
  ),
  requireRule(
    'requireAliasCheckComplete',
    'snp.platform.alias_check_complete',
    'PLATFORM_INFO.ALIAS_CHECK_COMPLETE',
    (c) => c.platform.aliasCheckComplete,
  ),
  // A5 step 13: author key and ID block. The firmware checked the ID block's signatures at launch; here
  // only the digests of the keys that signed it are compared with the trusted ones.
  {
    name: 'requireAuthorKey',
    codes: ['snp.author_key'],
    check(c) {
      if (flagSetting(c, 'requireAuthorKey') !== true) return undefined;
      if (!c.signer.authorKeyEn) {
        return fail(
          'snp.author_key',
          'an author key is required but AUTHOR_KEY_EN is 0',
          'AUTHOR_KEY_EN=1',
          '0',
        );
      }
      const list = c.policy.trustedAuthorKeyDigests;
      return authorKeyTrusted(c)
        ? PASSED
        : fail(
            'snp.author_key',
            'AUTHOR_KEY_DIGEST is not a trusted author key',
            Array.isArray(list) ? showList(list) : 'a trusted author key (none listed)',
            toHex(c.report.authorKeyDigest),
          );
    },
  },
  {
    name: 'requireIdBlock',
    codes: ['snp.id_block'],
    check(c) {
      const p = c.policy;
      const setting =
        p.requireIdBlock ??
        (Array.isArray(p.trustedIdKeyDigests) ||
          Array.isArray(p.trustedAuthorKeyDigests) ||
          p.requireAuthorKey === true);
      if (setting !== true) return undefined;
      const ids = Array.isArray(p.trustedIdKeyDigests) ? p.trustedIdKeyDigests : [];
      const idTrusted = oneOf(c.report.idKeyDigest, ids);
      // Evaluate both (no short circuit) so the time taken does not depend on which matched.
      const authorTrusted = authorKeyTrusted(c);
      return idTrusted || authorTrusted
        ? PASSED
        : fail(
            'snp.id_block',
            'neither ID_KEY_DIGEST nor an enabled AUTHOR_KEY_DIGEST is a trusted key',
            ids.length > 0 ? `ID key ${showList(ids)} or a trusted author key` : 'a trusted author key',
            `ID_KEY_DIGEST ${toHex(c.report.idKeyDigest)}, AUTHOR_KEY_EN=${c.signer.authorKeyEn ? 1 : 0}`,
          );
    },
  },
  // A5 step 14.
  mitVectorRule(
    'minimumLaunchMitVector',
    'snp.mit_vector.launch',
    'LAUNCH_MIT_VECTOR',
    (r) => r.launchMitVector,
  ),
  mitVectorRule(
    'minimumCurrentMitVector',
    'snp.mit_vector.current',
    'CURRENT_MIT_VECTOR',
    (r) => r.currentMitVector,
  ),
  // A5 step 15.
  {
    name: 'vmpl',
    codes: ['snp.vmpl'],
    check(c) {
      const want = c.policy.vmpl ?? SNP_POLICY_DEFAULTS.vmpl;
      if (want === ANY) return undefined;
      return c.report.vmpl === want
        ? PASSED
        : fail('snp.vmpl', 'the report was requested at another VMPL', `${want}`, `${c.report.vmpl}`);
    },
  },
];

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

const U64 = (1n << 64n) - 1n;

/** The bits of a TCB_VERSION that no component of `product`'s layout uses (its reserved bytes). */
function reservedTcbBits(product: SnpProduct): bigint {
  const all = { fmc: 0xff, bootloader: 0xff, tee: 0xff, snp: 0xff, microcode: 0xff };
  return ~encodeTcb(all, product) & U64;
}

/**
 * Where COMMITTED_TCB departs from CURRENT_TCB (undefined when it does not): the components above CURRENT_TCB
 * when provisional firmware is permitted, the components that differ when it is not, and in both cases the
 * reserved bytes if they differ. Reserved bytes have no order (on Milan and Genoa they are the VCEK's
 * spl_4..spl_7), so two TCBs that differ there cannot be said to be ordered: one rule, fail closed, whatever
 * the direction of the components.
 */
function committedTcbProblem(
  committed: Tcb,
  current: Tcb,
  product: SnpProduct,
  permit: boolean,
): string | undefined {
  const parts: string[] = permit
    ? tcbComponentsBelow(current, committed)
    : TCB_COMPONENTS.filter((k) => committed[k] !== current[k]);
  const reserved = reservedTcbBits(product);
  if ((committed.raw & reserved) !== (current.raw & reserved)) parts.push('reserved bytes');
  return parts.length > 0 ? parts.join(', ') : undefined;
}
