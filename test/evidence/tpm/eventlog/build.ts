/**
 * Test-only builders of event logs and event data: a crypto-agile log whose events carry the digests we
 * choose (by default the hash of their data), UEFI_VARIABLE_DATA, UEFI_IMAGE_LOAD_EVENT, GPT and SP 800-155
 * data. Used for seeds (fuzz), negatives (policy rules) and hostile input.
 */
import { createHash } from 'node:crypto';
import { HASH_ALGS, TPM_ALG } from '../../../../src/formats/tpm/constants.js';
import { EV } from '../../../../src/formats/tpm/eventlog/event-types.js';

const u16 = (n: number) => Buffer.from([n & 0xff, (n >> 8) & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const u64 = (n: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
const utf16 = (s: string) => Buffer.from(`${s}\0`, 'utf16le');

/** EFI_GUID bytes from text (first three fields little-endian). */
export function guidBytes(g: string): Buffer {
  const h = g.replace(/-/g, '');
  const le = (s: string) => Buffer.from(s, 'hex').reverse();
  return Buffer.concat([
    le(h.slice(0, 8)),
    le(h.slice(8, 12)),
    le(h.slice(12, 16)),
    Buffer.from(h.slice(16), 'hex'),
  ]);
}

export interface BuildEvent {
  readonly pcr: number;
  readonly type: number;
  readonly data: Uint8Array;
  /** Digest source when not the data itself (an image's Authenticode hash, a file's contents). */
  readonly hashed?: Uint8Array;
  /** Exact digests per algorithm, overriding the hash. */
  readonly digests?: Partial<Record<number, Uint8Array>>;
}

export const DEFAULT_ALGS = [TPM_ALG.SHA1, TPM_ALG.SHA256] as const;

/** Digest size of an algorithm, including SM3_256, which node cannot compute (events must give its digest). */
function digestSize(a: number): number {
  const size = HASH_ALGS[a]?.size ?? (a === TPM_ALG.SM3_256 ? 32 : undefined);
  if (size === undefined) throw new Error(`builder: no digest size for 0x${a.toString(16)}`);
  return size;
}

function specId(algs: readonly number[]): Buffer {
  return Buffer.concat([
    Buffer.from('Spec ID Event03\0', 'latin1'),
    u32(0),
    Buffer.from([0, 2, 0, 2]),
    u32(algs.length),
    ...algs.map((a) => Buffer.concat([u16(a), u16(digestSize(a))])),
    Buffer.from([0]),
  ]);
}

/** A crypto-agile log: the Spec ID header, then each event with one digest per algorithm. */
export function buildEventLog(
  events: readonly BuildEvent[],
  algs: readonly number[] = DEFAULT_ALGS,
): Uint8Array {
  const header = specId(algs);
  const parts: Buffer[] = [u32(0), u32(EV.NO_ACTION), Buffer.alloc(20), u32(header.length), header];
  for (const e of events) {
    parts.push(u32(e.pcr), u32(e.type), u32(algs.length));
    for (const a of algs) {
      const given = e.digests?.[a];
      const h = HASH_ALGS[a];
      if (given === undefined && h === undefined)
        throw new Error(`builder: give the 0x${a.toString(16)} digest`);
      const d =
        given ??
        createHash(h!.node)
          .update(e.hashed ?? e.data)
          .digest();
      parts.push(u16(a), Buffer.from(d));
    }
    parts.push(u32(e.data.length), Buffer.from(e.data));
  }
  return new Uint8Array(Buffer.concat(parts));
}

export function uefiVariable(guid: string, name: string, data: Uint8Array): Uint8Array {
  return new Uint8Array(
    Buffer.concat([guidBytes(guid), u64(name.length), u64(data.length), Buffer.from(name, 'utf16le'), data]),
  );
}

/** A device path with one file-path node and the end node. */
export function filePathDevicePath(path: string): Buffer {
  const f = utf16(path);
  return Buffer.concat([Buffer.from([4, 4]), u16(f.length + 4), f, Buffer.from([0x7f, 0xff, 4, 0])]);
}

export function imageLoad(path: string): Uint8Array {
  const dp = filePathDevicePath(path);
  return new Uint8Array(Buffer.concat([u64(0x1000), u64(0x2000), u64(0), u64(dp.length), dp]));
}

export function gptData(partitions: number): Uint8Array {
  const header = Buffer.alloc(92);
  header.write('EFI PART', 0, 'latin1');
  header.writeUInt32LE(0x10000, 8);
  header.writeUInt32LE(92, 12);
  header.writeUInt32LE(128, 0x54);
  const entries = Array.from({ length: partitions }, (_, i) => {
    const e = Buffer.alloc(128);
    e.fill(i + 1, 0, 32);
    e.writeBigUInt64LE(BigInt(2048 * (i + 1)), 32);
    e.write('part', 56, 'utf16le');
    return e;
  });
  return new Uint8Array(Buffer.concat([header, u64(partitions), ...entries]));
}

export function sp800155Event3(): Uint8Array {
  const s = (t: string) => Buffer.concat([Buffer.from([t.length + 1]), Buffer.from(`${t}\0`)]);
  return new Uint8Array(
    Buffer.concat([
      Buffer.from('SP800-155 Event3', 'latin1'),
      u32(11129),
      Buffer.alloc(16, 1),
      s('Vendor'),
      s('Model'),
      s('1'),
      s('FwVendor'),
      u32(11129),
      s('2.7'),
      u32(1),
      u32(5),
      Buffer.from('https'),
      u32(0),
      u32(0),
    ]),
  );
}

/** EFI_SIGNATURE_LIST of SHA-256 digests. */
export function sha256List(digests: readonly Uint8Array[]): Uint8Array {
  const owner = Buffer.alloc(16, 0x11);
  const body = Buffer.concat(digests.map((d) => Buffer.concat([owner, d])));
  return new Uint8Array(
    Buffer.concat([
      guidBytes('c1c41626-504c-4092-aca9-41f936934328'),
      u32(28 + body.length),
      u32(0),
      u32(48),
      body,
    ]),
  );
}

/** EFI_LOAD_OPTION with a description and a file path. */
export function loadOption(description: string, path: string): Uint8Array {
  const dp = filePathDevicePath(path);
  return new Uint8Array(Buffer.concat([u32(1), u16(dp.length), utf16(description), dp]));
}

/**
 * A TDX CCEL log area: a crypto-agile log with SHA-384 only (each event's `pcr` is its MR index: 1..4 are
 * RTMR 0..3), followed by `padding` bytes of 0xff as the unused rest of the ACPI log area.
 */
export function buildCcelLog(events: readonly BuildEvent[], padding = 0): Uint8Array {
  const log = buildEventLog(events, [TPM_ALG.SHA384]);
  return new Uint8Array(Buffer.concat([log, Buffer.alloc(padding, 0xff)]));
}
