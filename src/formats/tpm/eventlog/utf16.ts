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

/**
 * Whether bytes look like UTF-16LE text (systemd-boot and EDK2 log CHAR16 strings): even length, a
 * non-NUL first character whose high byte is zero, and the first four high bytes all zero.
 */
export function looksUtf16(b: Uint8Array): boolean {
  if (b.length < 2 || b.length % 2 !== 0 || b[0] === 0) return false;
  for (let i = 1; i < Math.min(b.length, 8); i += 2) if (b[i] !== 0) return false;
  return true;
}
