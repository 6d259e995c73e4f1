/**
 * The one contract every TEE evidence module satisfies (style.md convention 2; Trustee's per-TEE verifier
 * trait that emits claims). Parse, verify and claims are separate steps:
 *
 * - `parse` turns the evidence as received into a readonly struct and checks only size, version and
 *   reserved fields (throws MalformedEvidence);
 * - `verify` checks signatures and chains to pinned vendor roots, with every effect (clock, trusted roots,
 *   the collateral getter) passed in through `opts`: it makes no policy decision;
 * - `toClaims` turns a verification result into the TEE-independent {@link EvidenceClaims} that the broker,
 *   the KBS and the CA consume, so none of them reaches into a TEE's own report structure.
 *
 * Appraisal (claims against a policy) is not part of this contract: it lives in src/policy/<tee>, and
 * src/policy/tees.ts maps each TEE name to its verifier and its appraiser.
 */
export interface EvidenceType<Input, Parsed, Verified, VerifyOptions, Details = ClaimDetails> {
  /** Short stable TEE name, e.g. `snp`, `tpm`. */
  readonly tee: string;
  parse(input: Input): Parsed;
  verify(parsed: Parsed, opts: VerifyOptions): Promise<Verified>;
  toClaims(v: Verified): EvidenceClaims<Details>;
}

/**
 * A JSON-friendly object (strings, numbers, booleans, arrays, objects) of TEE-specific claims. Typed as
 * `object` so that a TEE's own claim interface (which has no index signature) fits.
 */
export type ClaimDetails = object;

/**
 * What verified evidence establishes, in the same shape for every TEE. Byte fields are Uint8Array (the
 * broker compares them in constant time); `details` is the TEE's full claim set as JSON, for tokens and
 * the CLI.
 */
export interface EvidenceClaims<Details = ClaimDetails> {
  /** The TEE name of the {@link EvidenceType} that verified the evidence. */
  readonly tee: string;
  /**
   * Launch measurements by name, each covered by the evidence's signature: SEV-SNP `{measurement}`
   * (MEASUREMENT, 48 bytes); TDX would give `{mrTd, rtmr0..rtmr3}`; a TPM quote one entry per quoted PCR,
   * `pcr<index>:<bank>` (e.g. `pcr7:sha256`).
   */
  readonly measurements: Readonly<Record<string, Uint8Array>>;
  /**
   * The field the host sets at launch, signed by the TEE, that names the instance: SEV-SNP HOST_DATA
   * (32 bytes), TDX MRCONFIGID. Null when the evidence has none (a TPM quote): such evidence cannot name
   * an instance in the registry.
   */
  readonly identityField: { readonly name: string; readonly value: Uint8Array } | null;
  /**
   * What tells one launch of the VM from another, signed by the TEE: SEV-SNP REPORT_ID (32 random bytes the
   * firmware chooses at launch, the same in every report of that launch; ABI 56860 Table 23); TDX would give
   * MRTD with the RTMRs. Null when the evidence has none (a TPM quote). The broker treats a re-attestation
   * with the active boot's launch id as that same boot (docs/broker.md "Leases").
   */
  readonly launchId: { readonly name: string; readonly value: Uint8Array } | null;
  /**
   * The caller-chosen bytes the evidence binds (SEV-SNP REPORT_DATA, 64 bytes; TDX REPORTDATA; TPM quote
   * extraData): what freshness and key binding are checked against.
   */
  readonly reportData: Uint8Array;
  /**
   * The platform's trusted computing base as the evidence's signer certifies it, by component (SEV-SNP:
   * REPORTED_TCB decoded for the product, plus `raw`). Empty when the evidence certifies none (TPM).
   */
  readonly tcb: Readonly<Record<string, number | string>>;
  /**
   * Whether the TEE lets the host debug the guest (read its memory): SEV-SNP POLICY.DEBUG. Null when the
   * evidence says nothing about it (TPM): treat as "not excluded".
   */
  readonly debug: boolean | null;
  /** SHA-256 (hex) of the signed evidence bytes that were verified (SEV-SNP: the 1184-byte report). */
  readonly evidenceDigest: string;
  /** Every other claim of the TEE, JSON-friendly (SEV-SNP: src/evidence/snp SnpClaims). */
  readonly details: Details;
}

/**
 * Verified evidence as it travels between layers: the TEE-independent claims, and the TEE's own
 * verification result (`native`), which only that TEE's appraiser (src/policy/tees.ts) reads.
 */
export interface VerifiedEvidence<Native = unknown> {
  readonly claims: EvidenceClaims;
  readonly native: Native;
}
