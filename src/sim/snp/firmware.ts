import { randomBytes } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import {
  encodeSignerInfo,
  POLICY_MBZ_MASK,
  POLICY_RESERVED_ONE,
  SigningKey,
} from '../../formats/snp/bits.js';
import type { ReportFields } from '../../formats/snp/report.js';
import { certTableFor } from './cert-table.js';
import type { SimChain } from './chain.js';
import { type SimSigner, signReport } from './report.js';

/** What the host and the ID block fix at launch (SNP_LAUNCH_START / SNP_LAUNCH_FINISH, ABI 56860 8.x). */
export interface SimLaunchParams {
  /** Launch digest, 48 bytes. */
  readonly measurement: Uint8Array;
  /** GUEST_POLICY; bit 17 must be set and bits 63:26 clear, as the firmware requires. */
  readonly policy: bigint;
  /** HOST_DATA, 32 bytes. */
  readonly hostData: Uint8Array;
  /** ID_KEY_DIGEST (48 bytes) from the ID block's auth info; zero if absent. */
  readonly idKeyDigest?: Uint8Array;
  /** AUTHOR_KEY_DIGEST (48 bytes); when given, AUTHOR_KEY_EN is set in the signer info. */
  readonly authorKeyDigest?: Uint8Array;
  /** FAMILY_ID and IMAGE_ID (16 bytes each) from the ID block. */
  readonly familyId?: Uint8Array;
  readonly imageId?: Uint8Array;
  readonly guestSvn?: number;
  /** The VMPL the requesting software runs at (default 0); it may ask for reports at its VMPL or above. */
  readonly vmpl?: number;
  /** The key the host's platform signs with (default VCEK). */
  readonly signer?: SimSigner;
  /** Host SNP_CONFIG MASK_CHIP_ID: CHIP_ID reads as zero. */
  readonly maskChipId?: boolean;
  /** Host SNP_CONFIG MASK_CHIP_KEY: reports carry MASK_CHIP_KEY=1 and an all-zero signature. */
  readonly maskChipKey?: boolean;
  /** Further fields forced into every report (tests: another version, a stale TCB, ...). */
  readonly reportFields?: Partial<ReportFields>;
}

export interface SimReportResponse {
  /** The 0x4A0-byte ATTESTATION_REPORT. */
  readonly report: Uint8Array;
  /** The extended-report certificate table (leaf, ASK/ASVK, ARK). */
  readonly certTable: Uint8Array;
}

function checkLength(name: string, b: Uint8Array | undefined, n: number): void {
  if (b !== undefined && b.length !== n) {
    throw new InvalidArgument(`sim.snp.${name}`, `${name} must be ${n} bytes, got ${b.length}`);
  }
}

function checkVmpl(vmpl: number): void {
  if (!Number.isInteger(vmpl) || vmpl < 0 || vmpl > 3) {
    throw new InvalidArgument('sim.snp.vmpl', `VMPL must be 0-3, got ${vmpl}`);
  }
}

/**
 * A simulated guest's view of the AMD Secure Processor: fixed launch parameters, one REPORT_ID for the
 * guest's lifetime, and MSG_REPORT_REQ answered with a signed report plus the host's certificate table.
 * It stands behind the guest library's report-provider interface in place of Linux configfs-tsm.
 */
export class SimSnpFirmware {
  readonly chain: SimChain;
  readonly launch: SimLaunchParams;
  /** REPORT_ID: generated at launch, the same in every report of this guest (ABI 56860 Table 23). */
  readonly reportId: Uint8Array;

  /** Throws InvalidArgument (`sim.snp.measurement`, `.host_data`, `.policy`, `.vmpl`, ...) for bad params. */
  constructor(chain: SimChain, launch: SimLaunchParams) {
    checkLength('measurement', launch.measurement, 48);
    checkLength('host_data', launch.hostData, 32);
    checkLength('id_key_digest', launch.idKeyDigest, 48);
    checkLength('author_key_digest', launch.authorKeyDigest, 48);
    checkLength('family_id', launch.familyId, 16);
    checkLength('image_id', launch.imageId, 16);
    checkVmpl(launch.vmpl ?? 0);
    if ((launch.policy & POLICY_RESERVED_ONE) === 0n || (launch.policy & POLICY_MBZ_MASK) !== 0n) {
      throw new InvalidArgument(
        'sim.snp.policy',
        'the firmware refuses a policy without bit 17 or with bits 63:26',
      );
    }
    this.chain = chain;
    // Copied: launch parameters are fixed at launch, whatever the caller does with its buffers later.
    const copy = (b?: Uint8Array) => b?.slice();
    this.launch = {
      ...launch,
      measurement: launch.measurement.slice(),
      hostData: launch.hostData.slice(),
      idKeyDigest: copy(launch.idKeyDigest),
      authorKeyDigest: copy(launch.authorKeyDigest),
      familyId: copy(launch.familyId),
      imageId: copy(launch.imageId),
    };
    this.reportId = new Uint8Array(randomBytes(32));
  }

  /**
   * MSG_REPORT_REQ: `reportData` (up to 64 bytes, zero-padded as configfs-tsm does) at `opts.vmpl` (default
   * the caller's VMPL; lower, more privileged levels are refused like the firmware does). Throws
   * InvalidArgument `sim.snp.report_data` or `sim.snp.vmpl`.
   */
  getReport(reportData: Uint8Array, opts: { vmpl?: number } = {}): SimReportResponse {
    if (reportData.length > 64) {
      throw new InvalidArgument('sim.snp.report_data', `REPORT_DATA is 64 bytes, got ${reportData.length}`);
    }
    const callerVmpl = this.launch.vmpl ?? 0;
    const vmpl = opts.vmpl ?? callerVmpl;
    checkVmpl(vmpl);
    if (vmpl < callerVmpl) {
      throw new InvalidArgument('sim.snp.vmpl', `software at VMPL${callerVmpl} cannot request VMPL${vmpl}`);
    }
    const l = this.launch;
    const signer = l.signer ?? 'VCEK';
    const data = new Uint8Array(64);
    data.set(reportData);
    const fields: Partial<ReportFields> = {
      policy: l.policy,
      measurement: l.measurement,
      hostData: l.hostData,
      reportData: data,
      vmpl,
      reportId: this.reportId,
      signerInfo: encodeSignerInfo({
        authorKeyEn: l.authorKeyDigest !== undefined,
        maskChipKey: l.maskChipKey ?? false,
        signingKey: signer === 'VLEK' ? SigningKey.VLEK : SigningKey.VCEK,
      }),
      ...(l.guestSvn !== undefined ? { guestSvn: l.guestSvn } : {}),
      ...(l.idKeyDigest ? { idKeyDigest: l.idKeyDigest } : {}),
      ...(l.authorKeyDigest ? { authorKeyDigest: l.authorKeyDigest } : {}),
      ...(l.familyId ? { familyId: l.familyId } : {}),
      ...(l.imageId ? { imageId: l.imageId } : {}),
      ...(l.maskChipId ? { chipId: new Uint8Array(64) } : {}),
      ...l.reportFields,
    };
    const report = signReport(fields, this.chain, { signer, zeroSignature: l.maskChipKey ?? false });
    return { report, certTable: certTableFor(this.chain, signer) };
  }
}
