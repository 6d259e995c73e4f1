import { createPrivateKey, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { InvalidArgument } from '../errors.js';
import { pkcs11Keys } from '../keys/provider.js';
import { openSecretFile } from '../util/secret-file.js';
import { type TokenAlg, TokenKeyRing, type TokenKeyRingOptions } from './tokens/index.js';

/**
 * The KBS token signing keys on disk: one JSON file (0600, created on first run beside the KEK) holding
 * the signing key and the retired keys still published in the JWKS, with their history, so a restart
 * neither changes the key (tokens issued before it stay valid) nor forgets when a key was retired:
 *
 *   {"format": "vouchsafe-token-keys/1",
 *    "keys": [{"activatedAt": <ms>, "retiredAt": <ms> | null, "privateKey": "<PKCS#8 PEM>"}, …]}
 *
 * Oldest first; exactly the last key has `retiredAt: null` and signs. The same file rules as the KEK and
 * the admin token (src/util/secret-file.ts): refused when a symlink, not owned by this user or accessible
 * to group or others.
 */
export const TOKEN_KEYS_FORMAT = 'vouchsafe-token-keys/1';

export interface TokenKeyFileOptions extends TokenKeyRingOptions {
  /** Algorithm of a key created on first run (default ES256); rotation keeps the current key's. */
  readonly alg?: TokenAlg;
}

const bad = (path: string, why: string) =>
  new InvalidArgument('kbs.token_keys.format', `${path}: ${why} (expected ${TOKEN_KEYS_FORMAT})`);

function pkcs11Ref(ref: string | undefined): string {
  if (ref === undefined)
    throw new InvalidArgument('token.key', 'a token key held outside memory must say how to open it');
  return ref;
}

/** The file content for a ring (every published key with its history). */
export function encodeTokenKeys(ring: TokenKeyRing): Uint8Array {
  const keys = ring.published().map((k) => ({
    activatedAt: k.activatedAt,
    retiredAt: k.retiredAt,
    // A key in a PKCS#11 token is recorded by its URI (module-path and pin-source, never a PIN): the key
    // itself never leaves the token.
    ...(k.privateKey
      ? { privateKey: k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }
      : { pkcs11: pkcs11Ref(k.signer.ref) }),
  }));
  return new Uint8Array(Buffer.from(`${JSON.stringify({ format: TOKEN_KEYS_FORMAT, keys }, null, 2)}\n`));
}

/** Parses the file content. Throws InvalidArgument `kbs.token_keys.format`, `token.key`. */
export function decodeTokenKeys(bytes: Uint8Array, path: string, o: TokenKeyRingOptions): TokenKeyRing {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw bad(path, 'not JSON');
  }
  const d = doc as { format?: unknown; keys?: unknown };
  if (typeof doc !== 'object' || doc === null || d.format !== TOKEN_KEYS_FORMAT || !Array.isArray(d.keys)) {
    throw bad(path, 'not a token key file');
  }
  const entries = d.keys.map((k: unknown) => {
    const e = k as { activatedAt?: unknown; retiredAt?: unknown; privateKey?: unknown; pkcs11?: unknown };
    if (
      typeof k !== 'object' ||
      k === null ||
      typeof e.activatedAt !== 'number' ||
      (e.retiredAt !== null && typeof e.retiredAt !== 'number') ||
      (typeof e.privateKey !== 'string') === (typeof e.pkcs11 !== 'string')
    ) {
      throw bad(path, 'every key needs activatedAt, retiredAt and privateKey (or pkcs11)');
    }
    if (typeof e.pkcs11 === 'string') {
      // Opened in the token it names (keys.pkcs11.* when the token, the PIN or the key is not there).
      const signer = pkcs11Keys.signer(e.pkcs11);
      return { privateKey: signer, activatedAt: e.activatedAt, retiredAt: e.retiredAt as number | null };
    }
    let privateKey: ReturnType<typeof createPrivateKey>;
    try {
      privateKey = createPrivateKey({ key: e.privateKey as string, format: 'pem' });
    } catch {
      throw bad(path, 'a privateKey is not a PEM private key');
    }
    return { privateKey, activatedAt: e.activatedAt, retiredAt: e.retiredAt as number | null };
  });
  return TokenKeyRing.restore(entries, o);
}

/**
 * Opens the token key file at `path`, creating it (0600, one fresh key) on first run. Throws
 * InvalidArgument `kbs.token_keys.*` (file rules: `.not_file`, `.permissions`, `.owner`, `.size`; content:
 * `.format`) and `token.key`.
 */
export async function openTokenKeyFile(path: string, o: TokenKeyFileOptions): Promise<TokenKeyRing> {
  let fresh: Uint8Array | undefined;
  if (!exists(path)) {
    // Generated before openSecretFile, whose create callback is synchronous (EC keygen here is async).
    fresh = encodeTokenKeys(await TokenKeyRing.generate({ ...o, alg: o.alg ?? 'ES256' }));
  }
  const bytes = openSecretFile(path, 'kbs.token_keys', fresh ? () => fresh as Uint8Array : undefined);
  fresh?.fill(0);
  try {
    return decodeTokenKeys(bytes, path, o);
  } finally {
    bytes.fill(0);
  }
}

/**
 * Replaces the token key file with the ring's keys, atomically: written aside (0600, created exclusively),
 * flushed, renamed over `path`, and the directory flushed, so a crash leaves the old or the new file.
 */
export function saveTokenKeyFile(path: string, ring: TokenKeyRing): void {
  const content = encodeTokenKeys(ring);
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  let written = false;
  try {
    writeSync(fd, content);
    fsyncSync(fd);
    written = true;
  } finally {
    content.fill(0);
    closeSync(fd);
    if (!written) unlinkSync(tmp);
  }
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), constants.O_RDONLY);
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
