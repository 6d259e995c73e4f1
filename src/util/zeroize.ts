/**
 * Overwrites key material in place. JavaScript cannot promise that no copy survives (the engine, OpenSSL's
 * cipher contexts and the GC may hold their own), so this narrows the window rather than closing it.
 */
export function zeroize(...buffers: (Uint8Array | undefined)[]): void {
  for (const b of buffers) b?.fill(0);
}
