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
 *   0x04  u16 format version = 1
 *   0x06  u16 flags, must be zero
 *   0x08  u32 secret length (1..524288), secret bytes   -- the sealing secret
 *         u16 boot id length (1..128), boot id (ASCII [A-Za-z0-9._:-])
 *         u16 commit token length (16..64), commit token
 *   end   (no trailing bytes)
 *
 * Throws MalformedEvidence `aproxy.secret_payload.*`.
 */
export const SECRET_PAYLOAD_MAGIC = 'VSSP';
export const SECRET_PAYLOAD_VERSION = 1;

export interface SecretPayload {
  readonly secret: Uint8Array;
  readonly bootId: string;
  readonly commitToken: Uint8Array;
}

export function encodeSecretPayload(p: SecretPayload): Uint8Array {
  if (p.secret.length < LIMITS.secret[0] || p.secret.length > LIMITS.secret[1] - 512) {
    throw new InvalidArgument('aproxy.encode.length', 'secret payload: secret size');
  }
  checkBootId(p.bootId);
  if (p.commitToken.length < LIMITS.commitToken[0] || p.commitToken.length > LIMITS.commitToken[1]) {
    throw new InvalidArgument('aproxy.encode.length', 'secret payload: commit token size');
  }
  const id = Buffer.from(p.bootId, 'ascii');
  return new BytesBuilder()
    .raw(Buffer.from(SECRET_PAYLOAD_MAGIC, 'ascii'))
    .u16le(SECRET_PAYLOAD_VERSION)
    .u16le(0)
    .u32le(p.secret.length)
    .raw(p.secret)
    .u16le(id.length)
    .raw(id)
    .u16le(p.commitToken.length)
    .raw(p.commitToken)
    .build();
}

/** Parses a decrypted payload. The returned byte fields are views into `b` (zeroize `b` when done). */
export function parseSecretPayload(b: Uint8Array): SecretPayload {
  const what = 'aproxy.secret_payload';
  const r = new Reader(b, what);
  if (Buffer.from(r.bytes(4)).toString('latin1') !== SECRET_PAYLOAD_MAGIC) {
    throw new MalformedEvidence(`${what}.magic`, 'secret payload: bad magic');
  }
  const version = r.u16le();
  if (version !== SECRET_PAYLOAD_VERSION) {
    throw new MalformedEvidence(`${what}.version`, `secret payload: unsupported version ${version}`);
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
  r.end();
  return { secret, bootId, commitToken };
}
