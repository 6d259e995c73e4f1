import {
  constants,
  createCipheriv,
  diffieHellman,
  generateKeyPair,
  type KeyObject,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { aesKeyWrap, concatKdfSha256 } from '../native/jwe-ecdh-es.js';
import { encodeBase64Url } from '../util/base64.js';
import { zeroize } from '../util/zeroize.js';
import { EC_COORDINATE_BYTES, type EcCurve, type TeePubkey } from './tee-pubkey.js';

/**
 * The RCAR resource response: a flattened JWE (RFC 7516 §7.2.2) exactly as Trustee returns it (kbs_types
 * `Response`, kbs/src/jwe/mod.rs): members `protected, encrypted_key, iv, ciphertext, tag` (no `aad`),
 * base64url without padding, `enc` A256GCM, and
 * - EC keys: `alg` ECDH-ES+A256KW (RFC 7518 §4.6.2): ephemeral key on the recipient's curve, Concat KDF
 *   SHA-256 with empty PartyU/PartyV, AES-256 key wrap of a random CEK (40 bytes);
 * - RSA keys: `alg` RSA-OAEP-256 (RFC 7518 §4.3) of the CEK.
 * The protected header is serialized as kbs_types does (struct fields `alg`, `enc`, then the flattened
 * map in sorted order: `epk` with `crv, kty, x, y`), because COCONUT aproxy re-serializes the parsed header
 * to compute the AAD (`ProtectedHeader::generate_aad`); any other member order would break its decryption.
 * AAD = ASCII(protected). CEK, KEK and the ECDH secret are zeroized after use.
 */
export interface KbsJweResponse {
  readonly protected: string;
  readonly encrypted_key: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

const NODE_CURVE: Readonly<Record<EcCurve, string>> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-521': 'secp521r1',
};

function ephemeral(curve: EcCurve): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    generateKeyPair('ec', { namedCurve: NODE_CURVE[curve] }, (err, publicKey, privateKey) => {
      if (err) reject(err);
      else resolve({ publicKey, privateKey });
    });
  });
}

/** x and y of an EC public key: the uncompressed point ends its SPKI DER (no JWK export: design.md). */
function pointOf(pub: KeyObject, curve: EcCurve): { x: Buffer; y: Buffer } {
  const n = EC_COORDINATE_BYTES[curve];
  const der = pub.export({ type: 'spki', format: 'der' });
  const pt = der.subarray(der.length - 2 * n - 1);
  if (pt[0] !== 0x04) throw new Error('unexpected SPKI encoding of an ephemeral EC key');
  return { x: pt.subarray(1, 1 + n), y: pt.subarray(1 + n) };
}

function encryptContent(cek: Uint8Array, protectedB64: string, plaintext: Uint8Array) {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', cek, iv, { authTagLength: 16 });
  c.setAAD(Buffer.from(protectedB64, 'ascii'));
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  return {
    iv: encodeBase64Url(iv),
    ciphertext: encodeBase64Url(ciphertext),
    tag: encodeBase64Url(c.getAuthTag()),
  };
}

/** Seals `plaintext` to the TEE's key (see the module doc). A fresh CEK (and ephemeral key) per call. */
export async function sealToTeeKey(tee: TeePubkey, plaintext: Uint8Array): Promise<KbsJweResponse> {
  const cek = randomBytes(32);
  try {
    if (tee.jwk.kty === 'RSA') {
      const encryptedKey = publicEncrypt(
        { key: tee.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        cek,
      );
      const prot = encodeBase64Url(
        Buffer.from(JSON.stringify({ alg: 'RSA-OAEP-256', enc: 'A256GCM' }), 'utf8'),
      );
      return {
        protected: prot,
        encrypted_key: encodeBase64Url(encryptedKey),
        ...encryptContent(cek, prot, plaintext),
      };
    }
    const curve = tee.jwk.crv;
    const eph = await ephemeral(curve);
    const z = diffieHellman({ privateKey: eph.privateKey, publicKey: tee.key });
    let kek: Buffer | undefined;
    try {
      kek = concatKdfSha256(z, 'ECDH-ES+A256KW', 256);
      const encryptedKey = aesKeyWrap(kek, cek);
      const { x, y } = pointOf(eph.publicKey, curve);
      const header = {
        alg: 'ECDH-ES+A256KW',
        enc: 'A256GCM',
        epk: { crv: curve, kty: 'EC', x: encodeBase64Url(x), y: encodeBase64Url(y) },
      };
      const prot = encodeBase64Url(Buffer.from(JSON.stringify(header), 'utf8'));
      return {
        protected: prot,
        encrypted_key: encodeBase64Url(encryptedKey),
        ...encryptContent(cek, prot, plaintext),
      };
    } finally {
      zeroize(z, kek);
    }
  } finally {
    zeroize(cek);
  }
}
