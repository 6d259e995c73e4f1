/**
 * EFI_GUID text form (UEFI 2.10 Appendix A): the first three fields are little-endian integers, the last
 * eight bytes are printed in order, e.g. `8be4df61-93ca-11d2-aa0d-00e098032b8c`.
 */
export function formatGuid(b: Uint8Array): string {
  const h = Buffer.from(b.buffer, b.byteOffset, 16).toString('hex');
  const le = (s: string) => s.match(/../g)!.reverse().join('');
  return `${le(h.slice(0, 8))}-${le(h.slice(8, 12))}-${le(h.slice(12, 16))}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** EFI_GLOBAL_VARIABLE (SecureBoot, PK, KEK, Boot####, BootOrder). */
export const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
/** EFI_IMAGE_SECURITY_DATABASE_GUID (db, dbx, dbt). */
export const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
/** EFI_CERT_SHA256_GUID: a signature list of SHA-256 image digests. */
export const EFI_CERT_SHA256 = 'c1c41626-504c-4092-aca9-41f936934328';
/** EFI_CERT_X509_GUID: a signature list of DER X.509 certificates. */
export const EFI_CERT_X509 = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
