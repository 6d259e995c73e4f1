import { MalformedEvidence } from '../../errors.js';
import { Reader } from '../reader.js';

/**
 * The extended-report certificate table (GHCB spec 56421 rev 2.03, SNP_GUEST_REQUEST / "SNP Extended Guest
 * Request"): 24-byte entries {GUID (16 bytes, RFC 4122 byte order), offset u32 LE, length u32 LE} closed by
 * an all-zero entry; offsets count from the start of the table.
 */
export const CertGuid = {
  VCEK: '63da758d-e664-4564-adc5-f4b93be8accd',
  VLEK: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  /** ASK, or ASVK when the leaf is a VLEK. */
  ASK: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ARK: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
} as const;

export interface CertTableEntry {
  readonly guid: string;
  readonly data: Uint8Array;
}

const ENTRY_SIZE = 24;
/** Far more than any host returns (VCEK, ASK, ARK, VLEK and a vendor extra); bounds the parse. */
const MAX_ENTRIES = 64;
/** The kernel caps the certificate buffer at a few pages; 1 MiB is a generous bound. */
export const MAX_CERT_TABLE_SIZE = 1 << 20;

function guidToString(b: Uint8Array): string {
  const h = Buffer.from(b).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function guidToBytes(guid: string): Uint8Array {
  const hex = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new MalformedEvidence('snp.cert_table.guid', `bad GUID ${guid}`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Parses a certificate table. Entries must lie inside the buffer; trailing padding after the data is allowed. */
export function parseCertTable(bytes: Uint8Array): CertTableEntry[] {
  if (bytes.length > MAX_CERT_TABLE_SIZE) {
    throw new MalformedEvidence('snp.cert_table.size', `certificate table over ${MAX_CERT_TABLE_SIZE} bytes`);
  }
  const r = new Reader(bytes, 'snp.cert_table');
  const entries: CertTableEntry[] = [];
  for (let i = 0; ; i++) {
    if (i > MAX_ENTRIES) throw new MalformedEvidence('snp.cert_table.entries', 'too many entries');
    const guidBytes = r.bytes(16);
    const offset = r.u32le();
    const length = r.u32le();
    if (guidBytes.every((b) => b === 0) && offset === 0 && length === 0) break;
    const tableEnd = (i + 2) * ENTRY_SIZE; // the entries so far plus the terminator
    if (offset < tableEnd || offset + length > bytes.length) {
      throw new MalformedEvidence(
        'snp.cert_table.bounds',
        `entry ${i} [0x${offset.toString(16)}, +${length}) lies outside the table's data`,
      );
    }
    entries.push({ guid: guidToString(guidBytes), data: bytes.subarray(offset, offset + length) });
  }
  return entries;
}

/** Builds a certificate table: the entries, the zero terminator, then each entry's data in order. */
export function buildCertTable(entries: readonly CertTableEntry[]): Uint8Array {
  const header = (entries.length + 1) * ENTRY_SIZE;
  const total = entries.reduce((n, e) => n + e.data.length, header);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = header;
  entries.forEach((e, i) => {
    out.set(guidToBytes(e.guid), i * ENTRY_SIZE);
    view.setUint32(i * ENTRY_SIZE + 16, offset, true);
    view.setUint32(i * ENTRY_SIZE + 20, e.data.length, true);
    out.set(e.data, offset);
    offset += e.data.length;
  });
  return out;
}

export function findCert(entries: readonly CertTableEntry[], guid: string): Uint8Array | undefined {
  return entries.find((e) => e.guid === guid)?.data;
}
