import { createHash, createHmac } from 'node:crypto';
import { InvalidArgument } from '../../errors.js';
import { hashInfo } from './marshal.js';

/**
 * The TPM key derivation functions (TPM 2.0 Library Part 1 rev 1.59 §11.4.10): KDFa (SP 800-108 counter
 * mode with HMAC) and KDFe (SP 800-56A concatenation KDF with a plain hash). Both produce ⌈bits/8⌉ bytes and,
 * when bits is not a multiple of 8, clear the unused high bits of the FIRST byte (§11.4.10.2: "the
 * remaining bits are masked off"); go-tpm's test vectors fail without that mask.
 */

/** The largest output the TPM itself could ask for (a 64 KiB TPM2B) — anything beyond is a caller bug. */
const MAX_BITS = 0xffff * 8;

/** 0 bits is legal and yields no bytes (go-tpm's vector 45_SHA384_0). */
function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 0 || bits > MAX_BITS) {
    throw new InvalidArgument('tpm.kdf.bits', `KDF output size ${bits} bits is out of range`);
  }
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
}

/** A label as the KDFs use it: the ASCII bytes then one terminating zero (not doubled if already there). */
function labelBytes(label: string | Uint8Array): Uint8Array {
  const b = typeof label === 'string' ? new Uint8Array(Buffer.from(label, 'latin1')) : label;
  if (b.length > 0 && b[b.length - 1] === 0) return b;
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

function truncate(blocks: Uint8Array[], bits: number): Uint8Array {
  const bytes = Math.ceil(bits / 8);
  const out = new Uint8Array(Buffer.concat(blocks).subarray(0, bytes));
  if (bits % 8 !== 0) out[0]! &= (1 << (bits % 8)) - 1;
  return out;
}

/**
 * KDFa(hashAlg, key, label, contextU, contextV, bits) = ‖ᵢ HMAC_H(key, u32 i ‖ label ‖ 00 ‖ contextU ‖
 * contextV ‖ u32 bits), i = 1, 2, …, truncated to ⌈bits/8⌉ bytes with the first-byte mask.
 * Throws NotSupported `tpm.kdf.hash`, InvalidArgument `tpm.kdf.bits`.
 */
export function kdfa(
  hashAlg: number,
  key: Uint8Array,
  label: string | Uint8Array,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Uint8Array {
  const h = hashInfo(hashAlg, 'tpm.kdf.hash');
  checkBits(bits);
  const lab = labelBytes(label);
  const tail = u32(bits);
  const blocks: Uint8Array[] = [];
  for (let i = 1, have = 0; have < bits; i++, have += h.size * 8) {
    blocks.push(
      createHmac(h.node, key)
        .update(u32(i))
        .update(lab)
        .update(contextU)
        .update(contextV)
        .update(tail)
        .digest(),
    );
  }
  return truncate(blocks, bits);
}

/**
 * KDFe(hashAlg, Z, label, partyUInfo, partyVInfo, bits) = ‖ᵢ H(u32 i ‖ Z ‖ label ‖ 00 ‖ partyU ‖ partyV),
 * truncated to ⌈bits/8⌉ bytes with the first-byte mask. Throws NotSupported `tpm.kdf.hash`,
 * InvalidArgument `tpm.kdf.bits`.
 */
export function kdfe(
  hashAlg: number,
  z: Uint8Array,
  label: string | Uint8Array,
  partyU: Uint8Array,
  partyV: Uint8Array,
  bits: number,
): Uint8Array {
  const h = hashInfo(hashAlg, 'tpm.kdf.hash');
  checkBits(bits);
  const lab = labelBytes(label);
  const blocks: Uint8Array[] = [];
  for (let i = 1, have = 0; have < bits; i++, have += h.size * 8) {
    blocks.push(
      createHash(h.node).update(u32(i)).update(z).update(lab).update(partyU).update(partyV).digest(),
    );
  }
  return truncate(blocks, bits);
}
