import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import type { Reader } from '../reader.js';
import { readHashAlg, TpmWriter } from './marshal.js';

/**
 * TPML_PCR_SELECTION (TPM 2.0 Library Part 2 rev 1.59 §10.9.7): u32 count, then per bank TPMS_PCR_SELECTION
 * {u16 hash, u8 sizeofSelect, u8 pcrSelect[sizeofSelect]}; bit j of byte i selects PCR 8i+j (§10.6.1).
 */

/** One bank of a selection: the hash and the selected PCR indexes in ascending order. */
export interface PcrBankSelection {
  readonly hashAlg: number;
  readonly pcrs: readonly number[];
  /** sizeofSelect as marshalled (3 on every PC-client TPM: PCRs 0-23). */
  readonly sizeofSelect: number;
}

/** HASH_COUNT: no TPM has more banks than hash algorithms it implements; 16 is generous. */
export const MAX_PCR_BANKS = 16;
/** PCR_SELECT_MAX: 32 bytes would cover 256 PCRs; real TPMs have 24 (3 bytes). */
export const MAX_SIZEOF_SELECT = 32;

/**
 * Reads a TPML_PCR_SELECTION. `what` prefixes reasons: MalformedEvidence `<what>.pcr_selection_count`,
 * `<what>.pcr_select_size`, `<what>.truncated`; NotSupported `<what>.pcr_bank` for an unknown bank hash.
 */
export function readPcrSelection(r: Reader, what: string): PcrBankSelection[] {
  const count = r.u32be();
  if (count > MAX_PCR_BANKS) {
    throw new MalformedEvidence(
      `${what}.pcr_selection_count`,
      `TPML_PCR_SELECTION count ${count} > ${MAX_PCR_BANKS}`,
    );
  }
  const banks: PcrBankSelection[] = [];
  for (let b = 0; b < count; b++) {
    const hashAlg = readHashAlg(r, `${what}.pcr_bank`).id;
    const sizeofSelect = r.u8();
    if (sizeofSelect > MAX_SIZEOF_SELECT) {
      throw new MalformedEvidence(
        `${what}.pcr_select_size`,
        `sizeofSelect ${sizeofSelect} > ${MAX_SIZEOF_SELECT}`,
      );
    }
    const bits = r.bytes(sizeofSelect);
    const pcrs: number[] = [];
    for (let i = 0; i < sizeofSelect; i++) {
      for (let j = 0; j < 8; j++) if ((bits[i]! >> j) & 1) pcrs.push(8 * i + j);
    }
    banks.push({ hashAlg, pcrs, sizeofSelect });
  }
  return banks;
}

/** Writes a TPML_PCR_SELECTION; sizeofSelect defaults to 3 or whatever the highest PCR needs. */
export function writePcrSelection(
  w: TpmWriter,
  banks: readonly Pick<PcrBankSelection, 'hashAlg' | 'pcrs'>[],
): void {
  w.u32(banks.length);
  for (const bank of banks) {
    const max = bank.pcrs.reduce((m, p) => Math.max(m, p), -1);
    const given = (bank as Partial<PcrBankSelection>).sizeofSelect;
    const size = given ?? Math.max(3, Math.floor(max / 8) + 1);
    const bits = new Uint8Array(size);
    for (const p of bank.pcrs) {
      if (!Number.isInteger(p) || p < 0 || p >= size * 8) {
        throw new InvalidArgument('tpm.encode.pcr_index', `PCR ${p} does not fit a ${size}-byte selection`);
      }
      bits[p >> 3]! |= 1 << (p & 7);
    }
    w.u16(bank.hashAlg).u8(size).bytes(bits);
  }
}

/** Encodes a TPML_PCR_SELECTION. */
export function encodePcrSelection(banks: readonly Pick<PcrBankSelection, 'hashAlg' | 'pcrs'>[]): Uint8Array {
  const w = new TpmWriter();
  writePcrSelection(w, banks);
  return w.finish();
}
