/** UTF-16LE code units to a string, stopping at the first NUL (UEFI CHAR16 strings). */
export function utf16z(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = b[i]! | (b[i + 1]! << 8);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** Whether bytes look like UTF-16LE text: even length, every high byte zero, printable low bytes. */
export function looksUtf16(b: Uint8Array): boolean {
  if (b.length < 2 || b.length % 2 !== 0) return false;
  for (let i = 0; i < b.length; i += 2) {
    const lo = b[i]!;
    if (b[i + 1] !== 0) return false;
    if (lo === 0 && i >= b.length - 2) continue;
    if (lo < 0x09 || (lo > 0x0d && lo < 0x20) || lo > 0x7e) return false;
  }
  return true;
}
