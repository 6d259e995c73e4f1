import { decodeAzSnpVtpmEvidence } from '../formats/azure/evidence-json.js';

/**
 * `tee-evidence.primary_evidence` for `tee: "az-snp-vtpm"`: the Azure attester's evidence as Trustee's
 * verifier reads it (deps/verifier/src/az_snp_vtpm/compat.rs: v0 `{quote, report, vcek}`, v1/v2 `{version,
 * tpm_quote, hcl_report, vcek}`), a JSON object. Its shape is checked here so that a malformed body is
 * `evidence-malformed` before the broker's challenge is spent; the broker receives the object's UTF-8 JSON
 * (the bytes the TEE table's `az-snp-vtpm` row parses and verifies, and whose digest the audit log keeps).
 */
export interface AzurePrimaryEvidence {
  /** JSON.stringify of the primary evidence object: the broker's evidence bytes. */
  readonly evidence: Uint8Array;
  /** The form: 0, 1 or 2. */
  readonly version: 0 | 1 | 2;
}

/**
 * Checks and serializes `az-snp-vtpm` primary evidence. Throws MalformedEvidence `azure.evidence.*` and
 * NotSupported `azure.evidence.version`, as decodeAzSnpVtpmEvidence does.
 */
export function parseAzurePrimaryEvidence(v: unknown): AzurePrimaryEvidence {
  const decoded = decodeAzSnpVtpmEvidence(v);
  return { evidence: new TextEncoder().encode(JSON.stringify(v)), version: decoded.version };
}
