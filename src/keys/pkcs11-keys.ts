import { createHash, createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import type * as P11 from 'pkcs11js';
import { InvalidArgument, Unavailable } from '../errors.js';
import { findObject, onToken, type TokenSession, tokenSession } from './pkcs11-module.js';
import { formatPkcs11Uri, keyIdOf, type Pkcs11Uri } from './pkcs11-uri.js';
import { EC_CURVES, type EcCurve, type EcSigner, type SignHash } from './signer.js';
import type { WrappingKey } from './types.js';

/**
 * Keys that live in a PKCS#11 token: ECDSA signing keys (CKM_ECDSA) and the KEK (CKM_AES_GCM). The private
 * and secret values never leave the token; generated keys are CKA_SENSITIVE and not CKA_EXTRACTABLE.
 */

/** CKA_EC_PARAMS: the DER OID of the curve (RFC 5480 §2.1.1.1). */
const EC_PARAMS: Readonly<Record<EcCurve, string>> = {
  'P-256': '06082a8648ce3d030107',
  'P-384': '06052b81040022',
};

/**
 * The uncompressed point from CKA_EC_POINT. PKCS#11 v2.40 §2.3.3 says DER OCTET STRING; some modules give the
 * raw point. The two are told apart by length (the raw point is 1 + 2n bytes and starts 0x04).
 */
function ecPoint(value: Buffer, curve: EcCurve): Buffer {
  const n = EC_CURVES[curve].scalarBytes;
  if (value.length === 2 * n + 1 && value[0] === 0x04) return value;
  if (value.length === 2 * n + 3 && value[0] === 0x04 && value[1] === 2 * n + 1 && value[2] === 0x04) {
    return value.subarray(2);
  }
  throw new InvalidArgument(
    'keys.pkcs11.public_key',
    'CKA_EC_POINT is not an uncompressed point on the curve',
  );
}

function publicKeyOf(point: Buffer, curve: EcCurve): KeyObject {
  const n = EC_CURVES[curve].scalarBytes;
  return createPublicKey({
    key: {
      kty: 'EC',
      crv: curve,
      x: point.subarray(1, 1 + n).toString('base64url'),
      y: point.subarray(1 + n).toString('base64url'),
    },
    format: 'jwk',
  });
}

function curveOfParams(params: Buffer | undefined): EcCurve {
  const hex = params?.toString('hex');
  const curve = (Object.keys(EC_PARAMS) as EcCurve[]).find((c) => EC_PARAMS[c] === hex);
  if (!curve) throw new InvalidArgument('keys.curve', 'the PKCS#11 key is not on P-256 or P-384');
  return curve;
}

/** An ECDSA key in the token: the private key (CKO_PRIVATE_KEY) and its public half (CKO_PUBLIC_KEY). */
class Pkcs11EcSigner implements EcSigner {
  constructor(
    private readonly s: TokenSession,
    private readonly handle: P11.Handle,
    readonly id: string,
    readonly curve: EcCurve,
    readonly publicKey: KeyObject,
    readonly ref: string,
  ) {}

  sign(hash: SignHash, data: Uint8Array): Uint8Array {
    // CKM_ECDSA signs a digest the caller computed (PKCS#11 v2.40 Current Mechanisms §2.3.6); its output is
    // r || s, each the width of the curve's order: IEEE P1363, what EcSigner returns.
    const digest = createHash(hash).update(data).digest();
    const width = 2 * EC_CURVES[this.curve].scalarBytes;
    return onToken('ECDSA signature', () => {
      this.s.p11.C_SignInit(this.s.session, { mechanism: this.s.lib.CKM_ECDSA }, this.handle);
      const sig = this.s.p11.C_Sign(this.s.session, digest, Buffer.alloc(width));
      if (sig.length !== width)
        throw new Unavailable('keys.pkcs11.device', 'CKM_ECDSA returned a signature of the wrong width');
      return new Uint8Array(sig);
    });
  }
}

/** Opens the ECDSA key `uri` names. Throws InvalidArgument `keys.pkcs11.*`, `keys.curve`. */
export function openPkcs11Signer(uri: Pkcs11Uri): EcSigner {
  if (uri.type !== undefined && uri.type !== 'private') {
    throw new InvalidArgument('keys.pkcs11.uri', 'a signing key is type=private');
  }
  const s = tokenSession(uri);
  const priv = findObject(s, uri, s.lib.CKO_PRIVATE_KEY);
  const pub = findObject(s, uri, s.lib.CKO_PUBLIC_KEY);
  const [params, point] = onToken('reading the public key', () =>
    s.p11
      .C_GetAttributeValue(s.session, pub, [{ type: s.lib.CKA_EC_PARAMS }, { type: s.lib.CKA_EC_POINT }])
      .map((a) => a.value as Buffer),
  );
  const curve = curveOfParams(params);
  const publicKey = publicKeyOf(ecPoint(point as Buffer, curve), curve);
  const full = { ...uri, type: 'private' as const };
  return new Pkcs11EcSigner(s, priv, keyIdOf(full), curve, publicKey, formatPkcs11Uri(full));
}

/**
 * Generates an ECDSA key pair in the token (CKA_TOKEN, private half sensitive and not extractable), labelled
 * `uri.object` with CKA_ID `uri.id` (random 16 bytes when absent), and opens it. For token-key rotation and
 * for setting a token up (`vouchsafe keys` and the tests).
 */
export function generatePkcs11Signer(uri: Pkcs11Uri, curve: EcCurve): EcSigner {
  if (uri.object === undefined)
    throw new InvalidArgument('keys.pkcs11.uri', 'a generated key needs object= (its label)');
  const s = tokenSession(uri);
  const id = Buffer.from(uri.id ?? randomBytes(16));
  const l = s.lib;
  const common = [
    { type: l.CKA_TOKEN, value: true },
    { type: l.CKA_LABEL, value: uri.object },
    { type: l.CKA_ID, value: id },
  ];
  onToken('EC key generation', () =>
    s.p11.C_GenerateKeyPair(
      s.session,
      { mechanism: l.CKM_EC_KEY_PAIR_GEN },
      [
        ...common,
        { type: l.CKA_EC_PARAMS, value: Buffer.from(EC_PARAMS[curve], 'hex') },
        { type: l.CKA_VERIFY, value: true },
      ],
      [
        ...common,
        { type: l.CKA_PRIVATE, value: true },
        { type: l.CKA_SENSITIVE, value: true },
        { type: l.CKA_EXTRACTABLE, value: false },
        { type: l.CKA_SIGN, value: true },
      ],
    ),
  );
  return openPkcs11Signer({ ...uri, id: new Uint8Array(id) });
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Format byte of a token-wrapped blob: 0x02 || iv (12) || ciphertext || tag (16). (0x01 is the file KEK's.) */
const FORMAT_PKCS11_AESGCM = 0x02;

/**
 * The KEK as an AES-256 key in the token: CKM_AES_GCM (NIST SP 800-38D) with a fresh random 96-bit IV per
 * encryption and a 128-bit tag, the AAD bound as for the file KEK. SoftHSM2 (2.6) offers both CKM_AES_GCM
 * and CKM_AES_KEY_WRAP_PAD (RFC 5649); GCM is used because the broker's wrapped values are byte strings with
 * AAD (the sealing key's instance binding), which RFC 5649 wrapping cannot bind, and wrapping would need each
 * sealing key to be a token object first.
 */
class Pkcs11AesGcmKek implements WrappingKey {
  constructor(
    private readonly s: TokenSession,
    private readonly handle: P11.Handle,
    readonly id: string,
  ) {}

  private params(iv: Buffer, aad: Uint8Array): P11.Mechanism {
    const l = this.s.lib;
    return {
      mechanism: l.CKM_AES_GCM,
      parameter: {
        type: l.CK_PARAMS_AES_GCM,
        iv,
        aad: Buffer.from(aad),
        ivBits: IV_BYTES * 8,
        tagBits: TAG_BYTES * 8,
      } as P11.AesGCM,
    };
  }

  encrypt(plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    try {
      const iv = randomBytes(IV_BYTES);
      const ctTag = onToken('AES-GCM encryption', () => {
        this.s.p11.C_EncryptInit(this.s.session, this.params(iv, aad), this.handle);
        return this.s.p11.C_Encrypt(
          this.s.session,
          Buffer.from(plaintext),
          Buffer.alloc(plaintext.length + TAG_BYTES),
        );
      });
      const out = new Uint8Array(1 + IV_BYTES + ctTag.length);
      out[0] = FORMAT_PKCS11_AESGCM;
      out.set(iv, 1);
      out.set(ctTag, 1 + IV_BYTES);
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  decrypt(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array> {
    const unwrapFailed = () =>
      new InvalidArgument('broker.kek.unwrap_failed', 'sealing key does not decrypt under this KEK');
    if (wrapped.length < 1 + IV_BYTES + TAG_BYTES || wrapped[0] !== FORMAT_PKCS11_AESGCM) {
      return Promise.reject(
        new InvalidArgument('broker.kek.unwrap_failed', 'wrapped key has an unknown format'),
      );
    }
    const iv = Buffer.from(wrapped.subarray(1, 1 + IV_BYTES));
    const ctTag = Buffer.from(wrapped.subarray(1 + IV_BYTES));
    try {
      const pt = onToken(
        'AES-GCM decryption',
        () => {
          this.s.p11.C_DecryptInit(this.s.session, this.params(iv, aad), this.handle);
          return this.s.p11.C_Decrypt(this.s.session, ctTag, Buffer.alloc(ctTag.length));
        },
        // The token checks the tag and returns nothing on a mismatch (CKR_ENCRYPTED_DATA_INVALID; some
        // modules say CKR_GENERAL_ERROR or CKR_FUNCTION_FAILED): unauthenticated bytes never come back.
        (ckr) =>
          ckr === 'CKR_ENCRYPTED_DATA_INVALID' ||
          ckr === 'CKR_ENCRYPTED_DATA_LEN_RANGE' ||
          ckr === 'CKR_GENERAL_ERROR' ||
          ckr === 'CKR_FUNCTION_FAILED'
            ? unwrapFailed()
            : undefined,
      );
      const out = new Uint8Array(pt);
      pt.fill(0);
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }
}

/** Opens the AES KEK `uri` names (CKO_SECRET_KEY). Throws InvalidArgument `keys.pkcs11.*`. */
export function openPkcs11Kek(uri: Pkcs11Uri): WrappingKey {
  if (uri.type !== undefined && uri.type !== 'secret-key') {
    throw new InvalidArgument('keys.pkcs11.uri', 'a KEK is type=secret-key');
  }
  const s = tokenSession(uri);
  const handle = findObject(s, uri, s.lib.CKO_SECRET_KEY);
  return new Pkcs11AesGcmKek(s, handle, keyIdOf({ ...uri, type: 'secret-key' }));
}

/** Generates an AES-256 KEK in the token (sensitive, not extractable) labelled `uri.object`, and opens it. */
export function generatePkcs11Kek(uri: Pkcs11Uri): WrappingKey {
  if (uri.object === undefined)
    throw new InvalidArgument('keys.pkcs11.uri', 'a generated key needs object= (its label)');
  const s = tokenSession(uri);
  const l = s.lib;
  const id = Buffer.from(uri.id ?? randomBytes(16));
  onToken('AES key generation', () =>
    s.p11.C_GenerateKey(s.session, { mechanism: l.CKM_AES_KEY_GEN }, [
      { type: l.CKA_CLASS, value: l.CKO_SECRET_KEY },
      { type: l.CKA_KEY_TYPE, value: l.CKK_AES },
      { type: l.CKA_VALUE_LEN, value: 32 },
      { type: l.CKA_TOKEN, value: true },
      { type: l.CKA_PRIVATE, value: true },
      { type: l.CKA_SENSITIVE, value: true },
      { type: l.CKA_EXTRACTABLE, value: false },
      { type: l.CKA_ENCRYPT, value: true },
      { type: l.CKA_DECRYPT, value: true },
      { type: l.CKA_LABEL, value: uri.object },
      { type: l.CKA_ID, value: id },
    ]),
  );
  return openPkcs11Kek({ ...uri, id: new Uint8Array(id) });
}
