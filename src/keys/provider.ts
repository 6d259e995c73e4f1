import { createPrivateKey, randomBytes } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import { newKeyPairSync } from '../util/key-pair.js';
import { openSecretFile } from '../util/secret-file.js';
import { AesGcmKek, KEK_BYTES } from './file-kek.js';
import { generatePkcs11Kek, generatePkcs11Signer, openPkcs11Kek, openPkcs11Signer } from './pkcs11-keys.js';
import { formatPkcs11Uri, parsePkcs11Uri } from './pkcs11-uri.js';
import { EC_CURVES, type EcCurve, type EcSigner, keyObjectSigner } from './signer.js';
import type { WrappingKey } from './types.js';

/**
 * Where the broker's keys live. A key is named by a reference: a file path (the default: PEM / raw files,
 * 0600, created on first run) or a `pkcs11:` URI (RFC 7512; the key stays in the token). Both kinds offer
 * the same two things: an ECDSA signer (the CA key, the EAR token keys, the broker's response-signing key)
 * and a KEK that encrypts and decrypts with AAD (sealing keys, token keys and operator secrets at rest).
 */
export interface KeyProvider {
  readonly kind: 'file' | 'pkcs11';
  /**
   * The ECDSA key at `ref`. With `create`, a key on that curve is made when there is none (a file written
   * 0600, or a key pair generated in the token, private half not extractable). Throws InvalidArgument
   * (`keys.*`, the file rules of src/util/secret-file.ts under `keys.file`).
   */
  signer(ref: string, create?: EcCurve): EcSigner;
  /** The KEK at `ref`, made when absent if `create`. Throws InvalidArgument `broker.kek.*`, `keys.*`. */
  kek(ref: string, create?: boolean): WrappingKey;
}

/** Whether `ref` names a PKCS#11 object rather than a file. */
export const isPkcs11Ref = (ref: string): boolean => ref.startsWith('pkcs11:');

/** Keys in files: PKCS#8 PEM for signing keys, 32 raw bytes for the KEK (the embedded default). */
export const fileKeys: KeyProvider = {
  kind: 'file',
  signer(path, create) {
    const pem = openSecretFile(
      path,
      'keys.file',
      create &&
        (() => {
          const { privateKey } = newKeyPairSync('ec', { namedCurve: EC_CURVES[create].nodeCurve });
          return new Uint8Array(Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string));
        }),
    );
    try {
      return keyObjectSigner(createPrivateKey({ key: pem, format: 'pem' }));
    } catch (e) {
      if (e instanceof InvalidArgument) throw e;
      throw new InvalidArgument('keys.file.format', `${path} is not a PEM private key`);
    } finally {
      pem.fill(0);
    }
  },
  kek(path, create) {
    const raw = openSecretFile(
      path,
      'broker.kek',
      create ? () => randomBytes(KEK_BYTES) : undefined,
      KEK_BYTES,
    );
    try {
      return new AesGcmKek(raw);
    } finally {
      raw.fill(0);
    }
  },
};

const missing = (e: unknown) => e instanceof InvalidArgument && e.reason === 'keys.pkcs11.object_missing';

/** Keys in a PKCS#11 token (SoftHSM2, an HSM) named by `pkcs11:` URIs; PIN from pin-source or the environment. */
export const pkcs11Keys: KeyProvider = {
  kind: 'pkcs11',
  signer(ref, create) {
    const uri = parsePkcs11Uri(ref);
    try {
      return openPkcs11Signer(uri);
    } catch (e) {
      if (!create || !missing(e)) throw e;
      return generatePkcs11Signer(uri, create);
    }
  },
  kek(ref, create) {
    const uri = parsePkcs11Uri(ref);
    try {
      return openPkcs11Kek(uri);
    } catch (e) {
      if (!create || !missing(e)) throw e;
      return generatePkcs11Kek(uri);
    }
  },
};

/** The provider for `ref`: PKCS#11 for a `pkcs11:` URI, files otherwise. */
export const keyProviderFor = (ref: string): KeyProvider => (isPkcs11Ref(ref) ? pkcs11Keys : fileKeys);

/**
 * New signing keys generated in the token `uri` names, one per call, labelled `<object>-<time>-<random>`
 * (the URI's `object` is the prefix): the EAR token ring's rotations when its keys live in a token. A key
 * generated for a rotation that another replica won stays in the token unused (it signs nothing).
 */
export function pkcs11KeyGenerator(ref: string): (curve: EcCurve) => EcSigner {
  const uri = parsePkcs11Uri(ref);
  if (uri.object === undefined)
    throw new InvalidArgument('keys.pkcs11.uri', 'name the keys with object=<prefix>');
  const { id: _id, ...base } = uri;
  return (curve) =>
    pkcs11Keys.signer(
      formatPkcs11Uri({
        ...base,
        object: `${uri.object}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`,
      }),
      curve,
    );
}
