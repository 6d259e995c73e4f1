import { createHash, createPrivateKey, createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { InvalidArgument } from '../errors.js';
import { pkcs11Keys } from '../keys/provider.js';
import type { EcSigner } from '../keys/signer.js';
import { ctEqual } from '../util/bytes.js';
import { newKeyPairSync } from '../util/key-pair.js';
import { openSecretFile } from '../util/secret-file.js';

/**
 * The broker's ECDSA P-384 response-signing key: PKCS#8 PEM in a 0600 file, created on first run. Its
 * public key is what 0.2.0 guests pin (docs/protocol.md "Broker signature"); it is also written, not
 * secret, beside the key as `<path>.pub` (SPKI PEM) and served at GET /v1/broker-key.
 *
 * Throws InvalidArgument `api.signing_key.*` (file rules in secret-file.ts; `.format` when the file is not
 * a P-384 private key).
 */
export function openSigningKey(path: string): { privateKey: KeyObject; publicKey: KeyObject } {
  const pem = openSecretFile(path, 'api.signing_key', () => {
    const { privateKey } = newKeyPairSync('ec', { namedCurve: 'P-384' });
    return new Uint8Array(
      Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 'ascii'),
    );
  });
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new InvalidArgument('api.signing_key.format', `${path} is not a PEM private key`);
  } finally {
    pem.fill(0);
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    throw new InvalidArgument('api.signing_key.format', `${path} must hold an ECDSA P-384 key`);
  }
  const publicKey = createPublicKey(privateKey);
  writeFileSync(`${path}.pub`, publicKey.export({ type: 'spki', format: 'pem' }) as string, { mode: 0o600 });
  return { privateKey, publicKey };
}

/**
 * The response-signing key in a PKCS#11 token, named by a `pkcs11:` URI: an ECDSA P-384 key pair, generated
 * in the token on first run (private half not extractable). Nothing is written to disk; the public key is
 * served at GET /v1/broker-key. Throws InvalidArgument `keys.pkcs11.*`, `api.signing_key.format` (not P-384).
 */
export function tokenSigningKey(uri: string): { privateKey: EcSigner; publicKey: KeyObject } {
  const signer = pkcs11Keys.signer(uri, 'P-384');
  if (signer.curve !== 'P-384') {
    throw new InvalidArgument('api.signing_key.format', `${signer.id} must be an ECDSA P-384 key`);
  }
  return { privateKey: signer, publicKey: signer.publicKey };
}

/** The public key as guests pin it: SPKI DER, PEM and the DER's SHA-256. */
export function describePublicKey(key: KeyObject): { spki: Uint8Array; pem: string; sha256: string } {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  return {
    spki,
    pem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    sha256: createHash('sha256').update(spki).digest('hex'),
  };
}

const TOKEN = /^[\x21-\x7e]{32,256}$/;

/**
 * The admin bearer token: a text file (0600, created on first run with 32 random bytes as 64 hex digits).
 * An operator may put their own token there: 32 to 256 visible ASCII characters. Throws InvalidArgument
 * `api.admin_token.*`.
 */
export function openAdminToken(path: string): string {
  const raw = openSecretFile(
    path,
    'api.admin_token',
    () => new Uint8Array(Buffer.from(`${randomBytes(32).toString('hex')}\n`, 'ascii')),
  );
  const token = raw.toString('latin1').trim();
  raw.fill(0);
  if (!TOKEN.test(token)) {
    throw new InvalidArgument('api.admin_token.format', `${path} must hold 32..256 visible ASCII characters`);
  }
  return token;
}

/**
 * Compares a presented bearer token with the configured one in constant time: both are hashed first, so
 * neither the content nor the length of the configured token leaks through timing.
 */
export function checkBearer(presented: string | undefined, expected: string): boolean {
  if (typeof presented !== 'string') return false;
  const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(presented);
  const got = createHash('sha256')
    .update(m?.[1] ?? '', 'latin1')
    .digest();
  const want = createHash('sha256').update(expected, 'latin1').digest();
  // Evaluate the comparison even for a malformed header, so both paths cost the same.
  const same = ctEqual(got, want);
  return m !== null && same;
}
