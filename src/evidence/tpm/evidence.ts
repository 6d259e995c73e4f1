import { createHash } from 'node:crypto';
import { parseAttest } from '../../formats/tpm/attest.js';
import { ALG_NAMES } from '../../formats/tpm/constants.js';
import { parsePublic } from '../../formats/tpm/public.js';
import { parseSignature } from '../../formats/tpm/signature.js';
import type { GceInstanceIdentity } from '../../formats/x509/instance-identity.js';
import { toHex } from '../../util/bytes.js';
import type { EvidenceClaims, EvidenceType } from '../types.js';
import type { TpmQuoteClaims } from './claims.js';
import { type VerifyQuoteInput, type VerifyQuoteOptions, verifyQuote } from './verify-quote.js';

/** A verified quote: what verifyQuote established, and the signed TPMS_ATTEST bytes it covers. */
export interface TpmQuoteVerified {
  readonly quote: TpmQuoteClaims;
  /** The TPMS_ATTEST bytes the AK signed (a private copy). */
  readonly attest: Uint8Array;
}

/** The JSON `details` of a TPM quote's {@link EvidenceClaims} (bytes as hex, u64 values as decimal strings). */
export interface TpmQuoteDetails {
  readonly nonce: string;
  /** Per bank (by TPM algorithm name, e.g. `sha256`): PCR index → value (hex). */
  readonly pcrs: { readonly [bank: string]: { readonly [index: string]: string } };
  readonly pcrDigest: string;
  readonly signature: { readonly sigAlg: number; readonly hashAlg: number };
  readonly akName: string | null;
  readonly akCertificateSha256: string;
  readonly identity: { readonly [k: string]: unknown } | null;
  readonly clock: { readonly clock: string; readonly safe: boolean };
}

const bankName = (alg: number): string => ALG_NAMES[alg] ?? `0x${alg.toString(16).padStart(4, '0')}`;

function identityJson(i: GceInstanceIdentity | null): TpmQuoteDetails['identity'] {
  if (!i) return null;
  // bigints as decimal strings: JSON has no integers that wide.
  return JSON.parse(JSON.stringify(i, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
}

/**
 * The TEE-independent claims of a verified quote: each quoted PCR as a measurement (`pcr<i>:<bank>`), the
 * quote's extraData as report data; no identity-bearing field (the platform identity is in the AK
 * certificate, not in the signed quote), no TCB (the quote's firmware version is obfuscated by the TPM)
 * and no debug state. Pure.
 */
export function toTpmEvidenceClaims(v: TpmQuoteVerified): EvidenceClaims<TpmQuoteDetails> {
  const q = v.quote;
  const measurements: Record<string, Uint8Array> = {};
  const pcrs: Record<string, Record<string, string>> = {};
  for (const bank of q.pcrs) {
    const name = bankName(bank.hashAlg);
    const values: Record<string, string> = {};
    for (const [i, value] of bank.values) {
      measurements[`pcr${i}:${name}`] = Uint8Array.from(value);
      values[String(i)] = toHex(value);
    }
    pcrs[name] = values;
  }
  return {
    tee: 'tpm',
    measurements,
    identityField: null,
    launchId: null,
    reportData: Uint8Array.from(q.nonce),
    tcb: {},
    debug: null,
    evidenceDigest: createHash('sha256').update(v.attest).digest('hex'),
    details: {
      nonce: toHex(q.nonce),
      pcrs,
      pcrDigest: toHex(q.pcrDigest),
      signature: { ...q.signature },
      akName: q.akName ? toHex(q.akName) : null,
      akCertificateSha256: toHex(q.akCertificateSha256),
      identity: identityJson(q.identity),
      clock: { clock: q.clock.clock.toString(), safe: q.clock.safe },
    },
  };
}

/**
 * A TPM 2.0 quote as an {@link EvidenceType}: parse checks the structures (TPMS_ATTEST, TPMT_SIGNATURE,
 * the AK's TPMT_PUBLIC when given) and keeps private copies; verify = {@link verifyQuote} (AK certificate
 * to pinned roots, signature, nonce, PCR selection and digest); toClaims = {@link toTpmEvidenceClaims}.
 * Throws as verifyQuote does (MalformedEvidence `tpm.*` from parse).
 */
export const tpmEvidence: EvidenceType<
  VerifyQuoteInput,
  VerifyQuoteInput,
  TpmQuoteVerified,
  VerifyQuoteOptions,
  TpmQuoteDetails
> = {
  tee: 'tpm',
  parse(input) {
    parseAttest(input.quote);
    parseSignature(input.signature);
    if (input.akPublic !== undefined) parsePublic(input.akPublic);
    return {
      ...input,
      quote: Uint8Array.from(input.quote),
      signature: Uint8Array.from(input.signature),
      akCert: Uint8Array.from(input.akCert),
    };
  },
  async verify(parsed, opts) {
    return { quote: verifyQuote(parsed, opts), attest: Uint8Array.from(parsed.quote) };
  },
  toClaims: toTpmEvidenceClaims,
};
