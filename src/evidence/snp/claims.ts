import { createHash } from 'node:crypto';
import {
  decodeGuestPolicy,
  decodePlatformInfo,
  decodeSignerInfo,
  decodeTcb,
  type GuestPolicy,
  type PlatformInfo,
  type SnpProduct,
  type SnpReport,
  type Tcb,
} from '../../formats/snp/index.js';
import { reversed, toHex } from '../../util/bytes.js';
import type { EvidenceClaims } from '../types.js';
import type { AmdSigner } from './amd-cert.js';
import type { SnpVerified } from './verify.js';

/**
 * Claims from a verified SEV-SNP report: a JSON-friendly object (byte strings as lower-case hex, u64 values
 * as `0x` + 16 hex digits, TCBs decoded for the product, dates as ISO strings) that the CLI prints and the
 * policy layer and attestation tokens consume. Field names follow the report (SEV-SNP ABI 56860 Table 23).
 */
export interface SnpTcbClaims {
  readonly raw: string;
  readonly fmc?: number;
  /** The components are absent only when the product is unknown (see reportClaims). */
  readonly bootloader?: number;
  readonly tee?: number;
  readonly snp?: number;
  readonly microcode?: number;
}

export interface SnpFirmwareVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
  /** `major.minor.build`, e.g. "1.55.29". */
  readonly version: string;
}

type Flags<T> = { readonly [K in Exclude<keyof T, 'raw'>]: T[K] } & { readonly raw: string };

/** Every field of a report, decoded (no verification implied). */
export interface SnpReportClaims {
  readonly tee: 'snp';
  /** Absent only for a v2 report whose product was not given. */
  readonly product?: SnpProduct;
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: Flags<GuestPolicy>;
  readonly familyId: string;
  readonly imageId: string;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly platformInfo: Flags<PlatformInfo>;
  readonly authorKeyEn: boolean;
  readonly reportData: string;
  readonly measurement: string;
  readonly hostData: string;
  readonly idKeyDigest: string;
  readonly authorKeyDigest: string;
  readonly reportId: string;
  readonly reportIdMa: string;
  readonly chipId: string;
  /** v3+ reports only. */
  readonly cpuid?: { readonly family: number; readonly model: number; readonly stepping: number };
  readonly currentTcb: SnpTcbClaims;
  readonly reportedTcb: SnpTcbClaims;
  readonly committedTcb: SnpTcbClaims;
  readonly launchTcb: SnpTcbClaims;
  readonly currentFirmware: SnpFirmwareVersion;
  readonly committedFirmware: SnpFirmwareVersion;
  /** v5 reports only. */
  readonly launchMitVector?: string;
  readonly currentMitVector?: string;
  readonly signerInfo?: Flags<ReturnType<typeof decodeSignerInfo>>;
  /** R and S as big-endian hex. */
  readonly signature?: { readonly r: string; readonly s: string };
}

export interface SnpClaims extends Omit<SnpReportClaims, 'signature' | 'signerInfo'> {
  readonly product: SnpProduct;
  readonly signer: AmdSigner;
  /** The VCEK or VLEK that signed the report. */
  readonly signingCert: {
    readonly kind: AmdSigner;
    readonly sha256: string;
    readonly productName?: string;
    readonly stepping?: string;
    readonly structVersion?: number;
    readonly tcb: SnpTcbClaims;
    readonly hwId?: string;
    readonly cspId?: string;
    readonly notBefore: string;
    readonly notAfter: string;
  };
  /** What the verifier checked, so policy can require it (e.g. chipIdChecked) rather than assume it. */
  readonly verification: {
    readonly chipIdChecked: boolean;
    readonly crlChecked: boolean;
    readonly rootSha256: string;
    readonly rootTrust: 'pinned' | 'configured';
  };
}

const u64 = (v: bigint): string => `0x${v.toString(16).padStart(16, '0')}`;

export function tcbClaims(t: Tcb): SnpTcbClaims {
  return {
    raw: u64(t.raw),
    ...(t.fmc !== undefined ? { fmc: t.fmc } : {}),
    bootloader: t.bootloader,
    tee: t.tee,
    snp: t.snp,
    microcode: t.microcode,
  };
}

function firmware(major: number, minor: number, build: number): SnpFirmwareVersion {
  return { major, minor, build, version: `${major}.${minor}.${build}` };
}

/**
 * Decodes every field of a report, signed or not: what `vouchsafe inspect snp` prints, and the report part
 * of {@link toSnpClaims}. Without a product (a v2 report has no CPUID) TCBs are given raw only.
 */
export function reportClaims(r: SnpReport, product: SnpProduct | undefined): SnpReportClaims {
  const tcb = (raw: bigint): SnpTcbClaims =>
    product ? tcbClaims(decodeTcb(raw, product)) : { raw: u64(raw) };
  const signer = decodeSignerInfo(r.signerInfo);
  return {
    tee: 'snp',
    ...(product ? { product } : {}),
    version: r.version,
    guestSvn: r.guestSvn,
    policy: { ...decodeGuestPolicy(r.policy), raw: u64(r.policy) },
    familyId: toHex(r.familyId),
    imageId: toHex(r.imageId),
    vmpl: r.vmpl,
    signatureAlgo: r.signatureAlgo,
    platformInfo: { ...decodePlatformInfo(r.platformInfo), raw: u64(r.platformInfo) },
    signerInfo: { ...signer, raw: `0x${signer.raw.toString(16)}` },
    authorKeyEn: signer.authorKeyEn,
    reportData: toHex(r.reportData),
    measurement: toHex(r.measurement),
    hostData: toHex(r.hostData),
    idKeyDigest: toHex(r.idKeyDigest),
    authorKeyDigest: toHex(r.authorKeyDigest),
    reportId: toHex(r.reportId),
    reportIdMa: toHex(r.reportIdMa),
    chipId: toHex(r.chipId),
    ...(r.cpuid ? { cpuid: { ...r.cpuid } } : {}),
    currentTcb: tcb(r.currentTcb),
    reportedTcb: tcb(r.reportedTcb),
    committedTcb: tcb(r.committedTcb),
    launchTcb: tcb(r.launchTcb),
    currentFirmware: firmware(r.currentMajor, r.currentMinor, r.currentBuild),
    committedFirmware: firmware(r.committedMajor, r.committedMinor, r.committedBuild),
    ...(r.launchMitVector !== undefined ? { launchMitVector: u64(r.launchMitVector) } : {}),
    ...(r.currentMitVector !== undefined ? { currentMitVector: u64(r.currentMitVector) } : {}),
    signature: { r: toHex(reversed(r.signature.r)), s: toHex(reversed(r.signature.s)) },
  };
}

/** Builds the claims of a verified report. Pure; throws nothing for a value verifySnp returned. */
export function toSnpClaims(v: SnpVerified): SnpClaims {
  const leaf = v.leaf;
  const { signature: _sig, signerInfo: _si, ...report } = reportClaims(v.report, v.product);
  return {
    ...report,
    product: v.product,
    signer: v.signer,
    signingCert: {
      kind: leaf.kind,
      sha256: leaf.sha256,
      ...(leaf.productName !== undefined ? { productName: leaf.productName } : {}),
      ...(leaf.stepping !== undefined ? { stepping: leaf.stepping } : {}),
      ...(leaf.structVersion !== undefined ? { structVersion: leaf.structVersion } : {}),
      tcb: tcbClaims(leaf.tcb),
      ...(leaf.hwId ? { hwId: toHex(leaf.hwId) } : {}),
      ...(leaf.cspId !== undefined ? { cspId: leaf.cspId } : {}),
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
    },
    verification: {
      chipIdChecked: v.chipIdChecked,
      crlChecked: v.crlChecked,
      rootSha256: v.rootSha256,
      rootTrust: v.rootTrust,
    },
  };
}

/**
 * The TEE-independent claims of a verified report (src/evidence/types.ts): MEASUREMENT, HOST_DATA as the
 * identity-bearing field, REPORT_ID as the launch id, REPORT_DATA, REPORTED_TCB (the TCB the VCEK/VLEK certifies), POLICY.DEBUG, the
 * SHA-256 of the signed report, and every SEV-SNP claim ({@link toSnpClaims}) as `details`. Pure.
 */
export function toSnpEvidenceClaims(v: SnpVerified): EvidenceClaims<SnpClaims> {
  const r = v.report;
  const details = toSnpClaims(v);
  const { raw, ...components } = details.reportedTcb;
  const tcb: Record<string, number | string> = { raw };
  for (const [k, n] of Object.entries(components)) if (typeof n === 'number') tcb[k] = n;
  return {
    tee: 'snp',
    measurements: { measurement: Uint8Array.from(r.measurement) },
    identityField: { name: 'HOST_DATA', value: Uint8Array.from(r.hostData) },
    launchId: { name: 'REPORT_ID', value: Uint8Array.from(r.reportId) },
    reportData: Uint8Array.from(r.reportData),
    tcb,
    debug: decodeGuestPolicy(r.policy).debug,
    evidenceDigest: createHash('sha256').update(r.raw).digest('hex'),
    details,
  };
}
