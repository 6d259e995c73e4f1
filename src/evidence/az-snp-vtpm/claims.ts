import { createHash } from 'node:crypto';
import { toHex } from '../../util/bytes.js';
import { type SnpClaims, toSnpEvidenceClaims } from '../snp/claims.js';
import type { EvidenceClaims } from '../types.js';
import type { AzSnpVtpmVerified } from './verify.js';

/** Everything `az-snp-vtpm` evidence establishes, as JSON (the claims' `details`). */
export interface AzSnpVtpmClaims {
  /** The SEV-SNP report's claims, as for `snp`. */
  readonly snp: SnpClaims;
  readonly azure: {
    /** Evidence form: 0, 1 or 2 (Trustee's compat.rs). */
    readonly version: number;
    /** The runtime data's `vm-configuration` (secure-boot, tpm-enabled, vmUniqueId, ...), or null. */
    readonly vmConfiguration: { readonly [k: string]: unknown } | null;
    /** The runtime data's `user-data`, hex, or null. */
    readonly userData: string | null;
    /** SHA-256 of the AK's SubjectPublicKeyInfo, hex. */
    readonly akSha256: string;
  };
  /** The quoted SHA-256 PCRs as Trustee names them: `pcr00`..`pcr23`, hex. */
  readonly tpm: { readonly [pcr: string]: string };
  /** The quote's extraData, hex (unpadded). */
  readonly nonce: string;
}

/** Zero-padded to 64 bytes (Trustee's `regularize_data`), the size of the report data the broker compares. */
function pad64(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  out.set(b);
  return out;
}

/** Longest `vmUniqueId` taken as an identity (a GUID is 36 characters). */
const MAX_VM_ID_CHARS = 128;

/** The name of the identity-bearing claim of `az-snp-vtpm` evidence (docs/kbs.md "Which instance"). */
export const AZURE_IDENTITY_FIELD = 'azure.vmUniqueId.sha256';

/**
 * The 32-byte identity value of an Azure VM: SHA-256 of its `vmUniqueId` (a GUID) in lower case, UTF-8.
 * Lower-cased because the HCL writes it in upper case while Azure's portal and IMDS show it in lower case;
 * the operator registers the VM with this value (`vouchsafe instance register --azure-vm-id`). Returns
 * undefined for an id that is not a non-empty string of at most 128 characters.
 */
export function azureVmIdentity(vmUniqueId: unknown): Uint8Array | undefined {
  if (typeof vmUniqueId !== 'string' || vmUniqueId.length === 0 || vmUniqueId.length > MAX_VM_ID_CHARS) {
    return undefined;
  }
  return new Uint8Array(createHash('sha256').update(vmUniqueId.toLowerCase(), 'utf8').digest());
}

/**
 * The TEE-independent claims: the SNP report's measurement, HOST_DATA, REPORT_ID, TCB and debug bit, plus
 * one measurement per quoted PCR (`pcr<i>:sha256`); `reportData` is the quote's extraData zero-padded to
 * 64 bytes (the value the KBS binding computes: pad64(SHA-384(runtime data)); a 48-byte nonce and that
 * nonce followed by zeros pad alike, and both need the digest). `evidenceDigest` is the SNP report's.
 *
 * The identity-bearing field is not HOST_DATA (Azure leaves it zero and does not let the tenant set it) but
 * {@link azureVmIdentity} of the runtime data's `vm-configuration.vmUniqueId`: Azure's paravisor writes the
 * runtime data and REPORT_DATA binds it (verified), so a host cannot change it without breaking the SNP
 * signature. Null when the runtime data has no vmUniqueId: such evidence names no instance.
 */
export function toAzSnpVtpmClaims(v: AzSnpVtpmVerified): EvidenceClaims<AzSnpVtpmClaims> {
  const snp = toSnpEvidenceClaims(v.snp.verified);
  const measurements: Record<string, Uint8Array> = { ...snp.measurements };
  const tpm: Record<string, string> = {};
  for (const [i, value] of [...v.pcrs].sort(([a], [b]) => a - b)) {
    measurements[`pcr${i}:sha256`] = Uint8Array.from(value);
    tpm[`pcr${String(i).padStart(2, '0')}`] = toHex(value);
  }
  return {
    ...snp,
    tee: 'az-snp-vtpm',
    measurements,
    identityField: identityOf(v),
    reportData: pad64(v.nonce),
    evidenceDigest: createHash('sha256').update(v.snp.verified.report.raw).digest('hex'),
    details: {
      snp: snp.details,
      azure: {
        version: v.version,
        vmConfiguration: v.runtime.vmConfiguration,
        userData: v.runtime.userData === null ? null : toHex(v.runtime.userData),
        akSha256: v.akSha256,
      },
      tpm,
      nonce: toHex(v.nonce),
    },
  };
}

function identityOf(v: AzSnpVtpmVerified): EvidenceClaims['identityField'] {
  const value = azureVmIdentity(v.runtime.vmConfiguration?.vmUniqueId);
  return value ? { name: AZURE_IDENTITY_FIELD, value } : null;
}
