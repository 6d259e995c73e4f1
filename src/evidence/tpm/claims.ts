import type { GceInstanceIdentity } from '../../formats/x509/instance-identity.js';

/** PCR values of one bank: TPM hash id → (index → digest). */
export interface PcrBank {
  readonly hashAlg: number;
  readonly values: ReadonlyMap<number, Uint8Array>;
}

/**
 * What a verified TPM quote establishes. Everything here is covered by the AK signature and the AK
 * certificate chain, except `obfuscated`: the TPM XORs those counters with a per-key value when the AK is
 * outside the endorsement/platform hierarchies (libtpms Attest_spt.c), so they are reported for diagnosis
 * only and must not be used by policy.
 */
export interface TpmQuoteClaims {
  /** The quote's extraData, equal to the verifier's nonce. */
  readonly nonce: Uint8Array;
  /** The quoted PCR values, banks in selection order. */
  readonly pcrs: readonly PcrBank[];
  readonly pcrDigest: Uint8Array;
  readonly signature: { readonly sigAlg: number; readonly hashAlg: number };
  /** nameAlg ‖ H(TPMT_PUBLIC) of the AK, or null when the AK public area was not supplied. */
  readonly akName: Uint8Array | null;
  readonly akCertificateSha256: Uint8Array;
  /** The validated path, leaf (AK certificate) first, trust anchor last (DER). */
  readonly chain: readonly Uint8Array[];
  /** The AK's qualified name as the TPM reports it (depends on the hierarchy; not recomputed). */
  readonly qualifiedSigner: Uint8Array;
  /** The platform identity from the AK certificate, or null when it carries none. */
  readonly identity: GceInstanceIdentity | null;
  readonly clock: { readonly clock: bigint; readonly safe: boolean };
  /** Possibly obfuscated by the TPM: NOT trustworthy (see above). */
  readonly obfuscated: {
    readonly resetCount: number;
    readonly restartCount: number;
    readonly firmwareVersion: bigint;
  };
}
