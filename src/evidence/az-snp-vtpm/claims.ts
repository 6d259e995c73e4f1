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

/**
 * The TEE-independent claims: the SNP report's measurement, HOST_DATA, REPORT_ID, TCB and debug bit, plus
 * one measurement per quoted PCR (`pcr<i>:sha256`); `reportData` is the quote's extraData zero-padded to
 * 64 bytes (the value the KBS binding computes: pad64(SHA-384(runtime data)); a 48-byte nonce and that
 * nonce followed by zeros pad alike, and both need the digest). `evidenceDigest` is the SNP report's.
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
