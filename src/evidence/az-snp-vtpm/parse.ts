import {
  type AzSnpVtpmEvidence,
  decodeAzSnpVtpmEvidence,
  parseAzSnpVtpmEvidenceJson,
} from '../../formats/azure/evidence-json.js';
import { type HclReport, parseHclReport } from '../../formats/azure/hcl-report.js';
import { type HclRuntimeData, parseHclRuntimeData } from '../../formats/azure/runtime-data.js';
import { parseReport, type SnpReport } from '../../formats/snp/index.js';
import { type ParsedAttest, parseAttest } from '../../formats/tpm/attest.js';

/**
 * `az-snp-vtpm` evidence as received: the JSON value (or its UTF-8 bytes, as the broker carries evidence)
 * of Trustee's v0/v1/v2 forms (src/formats/azure/evidence-json.ts), or those already decoded.
 */
export type AzSnpVtpmInput = Uint8Array | AzSnpVtpmEvidence | { readonly json: unknown };

/** Every layer parsed; nothing verified yet. */
export interface ParsedAzSnpVtpm {
  readonly version: 0 | 1 | 2;
  readonly hcl: HclReport;
  readonly runtime: HclRuntimeData;
  readonly snpReport: SnpReport;
  /** The TPMS_ATTEST as signed. */
  readonly attest: ParsedAttest;
  /** The bare RSASSA-PKCS1-v1_5 signature over it. */
  readonly signature: Uint8Array;
  /** The SHA-256 PCR values, in the quote's selection order. */
  readonly pcrs: readonly Uint8Array[];
  /** The VCEK, DER. */
  readonly vcek: Uint8Array;
}

const copy = (b: Uint8Array) => Uint8Array.from(b);

/**
 * Parses every layer: the evidence JSON, the HCL envelope, the SNP report inside it, the runtime data JSON
 * and the TPMS_ATTEST. Private copies throughout: the caller's buffers may change afterwards. Throws
 * MalformedEvidence / NotSupported `azure.evidence.*`, `azure.hcl.*`, `azure.runtime_data.*`, `snp.*`,
 * `tpm.attest.*`.
 */
export function parseAzSnpVtpm(input: AzSnpVtpmInput): ParsedAzSnpVtpm {
  const e =
    input instanceof Uint8Array
      ? parseAzSnpVtpmEvidenceJson(input)
      : 'json' in input
        ? decodeAzSnpVtpmEvidence(input.json)
        : input;
  const hcl = parseHclReport(e.hclReport);
  return {
    version: e.version,
    hcl,
    runtime: parseHclRuntimeData(hcl.runtimeData),
    snpReport: parseReport(hcl.snpReport),
    attest: parseAttest(copy(e.quote.message)),
    signature: copy(e.quote.signature),
    pcrs: e.quote.pcrs.map(copy),
    vcek: copy(e.vcek),
  };
}
