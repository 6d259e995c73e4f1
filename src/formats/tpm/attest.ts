import { MalformedEvidence, NotSupported } from '../../errors.js';
import { Reader } from '../reader.js';
import { TPM_GENERATED_VALUE, TPM_ST } from './constants.js';
import { readTpm2b, TPM2B_MAX, TpmWriter } from './marshal.js';
import { type PcrBankSelection, readPcrSelection, writePcrSelection } from './pcr-selection.js';

/**
 * TPMS_ATTEST (TPM 2.0 Library Part 2 rev 1.59 §10.12.12) with the quote (§10.12.4 TPMS_QUOTE_INFO) and
 * certify (§10.12.3 TPMS_CERTIFY_INFO) bodies. This is what `TPM2_Quote`/`TPM2_Certify` sign and what
 * `tpm2_quote -m` writes (no size prefix). Parsing checks structure only, plus the magic: a TPMS_ATTEST
 * without TPM_GENERATED_VALUE was not produced by a TPM (§10.12.12 note), whatever signs it.
 */

/** TPMS_CLOCK_INFO (§10.11.1). */
export interface ClockInfo {
  /** Milliseconds the TPM has been powered since its last Clear; never obfuscated. */
  readonly clock: bigint;
  /**
   * Obfuscated (XOR-ed with a per-key value, Part 1 §36.7 / libtpms Attest_spt.c) when the signing key is
   * outside the endorsement and platform hierarchies, i.e. for every ordinary AK: not a trustworthy value.
   */
  readonly resetCount: number;
  /** Obfuscated like resetCount. */
  readonly restartCount: number;
  readonly safe: boolean;
}

export interface QuoteInfo {
  readonly pcrSelect: readonly PcrBankSelection[];
  readonly pcrDigest: Uint8Array;
}

export interface CertifyInfo {
  readonly name: Uint8Array;
  readonly qualifiedName: Uint8Array;
}

interface AttestCommon {
  readonly qualifiedSigner: Uint8Array;
  /** The caller's nonce (qualifyingData). */
  readonly extraData: Uint8Array;
  readonly clockInfo: ClockInfo;
  /** Obfuscated like resetCount for non-endorsement/platform signers. */
  readonly firmwareVersion: bigint;
}

export type TpmsAttest =
  | (AttestCommon & { readonly type: typeof TPM_ST.ATTEST_QUOTE; readonly attested: QuoteInfo })
  | (AttestCommon & { readonly type: typeof TPM_ST.ATTEST_CERTIFY; readonly attested: CertifyInfo });

/** A parsed TPMS_ATTEST with the exact bytes (what the signature covers). */
export type ParsedAttest = TpmsAttest & { readonly raw: Uint8Array };

/**
 * Parses a TPMS_ATTEST of type ATTEST_QUOTE or ATTEST_CERTIFY. Throws MalformedEvidence `tpm.attest.magic`,
 * `.truncated`, `.trailing_bytes`, `.safe`, `.qualified_signer`, `.extra_data`, `.pcr_digest`, `.name`,
 * `.pcr_selection_count`, `.pcr_select_size`; NotSupported `tpm.attest.type` (other attestation types) and
 * `tpm.attest.pcr_bank`.
 */
export function parseAttest(bytes: Uint8Array): ParsedAttest {
  const r = new Reader(bytes, 'tpm.attest');
  const magic = r.u32be();
  if (magic !== TPM_GENERATED_VALUE) {
    throw new MalformedEvidence(
      'tpm.attest.magic',
      `magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE`,
    );
  }
  const type = r.u16be();
  if (type !== TPM_ST.ATTEST_QUOTE && type !== TPM_ST.ATTEST_CERTIFY) {
    throw new NotSupported('tpm.attest.type', `attestation type 0x${type.toString(16)} is not supported`);
  }
  const qualifiedSigner = readTpm2b(r, TPM2B_MAX.name, 'tpm.attest.qualified_signer');
  const extraData = readTpm2b(r, TPM2B_MAX.data, 'tpm.attest.extra_data');
  const clock = r.u64be();
  const resetCount = r.u32be();
  const restartCount = r.u32be();
  const safeByte = r.u8();
  if (safeByte > 1) throw new MalformedEvidence('tpm.attest.safe', `TPMI_YES_NO safe is ${safeByte}`);
  const firmwareVersion = r.u64be();
  const common: AttestCommon = {
    qualifiedSigner,
    extraData,
    clockInfo: { clock, resetCount, restartCount, safe: safeByte === 1 },
    firmwareVersion,
  };
  let out: ParsedAttest;
  if (type === TPM_ST.ATTEST_QUOTE) {
    const pcrSelect = readPcrSelection(r, 'tpm.attest');
    const pcrDigest = readTpm2b(r, TPM2B_MAX.digest, 'tpm.attest.pcr_digest');
    out = { ...common, type, attested: { pcrSelect, pcrDigest }, raw: bytes };
  } else {
    const name = readTpm2b(r, TPM2B_MAX.name, 'tpm.attest.name');
    const qualifiedName = readTpm2b(r, TPM2B_MAX.name, 'tpm.attest.name');
    out = { ...common, type, attested: { name, qualifiedName }, raw: bytes };
  }
  r.end();
  return out;
}

/** Encodes a TPMS_ATTEST (magic included). Inverse of {@link parseAttest}. */
export function encodeAttest(a: TpmsAttest): Uint8Array {
  const w = new TpmWriter()
    .u32(TPM_GENERATED_VALUE)
    .u16(a.type)
    .tpm2b(a.qualifiedSigner)
    .tpm2b(a.extraData)
    .u64(a.clockInfo.clock)
    .u32(a.clockInfo.resetCount)
    .u32(a.clockInfo.restartCount)
    .u8(a.clockInfo.safe ? 1 : 0)
    .u64(a.firmwareVersion);
  if (a.type === TPM_ST.ATTEST_QUOTE) {
    writePcrSelection(w, a.attested.pcrSelect);
    w.tpm2b(a.attested.pcrDigest);
  } else {
    w.tpm2b(a.attested.name).tpm2b(a.attested.qualifiedName);
  }
  return w.finish();
}
