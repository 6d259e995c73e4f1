/** Byte helpers of the C509 tests (error assertions are in test/helpers/assert-error.ts). */
export function flipByte(b: Uint8Array, index: number): Uint8Array {
  const c = Uint8Array.from(b);
  c[index] = c[index]! ^ 0x01;
  return c;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
