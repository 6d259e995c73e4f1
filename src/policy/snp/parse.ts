import { SnpProducts } from '../../formats/snp/product.js';
import {
  expectBoolean,
  expectHex,
  expectInt,
  expectNonEmptyArray,
  expectObject,
  policyInvalid,
} from '../json.js';
import {
  ANY,
  type Any,
  type MajorMinor,
  SNP_POLICY_KEYS,
  type SnpPolicy,
  type TcbMinimum,
  type TcbMinimums,
} from './policy.js';

type Validator<T> = (v: unknown, path: string) => T;

const orAny =
  <T>(f: Validator<T>): Validator<T | Any> =>
  (v, path) =>
    v === ANY ? ANY : f(v, path);

const u8 = (v: unknown, path: string): number => expectInt(v, path, 0, 0xff);

const majorMinor: Validator<MajorMinor> = (v, path) => {
  const o = expectObject(v, path, ['major', 'minor']);
  if (o.major === undefined || o.minor === undefined) throw policyInvalid(path, 'needs both major and minor');
  return { major: u8(o.major, `${path}.major`), minor: u8(o.minor, `${path}.minor`) };
};

const LEGACY_TCB_KEYS = ['bootloader', 'tee', 'snp', 'microcode'] as const;
const TURIN_TCB_KEYS = ['fmc', ...LEGACY_TCB_KEYS] as const;

/**
 * One product's minimum: every component of that product's layout is required (a missing component would
 * otherwise mean "no minimum" for it without anyone having said so); `fmc` exists on Turin only.
 */
function tcbMinimum(v: unknown, path: string, turin: boolean): TcbMinimum {
  const keys = turin ? TURIN_TCB_KEYS : LEGACY_TCB_KEYS;
  const o = expectObject(v, path, keys);
  const missing = keys.filter((k) => o[k] === undefined);
  if (missing.length > 0) throw policyInvalid(path, `missing TCB component(s): ${missing.join(', ')}`);
  const parts = {
    bootloader: u8(o.bootloader, `${path}.bootloader`),
    tee: u8(o.tee, `${path}.tee`),
    snp: u8(o.snp, `${path}.snp`),
    microcode: u8(o.microcode, `${path}.microcode`),
  };
  return turin ? { fmc: u8(o.fmc, `${path}.fmc`), ...parts } : parts;
}

const tcbMinimums: Validator<TcbMinimums> = (v, path) => {
  const o = expectObject(v, path, SnpProducts);
  const out: { -readonly [P in keyof TcbMinimums]: TcbMinimums[P] } = {};
  for (const product of SnpProducts) {
    const entry = o[product];
    if (entry === undefined) continue;
    out[product] = entry === ANY ? ANY : tcbMinimum(entry, `${path}.${product}`, product === 'Turin');
  }
  if (Object.keys(out).length === 0) {
    throw policyInvalid(path, "lists no product, so every report would fail; use 'any' for no minimum");
  }
  return out;
};

/** A u64 bit mask: a non-negative safe integer, or `0x` and 1-16 hex digits (normalized to lower case). */
const mitVector: Validator<number | string> = (v, path) => {
  if (typeof v === 'number') return expectInt(v, path, 0, Number.MAX_SAFE_INTEGER);
  if (typeof v === 'string' && /^0x[0-9a-fA-F]{1,16}$/.test(v)) return `0x${v.slice(2).toLowerCase()}`;
  throw policyInvalid(path, 'expected a non-negative integer or a hex string 0x<1-16 digits>');
};

const hex = (bytes: number | readonly number[]): Validator<string> => {
  return (v, path) => expectHex(v, path, bytes);
};
const hexList = (bytes: number): Validator<string[]> => {
  return (v, path) => expectNonEmptyArray(v, path, hex(bytes));
};

/**
 * CHIP_ID: 64 bytes, or a Turin hwID (8 bytes). Never all zero: the firmware writes zeros when the host masks
 * CHIP_ID (SNP_CONFIG MASK_CHIP_ID) and VLEK-signed reports carry none, so a zero value would match every
 * such report instead of naming one chip.
 */
const chipId: Validator<string> = (v, path) => {
  const value = expectHex(v, path, [64, 8]);
  if (/^0+$/.test(value)) {
    throw policyInvalid(
      path,
      'an all-zero CHIP_ID names no chip (masked and VLEK reports read as zeros); give the chip hwID',
    );
  }
  return value;
};

const flag = orAny(expectBoolean);

/** One validator per key; the mapped type makes the table fail to compile if a policy key is missing. */
const VALIDATORS: { readonly [K in keyof SnpPolicy]-?: Validator<NonNullable<SnpPolicy[K]>> } = {
  minimumTcb: orAny(tcbMinimums),
  minimumLaunchTcb: orAny(tcbMinimums),
  permitProvisionalFirmware: flag,
  minimumBuild: orAny(u8),
  minimumVersion: orAny(majorMinor),
  minimumGuestSvn: orAny((v, p) => expectInt(v, p, 0, 0xffff_ffff)),
  allowDebug: flag,
  allowMigrateMa: flag,
  allowSmt: flag,
  allowCxl: flag,
  requireSingleSocket: flag,
  requireMemAes256Xts: flag,
  requireRaplDis: flag,
  requireCiphertextHiding: flag,
  requirePageSwapDisable: flag,
  minimumAbi: orAny(majorMinor),
  measurements: orAny(hexList(48)),
  hostData: orAny(hex(32)),
  reportData: orAny(hex(64)),
  familyId: orAny(hex(16)),
  imageId: orAny(hex(16)),
  reportId: orAny(hex(32)),
  reportIdMa: orAny(hex(32)),
  chipId: orAny(chipId),
  trustedIdKeyDigests: orAny(hexList(48)),
  trustedAuthorKeyDigests: orAny(hexList(48)),
  requireAuthorKey: flag,
  requireIdBlock: flag,
  vmpl: orAny((v, p) => expectInt(v, p, 0, 3)),
  allowSmtEnabled: flag,
  allowTsme: flag,
  allowSevTio: flag,
  requireEcc: flag,
  requireRaplDisabled: flag,
  requireCiphertextHidingEnabled: flag,
  requireAliasCheckComplete: flag,
  minimumLaunchMitVector: orAny(mitVector),
  minimumCurrentMitVector: orAny(mitVector),
};

/**
 * Rules that only make sense together. Each rejected combination would otherwise either accept nothing
 * (a requirement with no trusted key to satisfy it) or silently ignore reference values the author gave.
 */
function checkCombinations(p: SnpPolicy): void {
  const authorList = Array.isArray(p.trustedAuthorKeyDigests);
  const idList = Array.isArray(p.trustedIdKeyDigests);
  if (p.requireAuthorKey === true && !authorList) {
    throw policyInvalid(
      '$.requireAuthorKey',
      'true needs trustedAuthorKeyDigests (a list of SHA-384 digests)',
    );
  }
  if (p.requireIdBlock === true && !authorList && !idList) {
    throw policyInvalid(
      '$.requireIdBlock',
      'true needs trustedIdKeyDigests or trustedAuthorKeyDigests (lists of SHA-384 digests)',
    );
  }
  if (
    (p.requireIdBlock === false || p.requireIdBlock === ANY) &&
    (authorList || idList || p.requireAuthorKey === true)
  ) {
    throw policyInvalid(
      '$.requireIdBlock',
      `${JSON.stringify(p.requireIdBlock)} would ignore the trusted key digests (or requireAuthorKey) the policy gives`,
    );
  }
}

/**
 * Validates a policy document strictly and returns it normalized (hex lower case without `0x`, only the
 * keys that were present). Unknown keys, hex of the wrong length, numbers out of range, empty allow-lists
 * and contradictory combinations are rejected.
 *
 * Throws InvalidArgument (`ERR_INVALID_ARGUMENT`, reason `policy.invalid`) with a message naming the
 * offending path (`$.minimumTcb.Turin.fmc: ...`); never anything else, whatever the input.
 */
export function parseSnpPolicy(json: unknown): SnpPolicy {
  const o = expectObject(json, '$', SNP_POLICY_KEYS);
  const out: Record<string, unknown> = {};
  for (const key of SNP_POLICY_KEYS) {
    // An own property holding undefined (only possible in code, never in JSON) counts as unset.
    if (o[key] === undefined) continue;
    const validate = VALIDATORS[key] as Validator<unknown>;
    out[key] = validate(o[key], `$.${key}`);
  }
  const policy = out as SnpPolicy;
  checkCombinations(policy);
  return policy;
}
