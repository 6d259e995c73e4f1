import { randomFillSync } from 'node:crypto';

/**
 * Random bytes for the per-release hot path (challenges, commit tokens, session ids, IVs, JWE content keys),
 * drawn from a block filled by one `randomFillSync` call: the same CSPRNG as `randomBytes`, whose fixed
 * cost of ~3 µs a call (a crypto job per call, whatever the size) a KBS exchange paid six times. node's
 * `randomUUID` buffers its entropy the same way. Each slice is copied out and zeroed in the block, so the
 * block never holds bytes already handed out. Requests larger than a slice go to `randomFillSync` itself.
 * Long-lived keys (sealing keys, the KEK, signing keys) are made with node:crypto directly.
 */
const BLOCK_BYTES = 4096;
const MAX_POOLED = 64;

const block = Buffer.alloc(BLOCK_BYTES);
let used = BLOCK_BYTES;

/** Fills `out` with fresh random bytes and returns it (as `randomFillSync(out)`). */
export function pooledRandomFill<T extends Uint8Array>(out: T): T {
  const n = out.length;
  if (n > MAX_POOLED) return randomFillSync(out);
  if (used + n > BLOCK_BYTES) {
    randomFillSync(block);
    used = 0;
  }
  out.set(block.subarray(used, used + n));
  block.fill(0, used, used + n);
  used += n;
  return out;
}

/** `n` fresh random bytes in a Buffer of their own (as `randomBytes(n)`: never in node's shared pool slab). */
export const pooledRandomBytes = (n: number): Buffer => pooledRandomFill(Buffer.alloc(n));
