import { InvalidArgument, MalformedEvidence, NotSupported } from '../../errors.js';
import { concatBytes } from '../../util/bytes.js';
import type { Reader } from '../reader.js';
import { algLabel, HASH_ALGS, type HashInfo } from './constants.js';

/**
 * Shared TPM 2.0 marshalling helpers (Part 2 §5-§10: every integer is big-endian; a TPM2B is a u16 size
 * followed by that many bytes). Reading goes through the bounds-checked {@link Reader}; a size that points
 * past the end of the input surfaces as MalformedEvidence `<what>.truncated`.
 */

/** Largest sizes the reference implementation allows (Part 2 §10/§11 with MAX_RSA_KEY_BYTES = 512). */
export const TPM2B_MAX = {
  digest: 64,
  data: 66,
  name: 66,
  eccParameter: 66,
  rsaKey: 512,
  encryptedSecret: 512,
  sensitive: 1280,
  public: 1280,
} as const;

/**
 * Reads a TPM2B: u16 size then the bytes (a view). A size over `max` is MalformedEvidence `reason`; one past
 * the end of the input is `<what>.truncated`.
 */
export function readTpm2b(r: Reader, max: number, reason: string): Uint8Array {
  const size = r.u16be();
  if (size > max) {
    throw new MalformedEvidence(reason, `${reason}: TPM2B size ${size} exceeds the maximum ${max}`);
  }
  return r.bytes(size);
}

/** Reads a TPMI_ALG_HASH that must name a hash this implementation computes. */
export function readHashAlg(r: Reader, reason: string): HashInfo {
  const id = r.u16be();
  const h = HASH_ALGS[id];
  if (h === undefined)
    throw new NotSupported(reason, `${reason}: hash algorithm ${algLabel(id)} is not supported`);
  return h;
}

/** Looks up a hash by TPM id for encoders and verifiers: unknown ids are NotSupported `reason`. */
export function hashInfo(id: number, reason: string): HashInfo {
  const h = HASH_ALGS[id];
  if (h === undefined)
    throw new NotSupported(reason, `${reason}: hash algorithm ${algLabel(id)} is not supported`);
  return h;
}

/** A growable big-endian writer for TPM structures (encoders; the mirror of Reader's *be methods). */
export class TpmWriter {
  private chunks: Uint8Array[] = [];
  private len = 0;

  get length(): number {
    return this.len;
  }

  private push(b: Uint8Array): this {
    this.chunks.push(b);
    this.len += b.length;
    return this;
  }

  u8(v: number): this {
    return this.push(Uint8Array.of(v & 0xff));
  }

  u16(v: number): this {
    checkRange(v, 0xffff, 'u16');
    return this.push(Uint8Array.of(v >>> 8, v & 0xff));
  }

  u32(v: number): this {
    checkRange(v, 0xffffffff, 'u32');
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v);
    return this.push(b);
  }

  u64(v: bigint): this {
    if (v < 0n || v > 0xffffffffffffffffn)
      throw new InvalidArgument('tpm.encode.range', `u64 out of range: ${v}`);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v);
    return this.push(b);
  }

  bytes(b: Uint8Array): this {
    return this.push(Uint8Array.from(b));
  }

  /** A TPM2B: u16 length then the bytes. */
  tpm2b(b: Uint8Array): this {
    if (b.length > 0xffff) throw new InvalidArgument('tpm.encode.range', `TPM2B of ${b.length} bytes`);
    return this.u16(b.length).bytes(b);
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.len);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

function checkRange(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new InvalidArgument('tpm.encode.range', `${what} out of range: ${v}`);
  }
}

/** Prefixes bytes with a u16 size: TPM2B_PUBLIC from TPMT_PUBLIC, TPM2B_ID_OBJECT, etc. */
export function tpm2b(b: Uint8Array): Uint8Array {
  return new TpmWriter().tpm2b(b).finish();
}

/** Concatenates byte arrays. */
export const concat = (...parts: readonly Uint8Array[]): Uint8Array => concatBytes(parts);
