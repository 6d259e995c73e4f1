import { isJsonText, parseSevSnpEvidenceJson } from '../../formats/snp/sev-json.js';
import { readInput } from '../io.js';

/** The SEV-SNP evidence a `verify snp` / `inspect snp` argument holds. */
export interface SnpInput {
  /** The 1184-byte report: as read, or rebuilt from Trustee's struct form. */
  readonly report: Uint8Array;
  /** The struct form's `cert_chain` as a certificate table, when it carried certificates. */
  readonly certTable?: Uint8Array;
  /** `raw` for a binary report, `sev-struct` for Trustee's JSON evidence. */
  readonly form: 'raw' | 'sev-struct';
}

/**
 * Reads a report file, told apart by content: JSON text (first byte `{`) is Trustee's SEV-SNP evidence
 * (`{"attestation_report": {...}, "cert_chain": ...}`, src/formats/snp/sev-json.ts), anything else the
 * raw report. Throws InvalidArgument `cli.input`, MalformedEvidence `snp.sev_json.*`.
 */
export function readSnpInput(path: string): SnpInput {
  const bytes = readInput(path, 'report');
  if (!isJsonText(bytes)) return { report: bytes, form: 'raw' };
  return { ...parseSevSnpEvidenceJson(bytes), form: 'sev-struct' };
}
