import { constants, createCipheriv, createECDH, publicEncrypt } from 'node:crypto';
import { aesKeyWrap, concatKdfSha256 } from '../native/jwe-ecdh-es.js';
import { encodeBase64Url } from '../util/base64.js';
import { pooledRandomBytes } from '../util/random.js';
import { zeroize } from '../util/zeroize.js';
import { EC_COORDINATE_BYTES, NODE_EC_CURVE, type TeePubkey } from './tee-pubkey.js';

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

function encryptContent(cek: Uint8Array, protectedB64: string, plaintext: Uint8Array) {
  const iv = pooledRandomBytes(12);
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
  const cek = pooledRandomBytes(32);
  try {
    if (tee.key) {
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
    // The ephemeral key as node's ECDH: its public point comes out raw (04 || x || y, fixed width), with no
    // KeyObject export (0.09 ms for the SPKI DER) and no import of the TEE's key; computeSecret checks the
    // peer point is on the curve (EC_POINT_oct2point) again. 0.09 ms for keygen + derive against 0.27 ms
    // for generateKeyPair + diffieHellman + SPKI export on this machine. The shared secret is the
    // x-coordinate, fixed width (SEC 1 §3.3.1), as diffieHellman returns it.
    const eph = createECDH(NODE_EC_CURVE[curve]);
    const epk = eph.generateKeys();
    const z = eph.computeSecret(tee.uncompressed);
    let kek: Buffer | undefined;
    try {
      kek = concatKdfSha256(z, 'ECDH-ES+A256KW', 256);
      const encryptedKey = aesKeyWrap(kek, cek);
      const n = EC_COORDINATE_BYTES[curve];
      if (epk.length !== 1 + 2 * n || epk[0] !== 0x04) throw new Error('unexpected ECDH public key encoding');
      const x = epk.subarray(1, 1 + n);
      const y = epk.subarray(1 + n);
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
