import { MalformedEvidence } from '../../errors.js';
import { Reader, Writer } from '../reader.js';
import { EFI_VARIABLE_DEFINED, MAX_DATA_BYTES, MAX_NAME_BYTES } from './uefi.js';

/**
 * The file in which `vouchsafe vmm-device` keeps one instance's UEFI variables (docs/pvchannel.md §7.3).
 * What it holds is already sealed by the guest; the file only has to be read back exactly. Little-endian:
 *
 *   0x00 magic "VSUH", u16 format 1, u16 reserved (0), u32 count
 *   count x { guid[16], u16 nameBytes, u16 reserved (0), u32 attributes, u32 dataBytes, name, data }
 *
 * Records are in the host's storage order, which is the order UEFI_GET_NEXT walks.
 */
export interface HostVariable {
  readonly guid: Uint8Array;
  readonly name: Uint8Array;
  readonly attributes: number;
  readonly data: Uint8Array;
}

const MAGIC = 0x48555356; // "VSUH" little-endian
/** Bound on the records one file may hold (far above any sane store; keeps a hostile file from looping long). */
export const MAX_HOST_VARIABLES = 65536;

export function encodeHostStoreFile(vars: readonly HostVariable[]): Uint8Array {
  let size = 12;
  for (const v of vars) size += 28 + v.name.length + v.data.length;
  const w = new Writer(size).u32le(MAGIC).u16le(1).u16le(0).u32le(vars.length);
  for (const v of vars) {
    w.bytes(v.guid, 16).u16le(v.name.length).u16le(0).u32le(v.attributes).u32le(v.data.length);
    w.bytes(v.name).bytes(v.data);
  }
  return w.buf;
}

/** Decodes a host store file. Throws MalformedEvidence `pvchannel.uefi_host_file.*`. */
export function decodeHostStoreFile(b: Uint8Array): HostVariable[] {
  const what = 'pvchannel.uefi_host_file';
  const r = new Reader(b, what);
  if (r.u32le() !== MAGIC) throw new MalformedEvidence(`${what}.magic`, `${what}: not a variable store`);
  if (r.u16le() !== 1) throw new MalformedEvidence(`${what}.version`, `${what}: unknown format`);
  r.mbz(2, '0x6');
  const count = r.u32le();
  if (count > MAX_HOST_VARIABLES) throw new MalformedEvidence(`${what}.count`, `${what}: too many records`);
  const out: HostVariable[] = [];
  for (let i = 0; i < count; i++) {
    const guid = Uint8Array.from(r.bytes(16));
    const n = r.u16le();
    r.mbz(2, 'record reserved');
    const attributes = r.u32le();
    const d = r.u32le();
    if (
      n === 0 ||
      n % 2 !== 0 ||
      n > MAX_NAME_BYTES ||
      d > MAX_DATA_BYTES ||
      attributes & ~EFI_VARIABLE_DEFINED
    ) {
      throw new MalformedEvidence(`${what}.record`, `${what}: record ${i} is out of bounds`);
    }
    out.push({ guid, name: Uint8Array.from(r.bytes(n)), attributes, data: Uint8Array.from(r.bytes(d)) });
  }
  r.end();
  return out;
}
