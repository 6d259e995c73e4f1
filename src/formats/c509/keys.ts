import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { InvalidArgument, NotSupported } from '../../errors.js';
import { sequence } from '../der/reader.js';
import { algIdToC509, pkAlgEntry, publicKeyToC509, spkiDer } from './algorithms.js';
import { type CborValue, encodeCborSequence } from './cbor.js';
import { C509_DER, parseDer } from './der-input.js';

/**
 * C509 public keys <-> node:crypto KeyObjects (draft-ietf-cose-cbor-encoded-cert-20 §3.1.7, §3.2.1), and the
 * key identifier natively signed certificates use.
 */

/**
 * KeyObject for a C509 (subjectPublicKeyAlgorithm, subjectPublicKey). Throws NotSupported
 * `c509.alg_unsupported` when node:crypto cannot load the key (FRP256v1, unregistered algorithms).
 */
export function c509PublicKey(algorithm: CborValue, value: CborValue): KeyObject {
  const der = spkiDer(algorithm, value);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  } catch {
    const name = pkAlgEntry(algorithm)?.name ?? 'this';
    throw new NotSupported('c509.alg_unsupported', `node:crypto cannot load a ${name} public key`);
  }
  if (key.asymmetricKeyType === undefined) {
    throw new NotSupported(
      'c509.alg_unsupported',
      `node:crypto cannot use a ${pkAlgEntry(algorithm)?.name ?? ''} public key`,
    );
  }
  return key;
}

export interface C509PublicKey {
  readonly algorithm: CborValue;
  readonly value: CborValue;
}

/**
 * C509 form of a public KeyObject. `compress` point-compresses Weierstrass keys with 0x02/0x03 (the native
 * form, §3.2.1); the default keeps 0x04 points, as the draft-20 test vectors do.
 */
export function c509PublicKeyFromKeyObject(key: KeyObject, opts: { compress?: boolean } = {}): C509PublicKey {
  if (key.type !== 'public') throw new InvalidArgument('c509.key.type', 'expected a public key');
  const spki = sequence(parseDer(new Uint8Array(key.export({ format: 'der', type: 'spki' }))), C509_DER);
  const algorithm = algIdToC509(spki[0]!, 'pk');
  return {
    algorithm,
    value: publicKeyToC509(algorithm, spki[1]!, { compress: opts.compress ? 'native' : 'none' }),
  };
}

/**
 * Key identifier for natively signed certificates: the leftmost 160 bits of SHA-256 over the CBOR sequence
 * (subjectPublicKeyAlgorithm, subjectPublicKey). §3.3 leaves the method open; this is the one the draft-20
 * test vectors use (the type 2 CA certificate of §2 and its AKI in §3.12).
 */
export function c509KeyIdentifier(key: C509PublicKey): Uint8Array {
  const digest = createHash('sha256')
    .update(encodeCborSequence([key.algorithm, key.value]))
    .digest();
  return new Uint8Array(digest.subarray(0, 20));
}
