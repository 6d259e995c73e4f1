import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import { openSecretFile } from '../util/secret-file.js';

/**
 * A key-encryption key (KEK): encrypts sealing keys at rest. An interface so that a PKCS#11 token (e.g.
 * SoftHSM2, an HSM) can stand behind it, where the KEK never leaves the token; {@link openFileKek} is the
 * default.
 */
export interface KekSource {
  /** A stable, non-secret identifier, stored beside each wrapped key. */
  readonly id: string;
  /** Authenticated encryption of `plaintext`, binding `aad`. */
  encrypt(plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  /**
   * Inverse of encrypt. Throws InvalidArgument `broker.kek.unwrap_failed` when the ciphertext, the AAD or
   * the KEK is wrong: never returns unauthenticated bytes.
   */
  decrypt(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
}

const KEK_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Format byte of the wrapped layout: 0x01 || iv (12) || ciphertext || tag (16). */
const FORMAT_AES256GCM = 0x01;

/** A KEK held in memory as a KeyObject: AES-256-GCM with a random 96-bit IV per encryption. */
export class AesGcmKek implements KekSource {
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
    const iv = randomBytes(IV_BYTES);
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

export interface FileKekOptions {
  /** Create the file (32 random bytes, mode 0600) when it does not exist. Default true. */
  readonly create?: boolean;
}

/**
 * Opens the KEK file: exactly 32 raw bytes, a regular file (not a symlink) owned by this user and
 * readable by no one else. Creates it with mode 0600 on first run; when two processes race to create it,
 * one file wins (written aside, then hard-linked into place) and both use it.
 *
 * Throws InvalidArgument: `broker.kek.permissions` (group/other bits set), `broker.kek.owner`,
 * `broker.kek.not_file`, `broker.kek.size`, `broker.kek.missing` (absent and `create: false`).
 */
export function openFileKek(path: string, opts: FileKekOptions = {}): AesGcmKek {
  const create = opts.create === false ? undefined : () => randomBytes(KEK_BYTES);
  const raw = openSecretFile(path, 'broker.kek', create, KEK_BYTES);
  try {
    if (raw.length !== KEK_BYTES) {
      throw new InvalidArgument('broker.kek.size', `KEK file ${path} must hold exactly ${KEK_BYTES} bytes`);
    }
    return new AesGcmKek(raw);
  } finally {
    raw.fill(0);
  }
}
