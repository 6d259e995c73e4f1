import {
  createPrivateKey,
  createPublicKey,
  type ECKeyPairKeyObjectOptions,
  generateKeyPair,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';

export interface KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

/** A key pair generated off the main thread: the default wherever the caller can wait. */
export const newKeyPair = promisify(generateKeyPair);

/**
 * A key pair generated synchronously, for code that cannot wait for one (simulators, a key file made on first
 * run, tests). Use this, never node's generateKeyPairSync itself (test/structure/key-generation.test.ts holds
 * src/ and test/ to it).
 *
 * Why: in Node 20, generateKeyPairSync leaves its job object to the garbage collector, and the job's destructor
 * takes the new key's mutex. Reading that key's details (`asymmetricKeyDetails`) or exporting it as a JWK holds
 * the same mutex while allocating on the JavaScript heap; a collection that falls there runs the destructor on
 * the same thread, and the process hangs for good. Seen in CI, twice, in test/native/p521.test.ts (gdb:
 * GetEcKeyDetail -> a V8 allocation -> GC -> ~KeyGenJob -> pthread_mutex_lock, one thread, waiting on itself);
 * a loop of P-256 keygen + asymmetricKeyDetails hangs after ~40,000 keys here. So the generated key is only
 * exported (PKCS#8 DER: the export takes no lock) and the caller gets that export imported again: keys with a
 * mutex of their own and no job attached (200,000 such keys with details and JWK export read: no hang).
 * Asynchronous generateKeyPair needs none of this: its job is freed right after its callback, outside any lock.
 */
export function newKeyPairSync(type: 'ec', options: { namedCurve: string }): KeyPair;
export function newKeyPairSync(type: 'rsa', options: { modulusLength: number }): KeyPair;
export function newKeyPairSync(type: 'ed25519' | 'ed448'): KeyPair;
export function newKeyPairSync(type: 'ec' | 'rsa' | 'ed25519' | 'ed448', options?: object): KeyPair {
  const { privateKey } = generateKeyPairSync(type as 'ec', options as ECKeyPairKeyObjectOptions);
  const der = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    const detached = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    return { privateKey: detached, publicKey: createPublicKey(detached) };
  } finally {
    der.fill(0);
  }
}
