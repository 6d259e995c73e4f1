import { MalformedEvidence } from '../../errors.js';
import { Reader, Writer } from '../reader.js';
import { decodeSignerInfo, POLICY_MBZ_MASK, POLICY_RESERVED_ONE, SigningKey } from './bits.js';

/**
 * ATTESTATION_REPORT, SEV-SNP ABI 56860 rev 1.57 Table 23 (0x4A0 bytes, little-endian). Parsing checks size,
 * version, reserved bytes for that version and the fixed bits; it does not verify anything.
 */
export const REPORT_SIZE = 0x4a0;
/** The signature covers bytes [0, 0x2A0). */
export const SIGNED_LENGTH = 0x2a0;
/** ECDSA P-384 with SHA-384, the only SIGNATURE_ALGO defined. */
export const SIG_ALGO_ECDSA_P384_SHA384 = 1;
export const SUPPORTED_VERSIONS = [2, 3, 4, 5] as const;

export interface SnpReport {
  /** The report exactly as received; `raw.subarray(0, SIGNED_LENGTH)` is what the signature covers. */
  readonly raw: Uint8Array;
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: bigint;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly currentTcb: bigint;
  readonly platformInfo: bigint;
  /** The word at 0x48: AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY (decode with decodeSignerInfo). */
  readonly signerInfo: number;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  readonly reportedTcb: bigint;
  /** Report v3+ only; undefined in v2, whose bytes there are reserved. */
  readonly cpuid?: { readonly family: number; readonly model: number; readonly stepping: number };
  readonly chipId: Uint8Array;
  readonly committedTcb: bigint;
  readonly currentBuild: number;
  readonly currentMinor: number;
  readonly currentMajor: number;
  readonly committedBuild: number;
  readonly committedMinor: number;
  readonly committedMajor: number;
  readonly launchTcb: bigint;
  /** Report v5 only. */
  readonly launchMitVector?: bigint;
  readonly currentMitVector?: bigint;
  /** R and S as 72-byte little-endian integers, as the firmware writes them. */
  readonly signature: { readonly r: Uint8Array; readonly s: Uint8Array };
}

/**
 * Parses an attestation report. Throws MalformedEvidence with reasons `snp.report.size`,
 * `snp.report.version`, `snp.report.reserved_nonzero`, `snp.report.policy`, `snp.report.signer_info`.
 */
export function parseReport(bytes: Uint8Array): SnpReport {
  if (bytes.length !== REPORT_SIZE) {
    throw new MalformedEvidence(
      'snp.report.size',
      `SNP report must be ${REPORT_SIZE} bytes, got ${bytes.length}`,
    );
  }
  const r = new Reader(bytes, 'snp.report');
  const version = r.at(0x000).u32le();
  if (!(SUPPORTED_VERSIONS as readonly number[]).includes(version)) {
    throw new MalformedEvidence('snp.report.version', `SNP report version ${version} is not supported (2-5)`);
  }
  const guestSvn = r.u32le();
  const policy = r.u64le();
  if ((policy & POLICY_RESERVED_ONE) === 0n || (policy & POLICY_MBZ_MASK) !== 0n) {
    throw new MalformedEvidence(
      'snp.report.policy',
      `guest policy 0x${policy.toString(16)}: bit 17 must be set and bits 63:26 clear`,
    );
  }
  const familyId = r.at(0x010).bytes(16);
  const imageId = r.at(0x020).bytes(16);
  const vmpl = r.at(0x030).u32le();
  const signatureAlgo = r.at(0x034).u32le();
  const currentTcb = r.at(0x038).u64le();
  const platformInfo = r.at(0x040).u64le();
  const signerInfo = r.at(0x048).u32le();
  const signer = decodeSignerInfo(signerInfo);
  if (
    signerInfo >>> 5 !== 0 ||
    (signer.signingKey > SigningKey.VLEK && signer.signingKey !== SigningKey.None)
  ) {
    throw new MalformedEvidence(
      'snp.report.signer_info',
      `signer info 0x${signerInfo.toString(16)}: reserved bits or SIGNING_KEY value set`,
    );
  }
  r.at(0x04c).mbz(4, '0x04C');
  const reportData = r.at(0x050).bytes(64);
  const measurement = r.at(0x090).bytes(48);
  const hostData = r.at(0x0c0).bytes(32);
  const idKeyDigest = r.at(0x0e0).bytes(48);
  const authorKeyDigest = r.at(0x110).bytes(48);
  const reportId = r.at(0x140).bytes(32);
  const reportIdMa = r.at(0x160).bytes(32);
  const reportedTcb = r.at(0x180).u64le();
  let cpuid: SnpReport['cpuid'];
  if (version >= 3) {
    cpuid = { family: r.at(0x188).u8(), model: r.u8(), stepping: r.u8() };
    r.at(0x18b).mbz(0x1a0 - 0x18b, '0x18B-0x19F');
  } else {
    r.at(0x188).mbz(0x1a0 - 0x188, '0x188-0x19F');
  }
  const chipId = r.at(0x1a0).bytes(64);
  const committedTcb = r.at(0x1e0).u64le();
  const currentBuild = r.at(0x1e8).u8();
  const currentMinor = r.u8();
  const currentMajor = r.u8();
  r.at(0x1eb).mbz(1, '0x1EB');
  const committedBuild = r.at(0x1ec).u8();
  const committedMinor = r.u8();
  const committedMajor = r.u8();
  r.at(0x1ef).mbz(1, '0x1EF');
  const launchTcb = r.at(0x1f0).u64le();
  let launchMitVector: bigint | undefined;
  let currentMitVector: bigint | undefined;
  if (version >= 5) {
    launchMitVector = r.at(0x1f8).u64le();
    currentMitVector = r.at(0x200).u64le();
    r.at(0x208).mbz(SIGNED_LENGTH - 0x208, '0x208-0x29F');
  } else {
    r.at(0x1f8).mbz(SIGNED_LENGTH - 0x1f8, '0x1F8-0x29F');
  }
  const sigR = r.at(0x2a0).bytes(72);
  const sigS = r.at(0x2e8).bytes(72);
  r.at(0x330).mbz(REPORT_SIZE - 0x330, 'signature tail 0x330-0x49F');
  r.end();
  return {
    raw: bytes,
    version,
    guestSvn,
    policy,
    familyId,
    imageId,
    vmpl,
    signatureAlgo,
    currentTcb,
    platformInfo,
    signerInfo,
    reportData,
    measurement,
    hostData,
    idKeyDigest,
    authorKeyDigest,
    reportId,
    reportIdMa,
    reportedTcb,
    ...(cpuid ? { cpuid } : {}),
    chipId,
    committedTcb,
    currentBuild,
    currentMinor,
    currentMajor,
    committedBuild,
    committedMinor,
    committedMajor,
    launchTcb,
    ...(launchMitVector !== undefined ? { launchMitVector, currentMitVector } : {}),
    signature: { r: sigR, s: sigS },
  };
}

/** The fields a caller sets to build a report; byte fields default to zeros, REPORT_ID_MA to all 0xFF. */
export type ReportFields = Omit<SnpReport, 'raw' | 'signature'> & {
  readonly signature?: SnpReport['signature'];
};

/**
 * Encodes a report (the mirror of parseReport). With no signature the signature area is zero: the
 * simulator signs `encodeReport(f).subarray(0, SIGNED_LENGTH)` and encodes again with the signature.
 */
export function encodeReport(f: ReportFields): Uint8Array {
  const w = new Writer(REPORT_SIZE);
  w.at(0x000).u32le(f.version).u32le(f.guestSvn).u64le(f.policy);
  w.at(0x010).bytes(f.familyId, 16).bytes(f.imageId, 16);
  w.at(0x030)
    .u32le(f.vmpl)
    .u32le(f.signatureAlgo)
    .u64le(f.currentTcb)
    .u64le(f.platformInfo)
    .u32le(f.signerInfo);
  w.at(0x050).bytes(f.reportData, 64).bytes(f.measurement, 48).bytes(f.hostData, 32);
  w.at(0x0e0).bytes(f.idKeyDigest, 48).bytes(f.authorKeyDigest, 48);
  w.at(0x140).bytes(f.reportId, 32).bytes(f.reportIdMa, 32).u64le(f.reportedTcb);
  if (f.version >= 3 && f.cpuid) w.at(0x188).u8(f.cpuid.family).u8(f.cpuid.model).u8(f.cpuid.stepping);
  w.at(0x1a0).bytes(f.chipId, 64).u64le(f.committedTcb);
  w.at(0x1e8).u8(f.currentBuild).u8(f.currentMinor).u8(f.currentMajor);
  w.at(0x1ec).u8(f.committedBuild).u8(f.committedMinor).u8(f.committedMajor);
  w.at(0x1f0).u64le(f.launchTcb);
  if (f.version >= 5)
    w.at(0x1f8)
      .u64le(f.launchMitVector ?? 0n)
      .u64le(f.currentMitVector ?? 0n);
  if (f.signature) w.at(0x2a0).bytes(f.signature.r, 72).bytes(f.signature.s, 72);
  return w.buf;
}
