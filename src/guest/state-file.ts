import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { BindingMismatch, InvalidArgument, MalformedEvidence, SignatureInvalid } from '../errors.js';
import { BytesBuilder } from '../formats/aproxy/bytes-builder.js';
import { STATE_COUNTER_NONE } from '../formats/aproxy/types.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import { Reader, Writer } from '../formats/reader.js';
import { ctEqual, isAllZero } from '../util/bytes.js';
import { writeFileDurably } from '../util/durable-file.js';
import { zeroize } from '../util/zeroize.js';

/**
 * The guest's sealed state file (docs/protocol.md "State file"). A fixed header, readable before
 * decryption (its counter is what the guest states to the broker, its key version which sealing key to ask
 * for) and authenticated as AES-GCM AAD, then the AES-256-GCM ciphertext of the body and the tag.
 * Little-endian:
 *
 *   0x00  magic "VSST"
 *   0x04  u16 format version: 2 (written), 1 (read: files written before key versions were recorded)
 *   0x06  u16 flags, must be zero
 *   0x08  u64 counter (0..2^64-2; 2^64-1 is "no state" in the protocol)
 *   0x10  32-byte instance binding: SHA-256 of the instance identity (instanceBindingOf), or zero = unbound
 *   0x30  12-byte GCM nonce (random per write)
 *   0x3C  u32 body length (0..16 MiB)
 *   format 2 only:
 *   0x40  u32 key version: the broker's sealing-key version the file is sealed under (0 = not known,
 *         e.g. written by a 0.1.0 guest or a payload-format-1 broker)
 *   0x44  u32 reserved, must be zero
 *   then  ciphertext (at 0x40 in format 1, 0x48 in format 2), then the 16-byte tag
 *
 * The AAD is the whole header of the file's format (64 or 72 bytes), so the counter, the binding and the
 * key version are all authenticated. Key = HKDF-SHA256(ikm = released secret, salt = "VSST",
 * info = "vouchsafe state-file v1 aes-256-gcm", 32 bytes) for both formats. Errors: MalformedEvidence
 * `state.*` (size, magic, version, reserved bits, counter), SignatureInvalid `state.auth` (wrong key or any
 * tampering), BindingMismatch `state.instance_binding`.
 */
export const STATE_MAGIC = 'VSST';
/** The format written; format 1 (no key version) is still read. */
export const STATE_FORMAT_VERSION = 2;
/** Header size of the format written (2). */
export const STATE_HEADER_SIZE = 0x48;
/** Header size of format 1. */
export const STATE_HEADER_SIZE_V1 = 0x40;
export const STATE_TAG_SIZE = 16;
export const STATE_MAX_BODY = 16 * 1024 * 1024;
const KDF_SALT = Buffer.from('VSST', 'ascii');
const KDF_INFO = Buffer.from('vouchsafe state-file v1 aes-256-gcm', 'ascii');

export interface StateHeader {
  readonly formatVersion: number;
  /** 64 (format 1) or 72 (format 2) bytes: where the ciphertext starts, and the AAD. */
  readonly headerSize: number;
  readonly counter: bigint;
  readonly instanceBinding: Uint8Array;
  readonly nonce: Uint8Array;
  readonly bodyLength: number;
  /** The sealing-key version the file is sealed under; 0 when not known (format 1 files, 0.1.0 guests). */
  readonly keyVersion: number;
}

/** The header of a state file, bounds-checked, without decrypting (nothing in it is authenticated yet). */
export function parseStateHeader(file: Uint8Array): StateHeader {
  if (file.length < STATE_HEADER_SIZE_V1 + STATE_TAG_SIZE) {
    throw new MalformedEvidence(
      'state.size',
      `state file is ${file.length} bytes, shorter than header and tag`,
    );
  }
  const r = new Reader(file, 'state');
  if (Buffer.from(r.bytes(4)).toString('latin1') !== STATE_MAGIC) {
    throw new MalformedEvidence('state.magic', 'not a Vouchsafe state file');
  }
  const formatVersion = r.u16le();
  if (formatVersion !== 1 && formatVersion !== 2) {
    throw new MalformedEvidence('state.version', `state file format ${formatVersion} is not supported`);
  }
  const headerSize = formatVersion === 1 ? STATE_HEADER_SIZE_V1 : STATE_HEADER_SIZE;
  if (file.length < headerSize + STATE_TAG_SIZE) {
    throw new MalformedEvidence(
      'state.size',
      `state file is ${file.length} bytes, shorter than header and tag`,
    );
  }
  r.mbz(2, 'flags');
  const counter = r.u64le();
  if (counter === STATE_COUNTER_NONE)
    throw new MalformedEvidence('state.counter', 'counter 2^64-1 is reserved');
  const instanceBinding = r.bytes(32);
  const nonce = r.bytes(12);
  const bodyLength = r.u32le();
  let keyVersion = 0;
  if (formatVersion === 2) {
    keyVersion = r.u32le();
    r.mbz(4, 'reserved');
  }
  if (bodyLength > STATE_MAX_BODY || file.length !== headerSize + bodyLength + STATE_TAG_SIZE) {
    throw new MalformedEvidence(
      'state.size',
      `body length ${bodyLength} does not match a ${file.length}-byte file`,
    );
  }
  return { formatVersion, headerSize, counter, instanceBinding, nonce, bodyLength, keyVersion };
}

/** HKDF-SHA256 of the released secret into the state key. Zeroize the result when done. */
export function deriveStateKey(secret: Uint8Array): Buffer {
  if (secret.length < 16)
    throw new InvalidArgument('state.secret', 'the released secret is shorter than 16 bytes');
  return Buffer.from(hkdfSync('sha256', secret, KDF_SALT, KDF_INFO, 32));
}

/**
 * The instance binding for a 0.2.0 identity: SHA-256("VOUCHSAFE-INSTANCE/1" 0x00 lp(project) lp(zone)
 * lp(instanceId) lp(instanceName)), lp = u32le length || UTF-8. Null identity: 32 zero bytes (unbound).
 */
export function instanceBindingOf(identity: PlatformIdentity | null): Uint8Array {
  if (identity === null) return new Uint8Array(32);
  const enc = new BytesBuilder()
    .raw(Buffer.from('VOUCHSAFE-INSTANCE/1', 'ascii'))
    .u8(0)
    .lpString(identity.project)
    .lpString(identity.zone)
    .lpString(identity.instanceId)
    .lpString(identity.instanceName)
    .build();
  return new Uint8Array(createHash('sha256').update(enc).digest());
}

export interface SealInput {
  /** The state key from deriveStateKey. */
  readonly key: Uint8Array;
  readonly counter: bigint;
  readonly instanceBinding: Uint8Array;
  readonly body: Uint8Array;
  /** The sealing-key version `key` was derived from (default 0: not known). */
  readonly keyVersion?: number;
}

/** Seals a body as a format-2 state file. Throws InvalidArgument `state.*` for out-of-range input. */
export function sealState(s: SealInput): Uint8Array {
  if (s.key.length !== 32) throw new InvalidArgument('state.key', 'state key is 32 bytes');
  if (s.counter < 0n || s.counter >= STATE_COUNTER_NONE)
    throw new InvalidArgument('state.counter', 'counter range');
  if (s.instanceBinding.length !== 32)
    throw new InvalidArgument('state.binding', 'instance binding is 32 bytes');
  if (s.body.length > STATE_MAX_BODY) throw new InvalidArgument('state.size', 'state body too large');
  const keyVersion = s.keyVersion ?? 0;
  if (!Number.isInteger(keyVersion) || keyVersion < 0 || keyVersion > 0xffff_ffff) {
    throw new InvalidArgument('state.key_version', 'key version is a u32');
  }
  const nonce = randomBytes(12);
  const header = new Writer(STATE_HEADER_SIZE)
    .bytes(Buffer.from(STATE_MAGIC, 'latin1'))
    .u16le(STATE_FORMAT_VERSION)
    .u16le(0)
    .u64le(s.counter)
    .bytes(s.instanceBinding, 32)
    .bytes(nonce, 12)
    .u32le(s.body.length)
    .u32le(keyVersion)
    .u32le(0).buf;
  const c = createCipheriv('aes-256-gcm', s.key, nonce, { authTagLength: STATE_TAG_SIZE });
  c.setAAD(header);
  const ct = Buffer.concat([c.update(s.body), c.final()]);
  return new Uint8Array(Buffer.concat([header, ct, c.getAuthTag()]));
}

export interface UnsealedState {
  readonly header: StateHeader;
  readonly body: Uint8Array;
}

/**
 * Opens a state file. `expectedBinding` (when the instance is known) must equal the header's unless the file
 * is unbound (all-zero binding, written before an identity was known). The header is authenticated as AAD, so
 * a changed counter fails as `state.auth`.
 */
export function unsealState(file: Uint8Array, key: Uint8Array, expectedBinding?: Uint8Array): UnsealedState {
  const header = parseStateHeader(file);
  if (
    expectedBinding &&
    !isAllZero(header.instanceBinding) &&
    !ctEqual(header.instanceBinding, expectedBinding)
  ) {
    throw new BindingMismatch('state.instance_binding', 'the state file belongs to another instance');
  }
  const d = createDecipheriv('aes-256-gcm', key, header.nonce, { authTagLength: STATE_TAG_SIZE });
  d.setAAD(file.subarray(0, header.headerSize));
  d.setAuthTag(file.subarray(file.length - STATE_TAG_SIZE));
  const head = d.update(file.subarray(header.headerSize, file.length - STATE_TAG_SIZE));
  try {
    const tail = d.final();
    return { header, body: new Uint8Array(Buffer.concat([head, tail])) };
  } catch (cause) {
    throw new SignatureInvalid('state.auth', 'state file does not authenticate (wrong key or tampered)', {
      cause,
    });
  } finally {
    zeroize(head);
  }
}

/** Reads a state file, or undefined if there is none. Refuses oversized files before reading them. */
export async function readStateFile(path: string): Promise<Uint8Array | undefined> {
  try {
    const st = await stat(path);
    if (st.size > STATE_HEADER_SIZE + STATE_MAX_BODY + STATE_TAG_SIZE) {
      throw new MalformedEvidence('state.size', `state file is ${st.size} bytes`);
    }
    const fh = await open(path, 'r');
    try {
      return new Uint8Array(await fh.readFile());
    } finally {
      await fh.close();
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Writes the sealed state file durably (src/util/durable-file.ts): the old or the new version, never half. */
export const writeStateFileAtomic = writeFileDurably;
