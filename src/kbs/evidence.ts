import { MalformedEvidence, NotSupported } from '../errors.js';
import { MAX_CERT_TABLE_SIZE } from '../formats/snp/cert-table.js';
import { decodeStdBase64 } from './base64.js';

/**
 * `tee-evidence.primary_evidence` for `tee: "snp"`: the attestation report and, optionally, the extended
 * report's certificate table, each standard base64. Two field spellings exist in COCONUT aproxy's KBS
 * backend (tools/aproxy/src/backend/kbs.rs, `KbsEvidence::Snp`), both accepted:
 * - `{"snp-report": b64, "certs-buf": b64 | null}` (svsm main, reference svsm-protocol.md §4);
 * - `{"attestation_report": b64, "cert_chain": b64 | null}` (the spelling of svsm PR #1122).
 * Trustee's own guest attester sends the `sev` crate's serde form of the report (a JSON struct of fields):
 * that form is NOT accepted (NotSupported `kbs.evidence.format`), because its layout follows the sev crate
 * version.
 */

export interface SnpPrimaryEvidence {
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
  readonly spelling: 'snp-report' | 'attestation_report';
}

/** An SNP report is 0x4A0 bytes; anything much larger is refused before decoding. */
const MAX_REPORT_BYTES = 4096;

const isObject = (v: unknown): v is { [k: string]: unknown } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function decodeBounded(v: unknown, field: string, max: number): Uint8Array {
  if (typeof v === 'string' && v.length > Math.ceil(max / 3) * 4) {
    throw new MalformedEvidence('kbs.evidence.size', `${field} is larger than ${max} bytes`);
  }
  return decodeStdBase64(v, 'kbs.evidence.base64', field);
}

/**
 * Parses SNP primary evidence. Throws MalformedEvidence `kbs.evidence.shape` / `.base64` / `.size`,
 * NotSupported `kbs.evidence.format` (the sev-crate struct form).
 */
export function parseSnpPrimaryEvidence(v: unknown): SnpPrimaryEvidence {
  if (!isObject(v)) throw new MalformedEvidence('kbs.evidence.shape', 'primary_evidence must be an object');
  const [reportField, certField, spelling] =
    'snp-report' in v
      ? (['snp-report', 'certs-buf', 'snp-report'] as const)
      : (['attestation_report', 'cert_chain', 'attestation_report'] as const);
  const report = v[reportField];
  if (report === undefined) {
    throw new MalformedEvidence(
      'kbs.evidence.shape',
      'primary_evidence needs snp-report or attestation_report',
    );
  }
  if (isObject(report)) {
    throw new NotSupported(
      'kbs.evidence.format',
      'the sev crate struct form of the report is not supported; send the raw report as standard base64',
    );
  }
  const certs = v[certField];
  return {
    report: decodeBounded(report, reportField, MAX_REPORT_BYTES),
    ...(certs === undefined || certs === null
      ? {}
      : { certTable: decodeBounded(certs, certField, MAX_CERT_TABLE_SIZE) }),
    spelling,
  };
}
