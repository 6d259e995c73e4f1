import { constants, createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { chmodSync, closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { InvalidArgument } from '../errors.js';
import { pkcs11Keys } from '../keys/provider.js';
import type { EcSigner } from '../keys/signer.js';
import { newKeyPair } from '../util/key-pair.js';
import {
  type CaKeyType,
  keyType,
  keyTypeOf,
  type SignatureAlgorithm,
  signatureAlgorithm,
} from './algorithms.js';

/**
 * Where the CA's private key lives. The CA never sees the key itself: it hands the bytes to sign to the
 * store. A file store is the default; a PKCS#11 store (e.g. SoftHSM2, an HSM) implements the same two
 * members, which is why signatures are IEEE P1363 (r ‖ s) for ECDSA — what CKM_ECDSA returns — and the CA
 * converts them to DER for X.509 itself.
 */
export interface CaKeyStore {
  /** The CA's public key. */
  readonly publicKey: KeyObject;
  /**
   * Signs `data` (the store hashes it with the algorithm's hash). ECDSA: IEEE P1363 r ‖ s; RSA: the
   * PKCS #1 v1.5 signature block. Throws InvalidArgument `ca.key_store.algorithm` when the algorithm does
   * not fit the key.
   */
  sign(data: Uint8Array, alg: SignatureAlgorithm): Promise<Uint8Array>;
}

/** Generates a CA key pair (off the main thread). */
export async function generateCaKey(
  type: CaKeyType,
): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  const k = keyType(type);
  if (k.kind === 'ec') return newKeyPair('ec', { namedCurve: k.curve! });
  return newKeyPair('rsa', { modulusLength: k.modulusLength!, publicExponent: 65537 });
}

function checkAlgorithm(key: KeyObject, alg: SignatureAlgorithm): void {
  const a = signatureAlgorithm(alg);
  if (key.asymmetricKeyType !== a.keyKind) {
    throw new InvalidArgument('ca.key_store.algorithm', `${alg} does not fit a ${key.asymmetricKeyType} key`);
  }
}

/** An in-memory key store (tests, and the base of the file store). */
export class MemoryKeyStore implements CaKeyStore {
  readonly publicKey: KeyObject;

  constructor(private readonly privateKey: KeyObject) {
    if (privateKey.type !== 'private' || keyTypeOf(privateKey) === undefined) {
      throw new InvalidArgument(
        'ca.key_store.key',
        'the CA key must be a P-256, P-384, RSA-2048 or RSA-3072 private key',
      );
    }
    this.publicKey = createPublicKey(privateKey);
  }

  async sign(data: Uint8Array, alg: SignatureAlgorithm): Promise<Uint8Array> {
    checkAlgorithm(this.privateKey, alg);
    const a = signatureAlgorithm(alg);
    const key =
      a.keyKind === 'ec'
        ? { key: this.privateKey, dsaEncoding: 'ieee-p1363' as const }
        : { key: this.privateKey, padding: constants.RSA_PKCS1_PADDING };
    return new Uint8Array(sign(a.hash, data, key));
  }
}

export interface FileKeyStoreOptions {
  /** Encrypts the PKCS#8 file (PBES2, AES-256-CBC) under this passphrase; without it the file is plain. */
  readonly passphrase?: string;
}

/**
 * The CA key in a PKCS#8 PEM file with mode 0600. Optionally encrypted with a passphrase. The file is
 * created exclusively (an existing key is never overwritten) and refused on open when group or others can
 * read it.
 */
export class FileKeyStore extends MemoryKeyStore {
  private constructor(
    privateKey: KeyObject,
    readonly path: string,
  ) {
    super(privateKey);
  }

  /** Generates a key and writes it to `path` (must not exist). Throws InvalidArgument `ca.key_store.exists`. */
  static async create(path: string, type: CaKeyType, opts: FileKeyStoreOptions = {}): Promise<FileKeyStore> {
    const { privateKey } = await generateCaKey(type);
    const pem =
      opts.passphrase === undefined
        ? privateKey.export({ type: 'pkcs8', format: 'pem' })
        : privateKey.export({
            type: 'pkcs8',
            format: 'pem',
            cipher: 'aes-256-cbc',
            passphrase: opts.passphrase,
          });
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch {
      throw new InvalidArgument('ca.key_store.exists', `${path} exists or cannot be created`);
    }
    try {
      writeSync(fd, String(pem));
    } finally {
      closeSync(fd);
    }
    chmodSync(path, 0o600); // the umask cannot widen 0600, but be explicit
    return new FileKeyStore(privateKey, path);
  }

  /**
   * Opens an existing key file. Throws InvalidArgument `ca.key_store.missing`, `.permissions` (readable by
   * group or others), `.key` (not a usable private key or wrong passphrase).
   */
  static open(path: string, opts: FileKeyStoreOptions = {}): FileKeyStore {
    let mode: number;
    try {
      mode = statSync(path).mode;
    } catch {
      throw new InvalidArgument('ca.key_store.missing', `no CA key at ${path}`);
    }
    if ((mode & 0o077) !== 0) {
      throw new InvalidArgument(
        'ca.key_store.permissions',
        `${path} has mode ${(mode & 0o777).toString(8)}; the CA key must be 0600`,
      );
    }
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: readFileSync(path), format: 'pem', passphrase: opts.passphrase });
    } catch {
      throw new InvalidArgument(
        'ca.key_store.key',
        `${path} is not a readable private key (or the passphrase is wrong)`,
      );
    }
    return new FileKeyStore(key, path);
  }
}

/**
 * The CA key as an ECDSA signer whose private half stays elsewhere — a PKCS#11 token (src/keys, opened from a
 * `pkcs11:` URI). The signer returns IEEE P1363 r ‖ s (CKM_ECDSA's output), which is what this interface
 * returns too; the CA DER-encodes it for X.509 (src/ca/certificate.ts). Only ECDSA: an RSA algorithm is
 * `ca.key_store.algorithm`.
 */
export class SignerKeyStore implements CaKeyStore {
  readonly publicKey: KeyObject;

  constructor(private readonly signer: EcSigner) {
    this.publicKey = signer.publicKey;
  }

  /** Opens (with `create`, generates on first use) the CA key at a `pkcs11:` URI. Throws `keys.pkcs11.*`. */
  static open(uri: string, create?: CaKeyType): SignerKeyStore {
    const curve = create === undefined ? undefined : keyType(create).curve;
    if (create !== undefined && curve === undefined) {
      throw new InvalidArgument('ca.key_type', 'a CA key in a PKCS#11 token is p256 or p384');
    }
    return new SignerKeyStore(pkcs11Keys.signer(uri, curve));
  }

  async sign(data: Uint8Array, alg: SignatureAlgorithm): Promise<Uint8Array> {
    checkAlgorithm(this.publicKey, alg);
    return this.signer.sign(signatureAlgorithm(alg).hash, data);
  }
}
