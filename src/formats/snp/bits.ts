/**
 * Bit fields of the SEV-SNP attestation report (SEV-SNP ABI 56860 rev 1.57: Table 9 "Guest Policy",
 * Table 23 ATTESTATION_REPORT PLATFORM_INFO and signer-info word at 0x48).
 */

const bit = (v: bigint, n: number): boolean => ((v >> BigInt(n)) & 1n) === 1n;

/** GUEST_POLICY (u64). Bit 17 is reserved and must be 1; bits 63:26 must be zero. */
export interface GuestPolicy {
  readonly raw: bigint;
  readonly abiMinor: number;
  readonly abiMajor: number;
  readonly smt: boolean;
  readonly migrateMa: boolean;
  readonly debug: boolean;
  readonly singleSocket: boolean;
  readonly cxlAllow: boolean;
  readonly memAes256Xts: boolean;
  readonly raplDis: boolean;
  readonly ciphertextHiding: boolean;
  readonly pageSwapDisable: boolean;
}

export const POLICY_RESERVED_ONE = 1n << 17n;
export const POLICY_MBZ_MASK = ~((1n << 26n) - 1n) & 0xffff_ffff_ffff_ffffn;

export function decodeGuestPolicy(raw: bigint): GuestPolicy {
  return {
    raw,
    abiMinor: Number(raw & 0xffn),
    abiMajor: Number((raw >> 8n) & 0xffn),
    smt: bit(raw, 16),
    migrateMa: bit(raw, 18),
    debug: bit(raw, 19),
    singleSocket: bit(raw, 20),
    cxlAllow: bit(raw, 21),
    memAes256Xts: bit(raw, 22),
    raplDis: bit(raw, 23),
    ciphertextHiding: bit(raw, 24),
    pageSwapDisable: bit(raw, 25),
  };
}

export type GuestPolicyFlags = Omit<GuestPolicy, 'raw' | 'abiMinor' | 'abiMajor'>;

export function encodeGuestPolicy(
  p: Partial<GuestPolicyFlags> & { abiMajor?: number; abiMinor?: number },
): bigint {
  const flags: [keyof GuestPolicyFlags, number][] = [
    ['smt', 16],
    ['migrateMa', 18],
    ['debug', 19],
    ['singleSocket', 20],
    ['cxlAllow', 21],
    ['memAes256Xts', 22],
    ['raplDis', 23],
    ['ciphertextHiding', 24],
    ['pageSwapDisable', 25],
  ];
  let raw = POLICY_RESERVED_ONE | BigInt(p.abiMinor ?? 0) | (BigInt(p.abiMajor ?? 0) << 8n);
  for (const [name, n] of flags) if (p[name]) raw |= 1n << BigInt(n);
  return raw;
}

/** PLATFORM_INFO (u64). Bit 6 is Turin's IOMMU_WRITE_SAFE (the real Turin vector sets it). */
export interface PlatformInfo {
  readonly raw: bigint;
  readonly smtEnabled: boolean;
  readonly tsmeEnabled: boolean;
  readonly eccEnabled: boolean;
  readonly raplDisabled: boolean;
  readonly ciphertextHidingEnabled: boolean;
  readonly aliasCheckComplete: boolean;
  readonly iommuWriteSafe: boolean;
  readonly sevTioEnabled: boolean;
}

export function decodePlatformInfo(raw: bigint): PlatformInfo {
  return {
    raw,
    smtEnabled: bit(raw, 0),
    tsmeEnabled: bit(raw, 1),
    eccEnabled: bit(raw, 2),
    raplDisabled: bit(raw, 3),
    ciphertextHidingEnabled: bit(raw, 4),
    aliasCheckComplete: bit(raw, 5),
    iommuWriteSafe: bit(raw, 6),
    sevTioEnabled: bit(raw, 7),
  };
}

/** SIGNING_KEY values of the signer-info word (bits 4:2). 2-6 are reserved. */
export const SigningKey = { VCEK: 0, VLEK: 1, None: 7 } as const;
export type SigningKey = (typeof SigningKey)[keyof typeof SigningKey];

export interface SignerInfo {
  readonly raw: number;
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  readonly signingKey: number;
}

export function decodeSignerInfo(raw: number): SignerInfo {
  return {
    raw,
    authorKeyEn: (raw & 1) === 1,
    maskChipKey: ((raw >> 1) & 1) === 1,
    signingKey: (raw >> 2) & 0b111,
  };
}

export function encodeSignerInfo(s: {
  authorKeyEn?: boolean;
  maskChipKey?: boolean;
  signingKey: number;
}): number {
  return (s.authorKeyEn ? 1 : 0) | (s.maskChipKey ? 2 : 0) | ((s.signingKey & 0b111) << 2);
}
