/**
 * Bench-only helpers to run tpm2-tools 5.x `tpm2_checkquote` on a quote we also verify ourselves.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PcrBank } from '../src/evidence/tpm/index.js';

/** tss2 limits that fix the sizes of the C structs tpm2-tools writes with fwrite (tss2_tpm2_types.h). */
const NUM_PCR_BANKS = 16; // TPM2_NUM_PCR_BANKS
const DIGESTS_PER_LIST = 8; // TPML_DIGEST.digests[8]
const MAX_DIGEST = 64; // sizeof(TPMU_HA)
/** TPMS_PCR_SELECTION {u16 hash; u8 sizeofSelect; u8 pcrSelect[4]}, padded to 2-byte alignment. */
const SEL_SIZE = 8;
/** TPML_DIGEST {u32 count; TPM2B_DIGEST {u16 size; u8 buffer[64]} digests[8]}. */
const DIGEST_LIST_SIZE = 4 + DIGESTS_PER_LIST * (2 + MAX_DIGEST);

/**
 * The "serialized" PCR file of `tpm2_quote -o` / `tpm2_pcrread -o -F serialized` (tpm2-tools 5.x
 * lib/pcr.c pcr_fwrite_serialized, read back by tools/tpm2_checkquote.c parse_selection_data_from_file):
 * the raw little-endian C structs — TPML_PCR_SELECTION (132 bytes), a u32 count of TPML_DIGEST lists,
 * then that many TPML_DIGEST (532 bytes each, at most 8 digests, as TPM2_PCR_Read returns them), the
 * values in selection order (ascending index). One bank only; indexes 0..23.
 */
export function encodePcrsSerialized(bank: PcrBank): Uint8Array {
  const indexes = [...bank.values.keys()].sort((a, b) => a - b);
  if (indexes.some((i) => i < 0 || i > 23)) throw new Error('PCR index out of 0..23');
  const lists = Math.ceil(indexes.length / DIGESTS_PER_LIST);
  const out = Buffer.alloc(4 + NUM_PCR_BANKS * SEL_SIZE + 4 + lists * DIGEST_LIST_SIZE);
  out.writeUInt32LE(1, 0);
  out.writeUInt16LE(bank.hashAlg, 4);
  out.writeUInt8(3, 6); // sizeofSelect: 24 PCRs
  for (const i of indexes) out[7 + (i >> 3)]! |= 1 << (i & 7);
  let o = 4 + NUM_PCR_BANKS * SEL_SIZE;
  out.writeUInt32LE(lists, o);
  o += 4;
  for (let l = 0; l < lists; l++) {
    const chunk = indexes.slice(l * DIGESTS_PER_LIST, (l + 1) * DIGESTS_PER_LIST);
    const base = o + l * DIGEST_LIST_SIZE;
    out.writeUInt32LE(chunk.length, base);
    chunk.forEach((i, k) => {
      const v = bank.values.get(i)!;
      const d = base + 4 + k * (2 + MAX_DIGEST);
      out.writeUInt16LE(v.length, d);
      out.set(v, d + 2);
    });
  }
  return out;
}

export interface CheckquoteFiles {
  readonly dir: string;
  readonly pub: string;
  readonly msg: string;
  readonly sig: string;
  readonly pcrs: string;
  /** The same PCR file with one value changed (must be rejected). */
  readonly badPcrs: string;
}

/** Writes tpm2_checkquote's inputs to a fresh temp dir (call `rmSync(files.dir, …)` when done). */
export function writeCheckquoteFiles(
  akCert: Uint8Array,
  quote: Uint8Array,
  signature: Uint8Array,
  bank: PcrBank,
): CheckquoteFiles {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-bench-tpm-'));
  const f = {
    dir,
    pub: join(dir, 'ak.pub.pem'),
    msg: join(dir, 'quote.attest.bin'),
    sig: join(dir, 'quote.sig.tpmt_signature.bin'),
    pcrs: join(dir, 'quote.pcrs.serialized.bin'),
    badPcrs: join(dir, 'quote.pcrs.tampered.bin'),
  };
  const pem = new X509Certificate(akCert).publicKey.export({ type: 'spki', format: 'pem' });
  writeFileSync(f.pub, pem);
  writeFileSync(f.msg, quote);
  writeFileSync(f.sig, signature);
  const pcrs = encodePcrsSerialized(bank);
  writeFileSync(f.pcrs, pcrs);
  const bad = Buffer.from(pcrs);
  bad[4 + NUM_PCR_BANKS * SEL_SIZE + 4 + 4 + 2]! ^= 1; // first byte of the first digest
  writeFileSync(f.badPcrs, bad);
  return f;
}

export const removeCheckquoteFiles = (f: CheckquoteFiles): void =>
  rmSync(f.dir, { recursive: true, force: true });

export const CHECKQUOTE = 'tpm2_checkquote';

export function checkquoteArgs(f: CheckquoteFiles, hash: string, nonceHex: string, pcrs = f.pcrs): string[] {
  return ['-u', f.pub, '-m', f.msg, '-s', f.sig, '-f', pcrs, '-g', hash, '-q', nonceHex];
}

/** Runs tpm2_checkquote; true on exit 0, false on a non-zero exit. Throws when the binary is missing. */
export function runCheckquote(args: readonly string[]): boolean {
  try {
    execFileSync(CHECKQUOTE, args, { stdio: 'ignore' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${CHECKQUOTE} not found: install the Debian package tpm2-tools`);
    }
    if (typeof (e as { status?: unknown }).status === 'number') return false;
    throw e;
  }
}
