import { randomFillSync } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import type { SealingKeyRecord } from '../store/types.js';
import type { KekSource } from './kek.js';

/** Sealing keys are AES-256 keys: 32 bytes. */
export const SEALING_KEY_BYTES = 32;

const AAD_LABEL = Buffer.from('vouchsafe sealing key v1\0', 'ascii');

/**
 * The AAD binding a wrapped sealing key to its instance and version, so a wrapped key copied to another
 * row (another instance, or another version of the same one) does not decrypt:
 * label || u32be(len(instanceId)) || instanceId (UTF-8) || u32be(version).
 */
export function sealingKeyAad(instanceId: string, version: number): Uint8Array {
  const id = Buffer.from(instanceId, 'utf8');
  const out = Buffer.alloc(AAD_LABEL.length + 4 + id.length + 4);
  AAD_LABEL.copy(out, 0);
  out.writeUInt32BE(id.length, AAD_LABEL.length);
  id.copy(out, AAD_LABEL.length + 4);
  out.writeUInt32BE(version, AAD_LABEL.length + 4 + id.length);
  return out;
}

/**
 * A fresh random sealing key and its record (wrapped under the KEK). The caller owns `key` and should
 * zero it once used.
 */
export async function createSealingKey(
  kek: KekSource,
  instanceId: string,
  version: number,
  now: number,
): Promise<{ key: Uint8Array; record: SealingKeyRecord }> {
  // Filled in place: no second, un-zeroable copy of the key.
  const key = randomFillSync(new Uint8Array(SEALING_KEY_BYTES));
  const wrapped = await kek.encrypt(key, sealingKeyAad(instanceId, version));
  return { key, record: { instanceId, version, wrapped, kekId: kek.id, createdAt: now } };
}

/**
 * Decrypts a stored sealing key. Throws InvalidArgument `broker.kek.mismatch` when the record names
 * another KEK, `broker.kek.unwrap_failed` when it does not authenticate (wrong KEK, tampered row, row
 * moved to another instance/version) or is not 32 bytes. Never returns unauthenticated bytes.
 */
export async function openSealingKey(kek: KekSource, rec: SealingKeyRecord): Promise<Uint8Array> {
  if (rec.kekId !== kek.id) {
    throw new InvalidArgument(
      'broker.kek.mismatch',
      `sealing key ${rec.instanceId} v${rec.version} was wrapped by KEK ${rec.kekId}, not the configured ${kek.id}`,
    );
  }
  const key = await kek.decrypt(rec.wrapped, sealingKeyAad(rec.instanceId, rec.version));
  if (key.length !== SEALING_KEY_BYTES) {
    key.fill(0);
    throw new InvalidArgument('broker.kek.unwrap_failed', 'sealing key has the wrong length');
  }
  return key;
}
