import { createCipheriv, createDecipheriv, createHash, diffieHellman, type KeyObject } from 'node:crypto';
import { InvalidArgument, MalformedEvidence, SignatureInvalid } from '../errors.js';
import {
  type AesGcmData,
  type EcPublicKey,
  GCM_IV_SIZE,
  GCM_TAG_SIZE,
  WRAPPED_CEK_SIZE,
} from '../formats/aproxy/types.js';
import { decodeBase64Url, encodeBase64Url } from '../util/base64.js';
import { pooledRandomBytes } from '../util/random.js';
import { zeroize } from '../util/zeroize.js';
import { agreementOnThisThread, type EcdhAgreement } from './ecdh-threads.js';
import { p521PointOf, p521PublicKeyFromPoint } from './p521.js';

/**
 * JWE key agreement ECDH-ES+A256KW (RFC 7518 §4.6.2) on P-521 with content encryption A256GCM (§5.3), the
 * scheme COCONUT-SVSM uses to receive its secret (reference svsm-protocol.md §2 "Secret protection"):
 *
 *   Z   = ECDH(recipient P-521, ephemeral P-521)             -- 66 bytes
 *   KEK = SHA-256(u32be(1) || Z || u32be(14) || "ECDH-ES+A256KW" || u32be(0) || u32be(0) || u32be(256))
 *         (Concat KDF, NIST SP 800-56A §5.8.1, one round; PartyUInfo and PartyVInfo empty)
 *   wrapped_cek = AES-KW(KEK, CEK)                           -- RFC 3394, default IV A6A6A6A6A6A6A6A6; 40 bytes
 *   ciphertext, tag = AES-256-GCM(CEK, iv, aad, plaintext)
 *   aad = ASCII(base64url(protected header JSON)), header exactly as kbs_types `ProtectedHeader` serializes:
 *         {"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-521","kty":"EC","x":"..","y":".."}}
 *
 * CEK, KEK and Z are zeroized after use. Errors on unwrap: MalformedEvidence `crypto.p521.point` (bad epk),
 * `jwe.length`; SignatureInvalid `jwe.cek_unwrap` (AES-KW integrity check) and `jwe.decrypt` (GCM tag).
 * Every tampered byte ends in one of these, never in plaintext.
 */
export const JWE_ALG = 'ECDH-ES+A256KW';
export const JWE_ENC = 'A256GCM';
const KW_DEFAULT_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const CEK_SIZE = 32;

/** A sealed secret: the aproxy `decryption` fields plus the ciphertext (`secret`). */
export interface JweSealed {
  readonly decryption: AesGcmData;
  readonly ciphertext: Uint8Array;
}

/** Concat KDF with SHA-256 as RFC 7518 §4.6.2 instantiates it, for `keyBits` <= 256. */
export function concatKdfSha256(z: Uint8Array, algorithmId: string, keyBits = 256): Buffer {
  if (keyBits <= 0 || keyBits > 256 || keyBits % 8 !== 0) {
    throw new InvalidArgument('jwe.kdf', 'concat KDF here yields at most one SHA-256 block');
  }
  const alg = Buffer.from(algorithmId, 'ascii');
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  const h = createHash('sha256');
  h.update(u32(1)); // round counter
  h.update(z);
  h.update(u32(alg.length));
  h.update(alg);
  h.update(u32(0)); // PartyUInfo: empty
  h.update(u32(0)); // PartyVInfo: empty
  h.update(u32(keyBits)); // SuppPubInfo: keydatalen
  return h.digest().subarray(0, keyBits / 8);
}

/** AES-256 key wrap (RFC 3394) with the default IV. */
export function aesKeyWrap(kek: Uint8Array, key: Uint8Array): Buffer {
  const c = createCipheriv('id-aes256-wrap', kek, KW_DEFAULT_IV);
  return Buffer.concat([c.update(key), c.final()]);
}

/** AES-256 key unwrap; throws SignatureInvalid `jwe.cek_unwrap` when the integrity check fails. */
export function aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Buffer {
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) {
    throw new MalformedEvidence('jwe.length', 'wrapped key must be a multiple of 8 bytes, at least 24');
  }
  try {
    const d = createDecipheriv('id-aes256-wrap', kek, KW_DEFAULT_IV);
    return Buffer.concat([d.update(wrapped), d.final()]);
  } catch (cause) {
    throw new SignatureInvalid('jwe.cek_unwrap', 'AES key unwrap integrity check failed', { cause });
  }
}

/** The protected header JSON exactly as kbs_types serializes it (serde: struct fields, then sorted map). */
export function protectedHeaderJson(epk: EcPublicKey): string {
  return JSON.stringify({
    alg: JWE_ALG,
    enc: JWE_ENC,
    epk: { crv: 'P-521', kty: 'EC', x: encodeBase64Url(epk.x), y: encodeBase64Url(epk.y) },
  });
}

/** kbs_types `ProtectedHeader::generate_aad`: the ASCII bytes of base64url(header JSON). */
export function generateAad(epk: EcPublicKey): Uint8Array {
  return new Uint8Array(Buffer.from(encodeBase64Url(Buffer.from(protectedHeaderJson(epk), 'utf8')), 'ascii'));
}

function ecdhKek(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  return kekOf(diffieHellman({ privateKey, publicKey }));
}

/** The Concat KDF of `z`, which is zeroized. */
function kekOf(z: Uint8Array): Buffer {
  try {
    return concatKdfSha256(z, JWE_ALG, 256);
  } finally {
    zeroize(z);
  }
}

/**
 * Broker side: seals `plaintext` to the guest's P-521 public key (given as aproxy coordinates or a
 * KeyObject). A fresh CEK per call, and a fresh ephemeral key from `agree` (default: generated here for this
 * call; the broker's pools them on worker threads, ecdh-threads.ts).
 */
export async function wrapSecret(
  recipient: EcPublicKey | KeyObject,
  plaintext: Uint8Array,
  agree: EcdhAgreement = agreementOnThisThread(),
): Promise<JweSealed> {
  const point = 'x' in recipient ? recipient : p521PointOf(recipient); // throws crypto.p521.key_type
  const { epk, z } = await agree(point);
  return sealAgreed(epk, z, plaintext);
}

/**
 * The JWE of `plaintext` from a key agreement already made: `epk` the ephemeral public key's point and `z`
 * its shared secret with the recipient (zeroized here). For a caller that computed Z ahead of the plaintext
 * (the broker, while it decides the release).
 */
export function sealAgreed(epk: EcPublicKey, z: Uint8Array, plaintext: Uint8Array): JweSealed {
  const kek = kekOf(z);
  const cek = pooledRandomBytes(CEK_SIZE);
  try {
    const wrappedCek = aesKeyWrap(kek, cek);
    const aad = generateAad(epk);
    const iv = pooledRandomBytes(GCM_IV_SIZE);
    const c = createCipheriv('aes-256-gcm', cek, iv, { authTagLength: GCM_TAG_SIZE });
    c.setAAD(aad);
    const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
    return {
      decryption: {
        epk,
        wrappedCek: new Uint8Array(wrappedCek),
        aad,
        iv: new Uint8Array(iv),
        tag: c.getAuthTag(),
      },
      ciphertext: new Uint8Array(ciphertext),
    };
  } finally {
    zeroize(kek, cek);
  }
}

/**
 * Guest side (what the SVSM does): derives the KEK from its private key and `epk`, unwraps the CEK and
 * opens the ciphertext. Returns the plaintext (the caller zeroizes it when done).
 */
export function unwrapSecret(privateKey: KeyObject, sealed: JweSealed): Uint8Array {
  const d = sealed.decryption;
  if (
    d.wrappedCek.length !== WRAPPED_CEK_SIZE ||
    d.iv.length !== GCM_IV_SIZE ||
    d.tag.length !== GCM_TAG_SIZE
  ) {
    throw new MalformedEvidence('jwe.length', 'wrapped_cek must be 40, iv 12 and tag 16 bytes');
  }
  if (privateKey.type !== 'private')
    throw new InvalidArgument('crypto.p521.key_type', 'expected a private key');
  // The curve from the key's details: deriving and exporting its public half to check it costs 0.1 ms.
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'secp521r1')
    throw new InvalidArgument('crypto.p521.key_type', 'expected a P-521 key');
  const epk = p521PublicKeyFromPoint(d.epk, 'epk');
  const kek = ecdhKek(privateKey, epk);
  let cek: Buffer | undefined;
  try {
    cek = aesKeyUnwrap(kek, d.wrappedCek);
    if (cek.length !== CEK_SIZE) throw new MalformedEvidence('jwe.length', 'CEK must be 32 bytes');
    const dc = createDecipheriv('aes-256-gcm', cek, d.iv, { authTagLength: GCM_TAG_SIZE });
    dc.setAAD(d.aad);
    dc.setAuthTag(d.tag);
    const head = dc.update(sealed.ciphertext);
    let tail: Buffer;
    try {
      tail = dc.final();
    } catch (cause) {
      zeroize(head);
      throw new SignatureInvalid('jwe.decrypt', 'AES-GCM authentication failed', { cause });
    }
    const out = new Uint8Array(Buffer.concat([head, tail]));
    zeroize(head, tail);
    return out;
  } finally {
    zeroize(kek, cek);
  }
}

// ---- JOSE JSON serialization (interop with other JWE implementations) -------------------------------

/** RFC 7516 §7.2.2 flattened JWE JSON serialization. */
export interface FlattenedJweJson {
  readonly protected: string;
  readonly encrypted_key: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/** Our sealed fields as a flattened JWE (the protected member is the aad, by construction). */
export function toFlattenedJwe(s: JweSealed): FlattenedJweJson {
  return {
    protected: Buffer.from(s.decryption.aad).toString('ascii'),
    encrypted_key: encodeBase64Url(s.decryption.wrappedCek),
    iv: encodeBase64Url(s.decryption.iv),
    ciphertext: encodeBase64Url(s.ciphertext),
    tag: encodeBase64Url(s.decryption.tag),
  };
}

/** Compact serialization (RFC 7516 §7.1): protected.encrypted_key.iv.ciphertext.tag. */
export function toCompactJwe(s: JweSealed): string {
  const f = toFlattenedJwe(s);
  return [f.protected, f.encrypted_key, f.iv, f.ciphertext, f.tag].join('.');
}

/** A JWE member: canonical base64url without padding (RFC 7516 §7.1). */
const b64url = (s: unknown, field: string): Uint8Array => decodeBase64Url(s, 'jwe.base64url', field);

/**
 * A compact JWE (ECDH-ES+A256KW, A256GCM, P-521 epk in the protected header; no JWE AAD member, no
 * unprotected headers) as aproxy fields, the way aproxy maps a KBS response. Throws MalformedEvidence
 * `jwe.header` / `jwe.base64url` for anything else.
 */
export function fromCompactJwe(compact: string): JweSealed {
  const parts = compact.split('.');
  if (parts.length !== 5) throw new MalformedEvidence('jwe.header', 'compact JWE has five parts');
  const [prot, ek, iv, ct, tag] = parts as [string, string, string, string, string];
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(b64url(prot, 'protected')).toString('utf8'));
  } catch (cause) {
    if (cause instanceof MalformedEvidence) throw cause;
    throw new MalformedEvidence('jwe.header', 'protected header is not JSON', { cause });
  }
  const h = header as {
    alg?: unknown;
    enc?: unknown;
    epk?: { kty?: unknown; crv?: unknown; x?: unknown; y?: unknown };
  };
  if (h === null || typeof h !== 'object' || h.alg !== JWE_ALG || h.enc !== JWE_ENC) {
    throw new MalformedEvidence('jwe.header', `expected alg ${JWE_ALG} and enc ${JWE_ENC}`);
  }
  if (h.epk?.kty !== 'EC' || h.epk.crv !== 'P-521') {
    throw new MalformedEvidence('jwe.header', 'expected a P-521 epk');
  }
  return {
    decryption: {
      epk: { x: b64url(h.epk.x, 'epk.x'), y: b64url(h.epk.y, 'epk.y') },
      wrappedCek: b64url(ek, 'encrypted_key'),
      aad: new Uint8Array(Buffer.from(prot, 'ascii')),
      iv: b64url(iv, 'iv'),
      tag: b64url(tag, 'tag'),
    },
    ciphertext: b64url(ct, 'ciphertext'),
  };
}
