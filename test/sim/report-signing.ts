import { type KeyObject, verify } from 'node:crypto';

/**
 * Independent check of an SNP report signature with node:crypto only (ABI 56860 Table 139): R and S are
 * 72-byte little-endian values at 0x2A0 and 0x2E8; the P-384 signature is their low 48 bytes, big-endian.
 */
export function verifyReportSignature(report: Uint8Array, key: KeyObject): boolean {
  const be = (off: number) => {
    const le = report.subarray(off, off + 72);
    if (le.subarray(48).some((b) => b !== 0)) return undefined; // wider than P-384
    return Uint8Array.from(le.subarray(0, 48)).reverse();
  };
  const r = be(0x2a0);
  const s = be(0x2e8);
  if (!r || !s) return false;
  const sig = new Uint8Array(96);
  sig.set(r, 0);
  sig.set(s, 48);
  return verify('sha384', report.subarray(0, 0x2a0), { key, dsaEncoding: 'ieee-p1363' }, sig);
}
