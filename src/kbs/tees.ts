import { NotSupported } from '../errors.js';
import { isSupportedTee } from '../policy/tees.js';

/** The release-table TEEs the KBS routes decode evidence for (src/kbs/evidence.ts). */
export type KbsServedTee = 'snp' | 'az-snp-vtpm' | 'tdx';

/**
 * kbs_types `Tee` as the KBS protocol spells it today (kbs-types main, `Request.tee`: serde
 * `rename_all = "lowercase"` with `az-snp-vtpm` / `az-tdx-vtpm` renamed explicitly; `sev` removed;
 * reference kbs-and-peers.md §1), each mapped to the TEE of Vouchsafe's release table (src/policy/tees.ts)
 * whose evidence the KBS verifies for it, or null when the KBS attests no such TEE:
 * - `snp`: SEV-SNP reports (src/kbs/evidence.ts: the base64 spellings and Trustee's struct form);
 * - `az-snp-vtpm`: Azure SEV-SNP confidential VMs, the HCL report + vTPM quote in Trustee's v0/v1/v2 JSON
 *   (src/kbs/evidence-azure.ts; the instance is named by its vmUniqueId, docs/kbs.md "Azure");
 * - `tdx`: Intel TDX quotes with the TD's CCEL log, Trustee's `{quote, cc_eventlog}` (src/kbs/evidence-tdx.ts;
 *   the instance is named by MRCONFIGID, docs/tdx.md "KBS");
 * - `tpm`: Vouchsafe verifies TPM quotes (`verify tpm`, the CA's AK route), but a quote names no instance
 *   (no HOST_DATA), so no instance key can be released for one over the KBS;
 * - `az-tdx-vtpm` (Azure's HCL report of a TD + vTPM quote), `sgx`, `cca`, `csv`, `se`,
 *   `hygondcu`, `dpu`, `nvidia`: evidence Vouchsafe does not verify;
 * - `sample`, `sampledevice`: Trustee's test TEEs, whose "evidence" proves nothing.
 * Older spellings (`azsnpvtpm`, `aztdxvtpm`, `sev`, kbs-types 0.14 and before) are unknown names here, as
 * they are to Trustee today. A null-prototype table: a name from the wire never finds an inherited entry.
 */
const KBS_TEE_TABLE: Readonly<Record<string, KbsServedTee | null>> = Object.freeze(
  Object.assign(Object.create(null), {
    'az-snp-vtpm': 'az-snp-vtpm',
    'az-tdx-vtpm': null,
    cca: null,
    csv: null,
    dpu: null,
    hygondcu: null,
    nvidia: null,
    sample: null,
    sampledevice: null,
    se: null,
    sgx: null,
    snp: 'snp',
    tdx: 'tdx',
    tpm: null,
  }),
);

/** Every TEE name the KBS protocol defines today. */
export const KBS_TEE_NAMES: readonly string[] = Object.freeze(Object.keys(KBS_TEE_TABLE));

/** The TEE names this KBS attests: those mapped to a TEE of the release table. */
export const SUPPORTED_KBS_TEES: readonly string[] = Object.freeze(
  KBS_TEE_NAMES.filter((n) => isSupportedTee(KBS_TEE_TABLE[n])),
);

/**
 * The release-table TEE for a KBS `tee` name. Throws NotSupported `kbs.tee` for a name the protocol
 * defines but this KBS does not attest, and for an unknown name.
 */
export function kbsTeeOf(name: string): KbsServedTee {
  const tee = KBS_TEE_TABLE[name];
  if (tee === undefined) throw new NotSupported('kbs.tee', 'unknown TEE');
  if (tee === null || !isSupportedTee(tee)) {
    throw new NotSupported(
      'kbs.tee',
      `TEE ${name} is not supported; supported: ${SUPPORTED_KBS_TEES.join(', ')}`,
    );
  }
  return tee;
}
