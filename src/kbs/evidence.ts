import { MalformedEvidence } from '../errors.js';
import { MAX_CERT_TABLE_SIZE } from '../formats/snp/cert-table.js';
import { decodeSevSnpEvidence } from '../formats/snp/sev-json.js';
import { decodeBase64 } from '../util/base64.js';
import { isObject } from '../util/json-object.js';

/**
 * `tee-evidence.primary_evidence` for `tee: "snp"`: the attestation report and, optionally, the extended
 * report's certificate table. Three forms are accepted:
 * - `{"snp-report": b64, "certs-buf": b64 | null}`, standard base64 (COCONUT aproxy's KBS backend,
 *   tools/aproxy/src/backend/kbs.rs `KbsEvidence::Snp`, svsm main; reference svsm-protocol.md §4);
 * - `{"attestation_report": b64, "cert_chain": b64 | null}`, the same in svsm PR #1122's legacy spelling;
 * - `{"attestation_report": {...fields...}, "cert_chain": [{cert_type, data}] | null}` (or `cert_chain`
 *   absent): Trustee's struct form, the `sev` crate's serde output, which the CoCo guest attester and
 *   PR #1122's aproxy in `kbs-trustee` mode send (reference kbs-and-peers.md §9). Its report bytes are
 *   rebuilt exactly from the fields by src/formats/snp/sev-json.ts, which refuses any struct whose bytes
 *   would differ from what its fields say; the signature is then checked over those bytes as over any;
 * - `{"Snp": {"report": b64, "certs_buf"?: b64}}`: what svsm PR #1203's SVSM posts (head bdf46eda,
 *   kernel/src/attest.rs `attest_kbs` puts serde's externally tagged libaproxy `AttestationEvidence::Snp`
 *   here; `certs_buf` is left out when absent, and libaproxy's own reader refuses it as null). No released
 *   KBS reads it; it is accepted so the PR works the day it merges. Exactly these keys, nothing else.
 */
export interface SnpPrimaryEvidence {
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
  /** Which form arrived: the two base64 spellings, the sev crate's struct, or svsm PR #1203's enum. */
  readonly spelling: 'snp-report' | 'attestation_report' | 'sev-struct' | 'svsm-pr1203';
}

/** An SNP report is 0x4A0 bytes; anything much larger is refused before decoding. */
const MAX_REPORT_BYTES = 4096;

/** Strict base64 of at most `max` decoded bytes, refused by length before decoding (`kbs.evidence.size`). */
export function decodeBounded(v: unknown, field: string, max: number): Uint8Array {
  if (typeof v === 'string' && v.length > Math.ceil(max / 3) * 4) {
    throw new MalformedEvidence('kbs.evidence.size', `${field} is larger than ${max} bytes`);
  }
  return decodeBase64(v, 'kbs.evidence.base64', field);
}

/**
 * Parses SNP primary evidence. Throws MalformedEvidence `kbs.evidence.shape` / `.base64` / `.size`; for
 * the struct form, what decodeSevSnpEvidence throws (MalformedEvidence `snp.sev_json.*`, NotSupported
 * `snp.sev_json.product`).
 */
export function parseSnpPrimaryEvidence(v: unknown): SnpPrimaryEvidence {
  if (!isObject(v)) throw new MalformedEvidence('kbs.evidence.shape', 'primary_evidence must be an object');
  if ('Snp' in v) return parsePr1203Evidence(v);
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
  if (spelling === 'attestation_report' && isObject(report)) {
    return { ...decodeSevSnpEvidence(v, 'primary_evidence'), spelling: 'sev-struct' };
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

const PR1203_KEYS: readonly string[] = ['report', 'certs_buf'];

/**
 * svsm PR #1203's `{"Snp": {"report", "certs_buf"?}}` (serde's externally tagged enum: exactly one key).
 * Strict: no other key at either level, `report` a standard base64 string, `certs_buf` absent or one.
 */
function parsePr1203Evidence(v: { [k: string]: unknown }): SnpPrimaryEvidence {
  const keys = Object.keys(v);
  const inner = v.Snp;
  if (keys.length !== 1 || !isObject(inner)) {
    throw new MalformedEvidence(
      'kbs.evidence.shape',
      'primary_evidence {"Snp": {...}} has exactly one key, an object',
    );
  }
  for (const k of Object.keys(inner)) {
    if (!PR1203_KEYS.includes(k)) {
      throw new MalformedEvidence(
        'kbs.evidence.shape',
        `primary_evidence.Snp has an unknown member ${JSON.stringify(k.slice(0, 40))}`,
      );
    }
  }
  if (typeof inner.report !== 'string') {
    throw new MalformedEvidence('kbs.evidence.shape', 'primary_evidence.Snp.report must be a base64 string');
  }
  const certs = inner.certs_buf;
  if (certs !== undefined && typeof certs !== 'string') {
    throw new MalformedEvidence(
      'kbs.evidence.shape',
      'primary_evidence.Snp.certs_buf must be absent or a base64 string',
    );
  }
  return {
    report: decodeBounded(inner.report, 'Snp.report', MAX_REPORT_BYTES),
    ...(certs === undefined ? {} : { certTable: decodeBounded(certs, 'Snp.certs_buf', MAX_CERT_TABLE_SIZE) }),
    spelling: 'svsm-pr1203',
  };
}
