import { InvalidArgument, MalformedEvidence } from '../errors.js';

/** An attestation report for given REPORT_DATA, plus the extended report's certificate table if any. */
export interface ReportResult {
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
}

/**
 * Where a guest gets its evidence: real hardware (ConfigfsTsmProvider, Linux configfs-tsm) or a simulator
 * (simulatorReportProvider). The guest library sees only this interface, so nothing downstream knows which.
 */
export interface ReportProvider {
  /** `reportData` is exactly 64 bytes (SNP REPORT_DATA). */
  getReport(reportData: Uint8Array): Promise<ReportResult>;
}

/**
 * Anything shaped like the SNP firmware simulator (src/sim/snp `SimSnpFirmware`): structural, so the guest
 * library does not import the simulator.
 */
export interface SnpFirmwareLike {
  getReport(reportData: Uint8Array): ReportResult | Promise<ReportResult>;
}

/** Wraps a simulated firmware as a ReportProvider. */
export function simulatorReportProvider(firmware: SnpFirmwareLike): ReportProvider {
  return {
    async getReport(reportData: Uint8Array): Promise<ReportResult> {
      checkReportData(reportData);
      const r = await firmware.getReport(reportData);
      if (!(r?.report instanceof Uint8Array) || r.report.length === 0) {
        throw new MalformedEvidence('guest.report.empty', 'the simulator returned no report');
      }
      return r.certTable ? { report: r.report, certTable: r.certTable } : { report: r.report };
    },
  };
}

export function checkReportData(reportData: Uint8Array): void {
  if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
    throw new InvalidArgument('guest.report_data', 'REPORT_DATA is 64 bytes');
  }
}
