import { InvalidArgument } from '../errors.js';
import type { WrappingKey } from '../keys/types.js';

/**
 * An operator secret at rest, encrypted under the broker's KEK (issue 14 "Keys"). The file holds
 *
 *   "VSSEC" 0x01 | u16 BE length of the KEK id | KEK id (UTF-8) | the KEK's wrapped bytes
 *
 * and the KEK's AEAD binds the secret's resource path (`repository/type/tag`) as AAD, so a sealed file moved or
 * copied to another path does not open there: whoever can write the secrets directory but not use the KEK
 * can delete secrets, not swap them. The KEK id is stored so that a file sealed under another KEK is refused
 * by name (`broker.kek.mismatch`) rather than as a failed decryption.
 */
export const SEALED_MAGIC = Buffer.from('VSSEC\x01', 'latin1');

const AAD_PREFIX = 'vouchsafe kbs operator secret v1\0';

const aadOf = (path: string) => new Uint8Array(Buffer.from(`${AAD_PREFIX}${path}`, 'utf8'));

/** Whether `bytes` is a sealed secret (else it is a plaintext file from before sealing, to be sealed). */
export const isSealed = (bytes: Uint8Array): boolean =>
  bytes.length >= SEALED_MAGIC.length &&
  Buffer.from(bytes.subarray(0, SEALED_MAGIC.length)).equals(SEALED_MAGIC);

/** Seals `value` for `path` under `kek`. */
export async function sealSecret(kek: WrappingKey, path: string, value: Uint8Array): Promise<Uint8Array> {
  const id = Buffer.from(kek.id, 'utf8');
  if (id.length > 0xffff) throw new InvalidArgument('kbs.secrets.kek_id', 'the KEK id is too long');
  const wrapped = await kek.encrypt(value, aadOf(path));
  const head = Buffer.alloc(SEALED_MAGIC.length + 2);
  SEALED_MAGIC.copy(head);
  head.writeUInt16BE(id.length, SEALED_MAGIC.length);
  return new Uint8Array(Buffer.concat([head, id, wrapped]));
}

/**
 * Opens a sealed secret for `path`. Throws InvalidArgument `kbs.secrets.sealed` (not a sealed secret, or
 * truncated), `broker.kek.mismatch` (sealed under another KEK), `broker.kek.unwrap_failed` (altered, or sealed
 * for another path).
 */
export async function unsealSecret(kek: WrappingKey, path: string, sealed: Uint8Array): Promise<Uint8Array> {
  const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (!isSealed(b) || b.length < SEALED_MAGIC.length + 2) {
    throw new InvalidArgument('kbs.secrets.sealed', `the secret at ${path} is not a sealed secret`);
  }
  const n = b.readUInt16BE(SEALED_MAGIC.length);
  const start = SEALED_MAGIC.length + 2;
  if (b.length < start + n + 1)
    throw new InvalidArgument('kbs.secrets.sealed', `the secret at ${path} is truncated`);
  const id = b.subarray(start, start + n).toString('utf8');
  if (id !== kek.id) {
    throw new InvalidArgument('broker.kek.mismatch', `the secret at ${path} was sealed under another KEK`);
  }
  return kek.decrypt(b.subarray(start + n), aadOf(path));
}
