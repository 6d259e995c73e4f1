import { randomBytes } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import { AesGcmKek, KEK_BYTES } from '../keys/file-kek.js';
import { openSecretFile } from '../util/secret-file.js';

/**
 * A key-encryption key (KEK): encrypts sealing keys at rest. An interface so that a PKCS#11 token (e.g.
 * SoftHSM2, an HSM) can stand behind it, where the KEK never leaves the token (src/keys/pkcs11-keys.ts,
 * chosen by a `pkcs11:` URI, src/keys/provider.ts); {@link openFileKek} is the default.
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

/** The file KEK's class lives with the other key kinds (src/keys); re-exported for its callers. */
export { AesGcmKek, KEK_BYTES };

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
