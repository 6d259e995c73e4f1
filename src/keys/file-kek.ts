import { createCipheriv, createDecipheriv, createHash, createSecretKey, type KeyObject } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import { pooledRandomBytes } from '../util/random.js';
import type { WrappingKey } from './types.js';

export const KEK_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Format byte of the wrapped layout: 0x01 || iv (12) || ciphertext || tag (16). */
const FORMAT_AES256GCM = 0x01;

/** A KEK held in memory as a KeyObject: AES-256-GCM with a random 96-bit IV per encryption (the file KEK). */
export class AesGcmKek implements WrappingKey {
  readonly id: string;
  private readonly key: KeyObject;

  /** `raw` is copied into a KeyObject; the caller should zero its own copy. */
  constructor(raw: Uint8Array) {
    if (raw.length !== KEK_BYTES)
      throw new InvalidArgument('broker.kek.size', `KEK must be ${KEK_BYTES} bytes`);
    this.key = createSecretKey(raw);
    this.id = `aes256gcm:${createHash('sha256').update('vouchsafe kek id\0').update(raw).digest('hex').slice(0, 16)}`;
  }

  encrypt(plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    const iv = pooledRandomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    const out = new Uint8Array(1 + IV_BYTES + ct.length + TAG_BYTES);
    out[0] = FORMAT_AES256GCM;
    out.set(iv, 1);
    out.set(ct, 1 + IV_BYTES);
    out.set(c.getAuthTag(), 1 + IV_BYTES + ct.length);
    ct.fill(0);
    return Promise.resolve(out);
  }

  decrypt(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    if (wrapped.length < 1 + IV_BYTES + TAG_BYTES || wrapped[0] !== FORMAT_AES256GCM) {
      return Promise.reject(
        new InvalidArgument('broker.kek.unwrap_failed', 'wrapped key has an unknown format'),
      );
    }
    const iv = wrapped.subarray(1, 1 + IV_BYTES);
    const ct = wrapped.subarray(1 + IV_BYTES, wrapped.length - TAG_BYTES);
    const tag = wrapped.subarray(wrapped.length - TAG_BYTES);
    const d = createDecipheriv('aes-256-gcm', this.key, iv);
    d.setAAD(aad);
    d.setAuthTag(tag);
    const first = d.update(ct);
    try {
      const last = d.final();
      const out = new Uint8Array(first.length + last.length);
      out.set(first);
      out.set(last, first.length);
      return Promise.resolve(out);
    } catch {
      return Promise.reject(
        new InvalidArgument('broker.kek.unwrap_failed', 'sealing key does not decrypt under this KEK'),
      );
    } finally {
      // Unauthenticated plaintext must not outlive the failed check.
      first.fill(0);
    }
  }
}
