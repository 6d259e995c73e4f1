import { InvalidArgument } from '../../errors.js';

/**
 * GUIDs in the EFI ("mixed-endian") byte layout that the SVSM specification (AMD 58019, §7 Table 12) and
 * COCONUT-SVSM (`uuid::Uuid` written with `to_bytes_le`) use: the first three fields (u32, u16, u16) are
 * little-endian, the last eight bytes are in string order. RFC 4122 order (as in the SNP certificate table)
 * differs; go-sev-guest's `UUIDToLittleEndian` performs this conversion.
 */

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Canonical lower-case text form of a GUID, or undefined when `s` is not one. */
export function normalizeGuid(s: string): string | undefined {
  const t = s.toLowerCase();
  return GUID_RE.test(t) ? t : undefined;
}

/** Encodes a GUID string as 16 bytes in EFI layout. Throws InvalidArgument `svsm.guid` for a malformed GUID. */
export function guidToEfiBytes(guid: string): Uint8Array {
  const g = normalizeGuid(guid);
  if (g === undefined) throw new InvalidArgument('svsm.guid', `not a GUID: ${guid}`);
  const b = new Uint8Array(Buffer.from(g.replace(/-/g, ''), 'hex'));
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return b;
}

/** Decodes 16 bytes in EFI layout into the lower-case GUID string. */
export function efiBytesToGuid(bytes: Uint8Array): string {
  const b = Uint8Array.from(bytes.subarray(0, 16));
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
