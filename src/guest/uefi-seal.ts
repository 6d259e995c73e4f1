import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import {
  AttestationError,
  ErrorCode,
  InvalidArgument,
  MalformedEvidence,
  SignatureInvalid,
} from '../errors.js';
import { MAX_NAME_BYTES } from '../formats/pvchannel/uefi.js';
import { Reader, Writer } from '../formats/reader.js';

/**
 * The guest's sealing of UEFI variables before they reach the host (docs/pvchannel.md §7.3 "Sealing").
 *
 * Unit of sealing: each variable's value is one AES-256-GCM record under the store's random data key, and a
 * sealed **index** (under the key derived from the sealing key; it holds the data key) lists every
 * variable (GUID, name, attributes, the store generation it was written at, SHA-256 of its record) in the
 * order the host's GET_NEXT must walk. The index's SHA-256 (the store root) joins the state file's digest in
 * what the broker commits (boot-state.ts `commitmentDigest`), so:
 *   - read: the host holds only ciphertext (names and attributes are visible to it, values are not);
 *   - forge: a record's AAD binds the instance, the GUID, the name, the attributes, its kind and generation,
 *     so a modified record, or one moved to another name or instance, does not open (`uefi.auth`);
 *   - roll back one variable: the index names the generation and digest of each record (`uefi.rollback`);
 *   - roll back, reorder or trim the store: the index is the root the broker committed; GET_NEXT is checked
 *     against it (`uefi.order`).
 *
 * Record layout (little-endian): 0x00 magic "VSUV", 0x04 u16 format 1, 0x06 u16 kind (1 variable, 2 index),
 * 0x08 u64 generation, 0x10 12-byte nonce (random per write), 0x1C u32 body length, then the ciphertext and
 * the 16-byte tag. AAD = the 0x20-byte header || instance binding (32) || GUID (16) || u16 name length ||
 * name || u32 attributes. Index key = HKDF-SHA256(ikm = released sealing key, salt "VSUV",
 * info "vouchsafe uefi-variables v1 aes-256-gcm"), a key apart from the state file's; variable records are
 * under the index's random data key.
 */

export const RECORD_MAGIC = 0x56555356; // "VSUV" little-endian
export const RECORD_HEADER = 0x20;
export const RECORD_TAG = 16;
/** What sealing adds to a value: header and tag. */
export const SEAL_OVERHEAD = RECORD_HEADER + RECORD_TAG;
export const RecordKind = { Variable: 1, Index: 2 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

const KDF_SALT = Buffer.from('VSUV', 'ascii');
const KDF_INFO = Buffer.from('vouchsafe uefi-variables v1 aes-256-gcm', 'ascii');

/** The variable-store key from the released sealing key. Zeroize it when done. */
export function deriveVariableKey(secret: Uint8Array): Buffer {
  if (secret.length < 16)
    throw new InvalidArgument('uefi.secret', 'the released secret is shorter than 16 bytes');
  return Buffer.from(hkdfSync('sha256', secret, KDF_SALT, KDF_INFO, 32));
}

/** Where a record belongs: what its AAD binds besides its header. */
export interface RecordPlace {
  readonly instanceBinding: Uint8Array;
  readonly guid: Uint8Array;
  readonly name: Uint8Array;
  readonly attributes: number;
}

export interface RecordHeader {
  readonly kind: RecordKind;
  readonly generation: bigint;
  readonly bodyLength: number;
}

/** A rollback of the store or of one variable: the host served an older version than the guest committed. */
export class VariableRollback extends AttestationError {
  constructor(reason: string, message: string) {
    super(ErrorCode.Refused, reason, message);
  }
}

function aad(header: Uint8Array, p: RecordPlace): Uint8Array {
  if (p.instanceBinding.length !== 32 || p.guid.length !== 16 || p.name.length > MAX_NAME_BYTES) {
    throw new InvalidArgument('uefi.place', 'binding 32 bytes, GUID 16 bytes, bounded name');
  }
  return new Writer(RECORD_HEADER + 32 + 16 + 2 + p.name.length + 4)
    .bytes(header)
    .bytes(p.instanceBinding)
    .bytes(p.guid)
    .u16le(p.name.length)
    .bytes(p.name)
    .u32le(p.attributes).buf;
}

/** Seals one value (or index body) for its place. */
export function sealRecord(
  key: Uint8Array,
  kind: RecordKind,
  generation: bigint,
  place: RecordPlace,
  body: Uint8Array,
): Uint8Array {
  if (key.length !== 32) throw new InvalidArgument('uefi.key', 'variable key is 32 bytes');
  const nonce = randomBytes(12);
  const header = new Writer(RECORD_HEADER)
    .u32le(RECORD_MAGIC)
    .u16le(1)
    .u16le(kind)
    .u64le(generation)
    .bytes(nonce)
    .u32le(body.length).buf;
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad(header, place));
  const ct = Buffer.concat([c.update(body), c.final()]);
  const out = new Uint8Array(RECORD_HEADER + ct.length + RECORD_TAG);
  out.set(header, 0);
  out.set(ct, RECORD_HEADER);
  out.set(c.getAuthTag(), RECORD_HEADER + ct.length);
  return out;
}

/** The unauthenticated header of a record (bounds-checked). Throws MalformedEvidence `uefi.record.*`. */
export function parseRecordHeader(b: Uint8Array): RecordHeader {
  const what = 'uefi.record';
  const r = new Reader(b, what);
  if (b.length < SEAL_OVERHEAD)
    throw new MalformedEvidence(`${what}.size`, `${what}: shorter than header and tag`);
  if (r.u32le() !== RECORD_MAGIC)
    throw new MalformedEvidence(`${what}.magic`, `${what}: not a sealed variable`);
  if (r.u16le() !== 1) throw new MalformedEvidence(`${what}.version`, `${what}: unknown format`);
  const kind = r.u16le();
  if (kind !== RecordKind.Variable && kind !== RecordKind.Index)
    throw new MalformedEvidence(`${what}.kind`, `${what}: unknown kind ${kind}`);
  const generation = r.u64le();
  r.bytes(12);
  const bodyLength = r.u32le();
  if (b.length !== SEAL_OVERHEAD + bodyLength)
    throw new MalformedEvidence(`${what}.size`, `${what}: body length does not match the record`);
  return { kind, generation, bodyLength };
}

/**
 * Opens a record for its place: the kind must be the one expected, and the tag must verify under the key
 * with the place as AAD. Throws MalformedEvidence `uefi.record.*`, SignatureInvalid `uefi.auth` (a wrong key,
 * a modified record, or a record moved from another name, instance or kind).
 */
export function openRecord(
  key: Uint8Array,
  kind: RecordKind,
  place: RecordPlace,
  b: Uint8Array,
): { generation: bigint; body: Uint8Array } {
  const h = parseRecordHeader(b);
  if (h.kind !== kind) throw new SignatureInvalid('uefi.auth', 'the record is of another kind');
  const d = createDecipheriv('aes-256-gcm', key, b.subarray(0x10, 0x1c));
  d.setAAD(aad(b.subarray(0, RECORD_HEADER), place));
  d.setAuthTag(b.subarray(b.length - RECORD_TAG));
  const ct = b.subarray(RECORD_HEADER, b.length - RECORD_TAG);
  const out = Buffer.from(d.update(ct));
  try {
    d.final();
  } catch {
    out.fill(0);
    throw new SignatureInvalid('uefi.auth', 'the sealed variable does not open under this instance and name');
  }
  return { generation: h.generation, body: new Uint8Array(out) };
}

export function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

/** One variable as the index lists it. */
export interface IndexEntry {
  readonly guid: Uint8Array;
  readonly name: Uint8Array;
  readonly attributes: number;
  /** The store generation its record was written at. */
  readonly generation: bigint;
  /** SHA-256 of its sealed record as stored by the host. */
  readonly digest: Uint8Array;
}

/** An authenticated index: the store's data key and its entries. */
export interface IndexBody {
  /** The random key the variable records are sealed under (the index itself is under the sealing-key HKDF). */
  readonly dataKey: Uint8Array;
  readonly entries: IndexEntry[];
}

/**
 * Index body: u32 count, u32 reserved, data key[32], then per entry guid[16], u16 nameBytes, u16 reserved,
 * u32 attributes, u64 generation, digest[32], name. Entries are in host storage order. The data key makes a
 * sealing-key rotation one index rewrite: the records stay as they are (docs/pvchannel.md §7.3).
 */
export function encodeIndexBody(index: IndexBody): Uint8Array {
  const { entries } = index;
  const size = entries.reduce((n, e) => n + 64 + e.name.length, 40);
  const w = new Writer(size).u32le(entries.length).u32le(0).bytes(index.dataKey, 32);
  for (const e of entries) {
    w.bytes(e.guid, 16).u16le(e.name.length).u16le(0).u32le(e.attributes).u64le(e.generation);
    w.bytes(e.digest, 32).bytes(e.name);
  }
  return w.buf;
}

/** Decodes an (authenticated) index body. Throws MalformedEvidence `uefi.index.*`. */
export function decodeIndexBody(b: Uint8Array): IndexBody {
  const what = 'uefi.index';
  const r = new Reader(b, what);
  const count = r.u32le();
  r.mbz(4, '0x4');
  const dataKey = Uint8Array.from(r.bytes(32));
  if (count > 65536) throw new MalformedEvidence(`${what}.count`, `${what}: too many entries`);
  const out: IndexEntry[] = [];
  for (let i = 0; i < count; i++) {
    const guid = Uint8Array.from(r.bytes(16));
    const n = r.u16le();
    r.mbz(2, 'entry reserved');
    const attributes = r.u32le();
    const generation = r.u64le();
    const digest = Uint8Array.from(r.bytes(32));
    if (n === 0 || n % 2 !== 0 || n > MAX_NAME_BYTES)
      throw new MalformedEvidence(`${what}.name`, `${what}: entry ${i} name length`);
    out.push({ guid, name: Uint8Array.from(r.bytes(n)), attributes, generation, digest });
  }
  r.end();
  return { dataKey, entries: out };
}
