import { MalformedEvidence, NotSupported } from '../../errors.js';
import { Reader } from '../reader.js';

/**
 * The HCL report of an Azure confidential VM: what the paravisor (Microsoft's HCL, running at VMPL 0)
 * writes to vTPM NV index 0x01400001. An IGVM attestation envelope around the hardware report, then the
 * runtime data (JSON) whose digest the hardware report's REPORT_DATA carries. Layout (all little-endian;
 * az-cvm-vtpm `hcl::AttestationReport`, IGVM `IGVM_ATTEST_REQUEST`; confirmed on Trustee's real Azure
 * Milan sample deps/verifier/test_data/az-snp-vtpm/hcl-report.bin):
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0x000 | 4 | signature `HCLA` |
 * | 0x004 | 4 | header version (1 on the Milan sample, 2 on the Genoa one; same layout) |
 * | 0x008 | 4 | report size: header + hardware report + request data + runtime data |
 * | 0x00C | 4 | request type (2: key release) |
 * | 0x010 | 4 | status |
 * | 0x014 | 12 | reserved, zero |
 * | 0x020 | 1184 | hardware report (SEV-SNP ATTESTATION_REPORT; a TDX TDREPORT is 1024 bytes, zero-padded) |
 * | 0x4C0 | 4 | request-data size: this 20-byte header + runtime data |
 * | 0x4C4 | 4 | request-data version (1) |
 * | 0x4C8 | 4 | report type (2: SEV-SNP, 4: TDX) |
 * | 0x4CC | 4 | runtime-data hash type (1: SHA-256, 2: SHA-384, 3: SHA-512) |
 * | 0x4D0 | 4 | runtime-data size |
 * | 0x4D4 | n | runtime data (UTF-8 JSON) |
 *
 * The NV index is larger than the report: the bytes after `report size` are zero (254 in the sample).
 */

/** `HCLA` read as a little-endian u32. */
export const HCL_SIGNATURE = 0x414c4348;
/** Where the hardware report starts, and its size in the envelope (an SNP report: ABI 56860 Table 23). */
export const HCL_HW_REPORT_OFFSET = 0x20;
export const HCL_HW_REPORT_SIZE = 0x4a0;
/** Where the request data starts, and where its runtime data starts. */
export const HCL_REQUEST_DATA_OFFSET = 0x4c0;
export const HCL_RUNTIME_DATA_OFFSET = 0x4d4;
/** The whole input, NV padding included: the NV index holds 2600 bytes; anything past 16 KiB is refused. */
export const MAX_HCL_REPORT_BYTES = 16 * 1024;

/** IGVM report types (`IgvmAttestReportType`). */
export const HclReportType = { snp: 2, tdx: 4 } as const;
/** IGVM runtime-data hash types (`IgvmHashType`); only SHA-256 is produced today. */
export const HclHashType = { sha256: 1, sha384: 2, sha512: 3 } as const;

/** A parsed HCL report whose hardware report is an SEV-SNP report. */
export interface HclReport {
  readonly version: number;
  /** Header + hardware report + request data + runtime data. */
  readonly reportSize: number;
  readonly requestType: number;
  readonly status: number;
  readonly reportType: typeof HclReportType.snp;
  readonly hashType: typeof HclHashType.sha256;
  /** The 1184-byte SEV-SNP ATTESTATION_REPORT (a copy). */
  readonly snpReport: Uint8Array;
  /** The runtime data exactly as hashed into REPORT_DATA (a copy). */
  readonly runtimeData: Uint8Array;
}

/** Header versions seen on real Azure reports; the layout above holds for both. */
const HEADER_VERSIONS: ReadonlySet<number> = new Set([1, 2]);
const REQUEST_DATA_VERSION = 1;
const REQUEST_DATA_HEADER = HCL_RUNTIME_DATA_OFFSET - HCL_REQUEST_DATA_OFFSET;

/**
 * Parses an HCL report (header, SNP report, request data, runtime data; trailing NV padding must be zero).
 * Checks sizes, versions, reserved bytes and that the hardware report is SEV-SNP with a SHA-256 runtime-data
 * hash; it does not look inside the SNP report or the JSON. Throws MalformedEvidence `azure.hcl.size`,
 * `.signature`, `.truncated`, `.report_size`, `.data_size`, `.padding`, `.reserved_nonzero`;
 * NotSupported `azure.hcl.version`, `.report_type` (TDX and others), `.hash_type`.
 */
export function parseHclReport(bytes: Uint8Array): HclReport {
  if (bytes.length > MAX_HCL_REPORT_BYTES) {
    throw new MalformedEvidence('azure.hcl.size', `HCL report of ${bytes.length} bytes is too large`);
  }
  const r = new Reader(bytes, 'azure.hcl');
  if (r.at(0x00).u32le() !== HCL_SIGNATURE) {
    throw new MalformedEvidence('azure.hcl.signature', 'not an HCL report (no HCLA signature)');
  }
  const version = r.at(0x04).u32le();
  if (!HEADER_VERSIONS.has(version)) {
    throw new NotSupported('azure.hcl.version', `HCL report header version ${version}`);
  }
  const reportSize = r.at(0x08).u32le();
  const requestType = r.at(0x0c).u32le();
  const status = r.at(0x10).u32le();
  r.at(0x14).mbz(12);
  // The request data is read before the hardware report: its type says what the report is.
  const dataSize = r.at(HCL_REQUEST_DATA_OFFSET).u32le();
  const dataVersion = r.u32le();
  const reportType = r.u32le();
  const hashType = r.u32le();
  const runtimeSize = r.u32le();
  if (dataVersion !== REQUEST_DATA_VERSION) {
    throw new NotSupported('azure.hcl.version', `HCL request data version ${dataVersion}`);
  }
  if (reportType !== HclReportType.snp) {
    throw new NotSupported('azure.hcl.report_type', `HCL hardware report type ${reportType} is not SEV-SNP`);
  }
  if (hashType !== HclHashType.sha256) {
    throw new NotSupported('azure.hcl.hash_type', `HCL runtime-data hash type ${hashType} is not SHA-256`);
  }
  if (dataSize !== REQUEST_DATA_HEADER + runtimeSize) {
    throw new MalformedEvidence(
      'azure.hcl.data_size',
      'request-data size disagrees with the runtime-data size',
    );
  }
  if (reportSize !== HCL_RUNTIME_DATA_OFFSET + runtimeSize) {
    throw new MalformedEvidence('azure.hcl.report_size', 'report size disagrees with the runtime-data size');
  }
  const snpReport = Uint8Array.from(r.at(HCL_HW_REPORT_OFFSET).bytes(HCL_HW_REPORT_SIZE));
  const runtimeData = Uint8Array.from(r.at(HCL_RUNTIME_DATA_OFFSET).bytes(runtimeSize));
  for (let i = r.offset; i < bytes.length; i++) {
    if (bytes[i] !== 0) {
      throw new MalformedEvidence(
        'azure.hcl.padding',
        `non-zero byte after the report at 0x${i.toString(16)}`,
      );
    }
  }
  return {
    version,
    reportSize,
    requestType,
    status,
    reportType: HclReportType.snp,
    hashType: HclHashType.sha256,
    snpReport,
    runtimeData,
  };
}
