import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { Reader } from '../reader.js';
import { BytesBuilder } from './bytes-builder.js';
import { checkBootId } from './commit.js';
import { LIMITS } from './fields.js';

/**
 * The 0.2.0 secret payload: what the JWE ciphertext holds for a 0.2.0 guest (a 0.1.0 guest gets the bare
 * secret). Little-endian, bounds-checked (docs/protocol.md "Secret payload"):
 *
 *   0x00  magic "VSSP"
 *   0x04  u16 format version: 1 or 2
 *   0x06  u16 flags, must be zero
 *   0x08  u32 secret length (1..524288), secret bytes   -- the current sealing secret
 *         u16 boot id length (1..128), boot id (ASCII [A-Za-z0-9._:-])
 *         u16 commit token length (16..64), commit token
 *   version 2 only:
 *         u32 key version of the secret (>= 1)
 *         u32 state key version (0: no state key follows; else >= 1 and != key version)
 *         u32 state key length (0 iff state key version is 0, else 1..524288), state key bytes
 *   end   (no trailing bytes)
 *
 * Version 2 exists for key rotation: the guest seals its next state version under the secret (the newest
 * key) and opens its current state with the state key (the older version its state file header names).
 * Version 1 is what guests that do not state a key version get, so they keep working unchanged.
 *
 * Throws MalformedEvidence `aproxy.secret_payload.*`.
 */
export const SECRET_PAYLOAD_MAGIC = 'VSSP';
/** The newest format version; {@link encodeSecretPayload} writes 1 when no key version is given. */
export const SECRET_PAYLOAD_VERSION = 2;

export interface SecretPayload {
  /** The current sealing secret: seal the next state version with it. */
  readonly secret: Uint8Array;
  readonly bootId: string;
  readonly commitToken: Uint8Array;
  /** Format 2: the key version of `secret`. Undefined in format 1. */
  readonly keyVersion?: number;
  /** Format 2, after a rotation: the older key the guest's state is sealed under, and its version. */
  readonly stateKey?: { readonly key: Uint8Array; readonly keyVersion: number };
}

const SECRET_MAX = LIMITS.secret[1] - 512;

/** Encodes format 2 when `keyVersion` is given, else format 1 (then `stateKey` must be absent). */
export function encodeSecretPayload(p: SecretPayload): Uint8Array {
  if (p.secret.length < LIMITS.secret[0] || p.secret.length > SECRET_MAX) {
    throw new InvalidArgument('aproxy.encode.length', 'secret payload: secret size');
  }
  checkBootId(p.bootId);
  if (p.commitToken.length < LIMITS.commitToken[0] || p.commitToken.length > LIMITS.commitToken[1]) {
    throw new InvalidArgument('aproxy.encode.length', 'secret payload: commit token size');
  }
  if (p.keyVersion === undefined && p.stateKey !== undefined) {
    throw new InvalidArgument('aproxy.encode.key_version', 'secret payload: a state key needs format 2');
  }
  const format = p.keyVersion === undefined ? 1 : 2;
  const id = Buffer.from(p.bootId, 'ascii');
  const b = new BytesBuilder()
    .raw(Buffer.from(SECRET_PAYLOAD_MAGIC, 'ascii'))
    .u16le(format)
    .u16le(0)
    .u32le(p.secret.length)
    .raw(p.secret)
    .u16le(id.length)
    .raw(id)
    .u16le(p.commitToken.length)
    .raw(p.commitToken);
  if (p.keyVersion === undefined) return b.build();
  checkVersion(p.keyVersion);
  b.u32le(p.keyVersion);
  if (!p.stateKey) return b.u32le(0).u32le(0).build();
  checkVersion(p.stateKey.keyVersion);
  if (p.stateKey.keyVersion === p.keyVersion) {
    throw new InvalidArgument(
      'aproxy.encode.key_version',
      'secret payload: the state key is the same version',
    );
  }
  if (p.stateKey.key.length < 1 || p.stateKey.key.length > SECRET_MAX) {
    throw new InvalidArgument('aproxy.encode.length', 'secret payload: state key size');
  }
  return b.u32le(p.stateKey.keyVersion).u32le(p.stateKey.key.length).raw(p.stateKey.key).build();
}

function checkVersion(v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 0xffff_ffff) {
    throw new InvalidArgument('aproxy.encode.key_version', 'secret payload: key versions are 1..2^32-1');
  }
}

/** Parses a decrypted payload (format 1 or 2). Byte fields are views into `b` (zeroize `b` when done). */
export function parseSecretPayload(b: Uint8Array): SecretPayload {
  const what = 'aproxy.secret_payload';
  const r = new Reader(b, what);
  if (Buffer.from(r.bytes(4)).toString('latin1') !== SECRET_PAYLOAD_MAGIC) {
    throw new MalformedEvidence(`${what}.magic`, 'secret payload: bad magic');
  }
  const format = r.u16le();
  if (format !== 1 && format !== 2) {
    throw new MalformedEvidence(`${what}.version`, `secret payload: unsupported version ${format}`);
  }
  r.mbz(2, 'flags');
  const secretLen = r.u32le();
  if (secretLen < 1 || secretLen > LIMITS.secret[1]) {
    throw new MalformedEvidence(`${what}.length`, 'secret payload: secret size');
  }
  const secret = r.bytes(secretLen);
  const idLen = r.u16le();
  if (idLen < LIMITS.bootId[0] || idLen > LIMITS.bootId[1]) {
    throw new MalformedEvidence(`${what}.length`, 'secret payload: boot id size');
  }
  const bootId = Buffer.from(r.bytes(idLen)).toString('latin1');
  if (!/^[A-Za-z0-9._:-]+$/.test(bootId)) {
    throw new MalformedEvidence(`${what}.boot_id`, 'secret payload: boot id characters');
  }
  const tokLen = r.u16le();
  if (tokLen < LIMITS.commitToken[0] || tokLen > LIMITS.commitToken[1]) {
    throw new MalformedEvidence(`${what}.length`, 'secret payload: commit token size');
  }
  const commitToken = r.bytes(tokLen);
  if (format === 1) {
    r.end();
    return { secret, bootId, commitToken };
  }
  const keyVersion = r.u32le();
  const stateKeyVersion = r.u32le();
  const stateKeyLen = r.u32le();
  if (keyVersion === 0 || stateKeyVersion === keyVersion) {
    throw new MalformedEvidence(`${what}.key_version`, 'secret payload: key versions');
  }
  if ((stateKeyVersion === 0) !== (stateKeyLen === 0) || stateKeyLen > LIMITS.secret[1]) {
    throw new MalformedEvidence(`${what}.length`, 'secret payload: state key size');
  }
  const stateKey = stateKeyLen === 0 ? undefined : r.bytes(stateKeyLen);
  r.end();
  return {
    secret,
    bootId,
    commitToken,
    keyVersion,
    ...(stateKey ? { stateKey: { key: stateKey, keyVersion: stateKeyVersion } } : {}),
  };
}
