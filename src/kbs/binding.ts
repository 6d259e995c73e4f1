import { createHash } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import { ctEqual } from '../util/bytes.js';
import type { TeePubkey } from './tee-pubkey.js';

/**
 * How REPORT_DATA binds the RCAR exchange (docs/kbs.md "Runtime-data binding"). Two rules are accepted;
 * both cover the server's nonce and the TEE public key, so either proves freshness and key possession:
 *
 * 1. `trustee-jcs-sha384` (Trustee KBS 0.4.0, kbs/src/attestation/backend.rs + attestation-service lib.rs;
 *    guest-components kbs_protocol rcar_client.rs): the primary runtime data
 *      {"tee-pubkey": <JWK: kty, crv, alg, x, y | kty, alg, n, e>, "nonce": <nonce string>,
 *       "additional-evidence": <the tee-evidence.additional_evidence string>}
 *    serialized as canonical JSON (keys sorted at every level, no whitespace: the server's canon_json
 *    CanonicalFormatter, the client's serde_json_canonicalizer / RFC 8785), hashed with SHA-384 (SHA-512
 *    for IBM SE only), then zero-padded to 64 bytes (verifier regularize_data: pad with '\0' or truncate).
 * 2. `aproxy-sha512` (COCONUT-SVSM aproxy's KBS backend, params [EcPublicKeyBytes, Challenge]):
 *    SHA-512(x || y || nonce bytes), x and y the fixed-width big-endian coordinates of the EC tee-pubkey
 *    and the nonce bytes the base64 `nonce` decodes to. EC keys only.
 */

export type BindingName = 'trustee-jcs-sha384' | 'aproxy-sha512';

export interface BindingCandidate {
  readonly name: BindingName;
  /** The 64 bytes REPORT_DATA must equal. */
  readonly reportData: Uint8Array;
}

/** With the `u` flag a surrogate range matches only unpaired surrogates. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Canonical JSON (RFC 8785 JCS) of plain JSON data: sorted keys, no whitespace, ES number formatting. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v === 'boolean') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new InvalidArgument('kbs.canonical_json', 'non-finite number');
    return JSON.stringify(v);
  }
  if (typeof v === 'string') {
    if (LONE_SURROGATE.test(v))
      throw new InvalidArgument('kbs.canonical_json', 'string with a lone surrogate');
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as { [k: string]: unknown };
    // RFC 8785 §3.2.3: sort by UTF-16 code units (the default sort of JS strings).
    const keys = Object.keys(o).sort();
    return `{${keys.map((k) => `${canonicalJson(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  throw new InvalidArgument('kbs.canonical_json', `cannot serialize ${typeof v}`);
}

/** Zero-pads (or truncates) to `len` bytes, as Trustee's `regularize_data`. */
export function regularize(data: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(data.subarray(0, len));
  return out;
}

/** The primary runtime data Trustee hashes (rule 1), as a JSON value. */
export function trusteeRuntimeData(
  nonce: string,
  tee: TeePubkey,
  additionalEvidence: string,
): {
  [k: string]: unknown;
} {
  return { 'tee-pubkey': { ...tee.jwk }, nonce, 'additional-evidence': additionalEvidence };
}

/** Rule 1: pad64(SHA-384(canonical JSON of the primary runtime data)). */
export function trusteeReportData(runtimeData: unknown): Uint8Array {
  const digest = createHash('sha384').update(canonicalJson(runtimeData), 'utf8').digest();
  return regularize(digest, 64);
}

/** Rule 2: SHA-512(x || y || nonce). */
export function aproxyReportData(point: { x: Uint8Array; y: Uint8Array }, nonce: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha512').update(point.x).update(point.y).update(nonce).digest());
}

/** The REPORT_DATA values this exchange may carry, rule 1 first. */
export function bindingCandidates(
  nonceString: string,
  nonceBytes: Uint8Array,
  tee: TeePubkey,
  additionalEvidence: string,
): BindingCandidate[] {
  const out: BindingCandidate[] = [
    {
      name: 'trustee-jcs-sha384',
      reportData: trusteeReportData(trusteeRuntimeData(nonceString, tee, additionalEvidence)),
    },
  ];
  if (tee.point) out.push({ name: 'aproxy-sha512', reportData: aproxyReportData(tee.point, nonceBytes) });
  return out;
}

/** The candidate equal to `reportData` (constant-time compares), or undefined. */
export function matchBinding(
  reportData: Uint8Array,
  candidates: readonly BindingCandidate[],
): BindingCandidate | undefined {
  let found: BindingCandidate | undefined;
  for (const c of candidates) if (ctEqual(c.reportData, reportData) && !found) found = c;
  return found;
}
