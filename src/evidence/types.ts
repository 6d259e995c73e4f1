/**
 * The one contract every TEE evidence module satisfies (style.md convention 2; Trustee's per-TEE verifier
 * trait). Parse, verify and claims are separate steps:
 *
 * - `parse` turns bytes into a readonly struct and checks only size, version and reserved fields
 *   (throws MalformedEvidence);
 * - `verify` checks signatures and chains to pinned vendor roots, with every effect (clock, roots,
 *   collateral) passed in through `opts` — it makes no policy decisions;
 * - `toClaims` turns a verification result into a JSON-friendly object for the CLI, the policy layer and
 *   attestation tokens.
 */
export interface EvidenceType<Parsed, Verified, Claims, VerifyOptions> {
  /** Short stable TEE name, e.g. `snp`. */
  readonly tee: string;
  parse(bytes: Uint8Array): Parsed;
  verify(parsed: Parsed, opts: VerifyOptions): Promise<Verified> | Verified;
  toClaims(v: Verified): Claims;
}
