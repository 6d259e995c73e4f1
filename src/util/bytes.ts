import { timingSafeEqual } from 'node:crypto';

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Strict hex decoding: even length, hex digits only (Buffer.from silently stops at the first bad digit). */
export function fromHex(s: string): Uint8Array | undefined {
  const t = s.trim().replace(/^0x/i, '');
  if (t.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(t)) return undefined;
  return new Uint8Array(Buffer.from(t, 'hex'));
}

/** Constant-time equality for secrets, nonces and digests; unequal lengths compare false. */
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Equality of public bytes (encodings, names, OIDs); secrets, nonces and digests use {@link ctEqual}. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

/** Reverses a little-endian integer's bytes into big-endian order (a copy). */
export function reversed(b: Uint8Array): Uint8Array {
  return Uint8Array.from(b).reverse();
}

/** The concatenation of `parts` (a new array). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
