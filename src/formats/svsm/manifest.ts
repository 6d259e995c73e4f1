import { createHash } from 'node:crypto';
import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { Reader } from '../reader.js';
import { efiBytesToGuid, guidToEfiBytes, normalizeGuid } from './guid.js';

/**
 * The SVSM services manifest (Secure VM Service Module for SEV-SNP Guests, AMD 58019 rev 1.00, §7.1
 * Table 12; COCONUT-SVSM `kernel/src/protocols/attest.rs`; go-sev-guest `abi/abi_svsm.go`):
 *
 * ```
 * 0x00  GUID  63849ebb-3d92-4670-a1ff-58f9c94b87bb (16 B, EFI mixed-endian layout)
 * 0x10  u32 LE  total length of the manifest in bytes (header, entries and payloads)
 * 0x14  u32 LE  number of entries N
 * 0x18  N × 24-B entries { service GUID (16 B, EFI layout), payload offset u32 LE (from the manifest
 *       start), payload size u32 LE }
 *       payloads
 * ```
 * SVSM_ATTEST_SERVICES binds it into the report: REPORT_DATA = SHA-512(nonce ‖ manifest) (§7.2).
 *
 * The parser is strict about bounds (every payload inside the manifest, after the entry table, no two
 * payloads overlapping, no service listed twice, total length equal to the input length) and tolerant of
 * layout (payloads in any order, gaps allowed): the report hashes every byte, so a gap cannot hide anything.
 * The encoder lays payloads out back to back in entry order, as COCONUT and go-sev-guest do.
 */

export const SERVICES_MANIFEST_GUID = '63849ebb-3d92-4670-a1ff-58f9c94b87bb';

/** Header and entry size (Table 12). */
export const MANIFEST_HEADER_SIZE = 24;
export const MANIFEST_ENTRY_SIZE = 24;
/** Real manifests are well under 4 KiB (a vTPM EK and the UEFI MM flags); 64 KiB bounds hostile input. */
export const MAX_MANIFEST_SIZE = 64 * 1024;
/** Far more services than any SVSM registers. */
export const MAX_MANIFEST_ENTRIES = 256;

export interface ServiceEntry {
  /** Lower-case GUID string. */
  readonly guid: string;
  /** The payload's offset from the manifest start, as the entry states it. */
  readonly offset: number;
  /** A view of the payload bytes. */
  readonly payload: Uint8Array;
}

export interface ServicesManifest {
  readonly entries: readonly ServiceEntry[];
  /** The exact bytes parsed (what REPORT_DATA covers). */
  readonly raw: Uint8Array;
}

const R = 'svsm.manifest';

/**
 * Parses a services manifest. Throws MalformedEvidence `svsm.manifest.size` (over 64 KiB),
 * `.truncated`, `.guid` (wrong header GUID), `.length` (total length is not the input length), `.entries`
 * (entry table does not fit or too many entries), `.bounds` (a payload outside the manifest or inside the
 * entry table), `.overlap`, `.duplicate` (one service listed twice).
 */
export function parseServicesManifest(bytes: Uint8Array): ServicesManifest {
  if (bytes.length > MAX_MANIFEST_SIZE) {
    throw new MalformedEvidence(
      `${R}.size`,
      `manifest of ${bytes.length} bytes exceeds ${MAX_MANIFEST_SIZE}`,
    );
  }
  const r = new Reader(bytes, R);
  const guid = efiBytesToGuid(r.bytes(16));
  if (guid !== SERVICES_MANIFEST_GUID) {
    throw new MalformedEvidence(
      `${R}.guid`,
      `manifest header GUID is ${guid}, not ${SERVICES_MANIFEST_GUID}`,
    );
  }
  const total = r.u32le();
  if (total !== bytes.length) {
    throw new MalformedEvidence(
      `${R}.length`,
      `manifest states ${total} bytes but ${bytes.length} were given`,
    );
  }
  const count = r.u32le();
  const tableEnd = MANIFEST_HEADER_SIZE + MANIFEST_ENTRY_SIZE * count;
  if (count > MAX_MANIFEST_ENTRIES || tableEnd > total) {
    throw new MalformedEvidence(`${R}.entries`, `${count} entries do not fit in ${total} bytes`);
  }
  const entries: ServiceEntry[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const service = efiBytesToGuid(r.bytes(16));
    const offset = r.u32le();
    const size = r.u32le();
    // Both are < 2^32, so the sum is exact in a double.
    if (offset < tableEnd || offset + size > total) {
      throw new MalformedEvidence(
        `${R}.bounds`,
        `entry ${i} payload [0x${offset.toString(16)}, +${size}) lies outside [0x${tableEnd.toString(16)}, 0x${total.toString(16)})`,
      );
    }
    if (seen.has(service))
      throw new MalformedEvidence(`${R}.duplicate`, `service ${service} is listed twice`);
    seen.add(service);
    entries.push({ guid: service, offset, payload: bytes.subarray(offset, offset + size) });
  }
  const byOffset = [...entries].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    if (byOffset[i]!.offset < prev.offset + prev.payload.length) {
      throw new MalformedEvidence(
        `${R}.overlap`,
        `payloads of ${prev.guid} and ${byOffset[i]!.guid} overlap`,
      );
    }
  }
  return { entries, raw: bytes };
}

/**
 * Encodes a services manifest: header, entries, then the payloads back to back in entry order. Throws
 * InvalidArgument `svsm.guid` (bad GUID), `svsm.manifest.duplicate`, `svsm.manifest.size`.
 */
export function encodeServicesManifest(
  entries: readonly { readonly guid: string; readonly payload: Uint8Array }[],
): Uint8Array {
  const seen = new Set<string>();
  for (const e of entries) {
    const g = normalizeGuid(e.guid);
    if (g === undefined) throw new InvalidArgument('svsm.guid', `not a GUID: ${e.guid}`);
    if (seen.has(g)) throw new InvalidArgument(`${R}.duplicate`, `service ${g} is listed twice`);
    seen.add(g);
  }
  const tableEnd = MANIFEST_HEADER_SIZE + MANIFEST_ENTRY_SIZE * entries.length;
  const total = entries.reduce((n, e) => n + e.payload.length, tableEnd);
  if (total > MAX_MANIFEST_SIZE || entries.length > MAX_MANIFEST_ENTRIES) {
    throw new InvalidArgument(
      `${R}.size`,
      `a manifest of ${total} bytes / ${entries.length} entries is too large`,
    );
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(guidToEfiBytes(SERVICES_MANIFEST_GUID), 0);
  view.setUint32(16, total, true);
  view.setUint32(20, entries.length, true);
  let offset = tableEnd;
  entries.forEach((e, i) => {
    const at = MANIFEST_HEADER_SIZE + i * MANIFEST_ENTRY_SIZE;
    out.set(guidToEfiBytes(e.guid), at);
    view.setUint32(at + 16, offset, true);
    view.setUint32(at + 20, e.payload.length, true);
    out.set(e.payload, offset);
    offset += e.payload.length;
  });
  return out;
}

/** The entry for `guid`, if the manifest lists that service. */
export function findService(manifest: ServicesManifest, guid: string): ServiceEntry | undefined {
  const g = normalizeGuid(guid);
  return manifest.entries.find((e) => e.guid === g);
}

/** SVSM_ATTEST_* nonces are exactly 64 bytes (AMD 58019 §7.2 Table 11; COCONUT checks nonce_size == 64). */
export const SVSM_NONCE_SIZE = 64;

/**
 * REPORT_DATA of an SVSM_ATTEST_SERVICES or SVSM_ATTEST_SINGLE_SERVICE report: SHA-512(nonce ‖ manifest),
 * where the manifest is the services manifest (all services) or the single service's payload (AMD 58019
 * §7.2-7.3; COCONUT `attest.rs`). Pure: length policy for the nonce is the caller's.
 */
export function svsmReportData(nonce: Uint8Array, manifest: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha512').update(nonce).update(manifest).digest());
}
