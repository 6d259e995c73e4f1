import { createHash, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { InvalidArgument } from '../errors.js';

/** The ECDSA curves a Vouchsafe key may be on (CA, EAR tokens: P-256 or P-384; broker responses: P-384). */
export type EcCurve = 'P-256' | 'P-384';
/** The hashes the callers sign with (the CA, JWS ES256/ES384, the broker's SHA-384 response signature). */
export type SignHash = 'sha256' | 'sha384';

/** Per curve: Node's curve name and the width of r and of s in an IEEE P1363 signature (SEC 1 v2 §2.3.7). */
export const EC_CURVES: Readonly<
  Record<EcCurve, { readonly nodeCurve: string; readonly scalarBytes: number }>
> = Object.freeze({
  'P-256': { nodeCurve: 'prime256v1', scalarBytes: 32 },
  'P-384': { nodeCurve: 'secp384r1', scalarBytes: 48 },
});

/**
 * An ECDSA signing key wherever it lives (a PEM file held as a KeyObject, or a PKCS#11 token where it never
 * leaves the token). The signature is IEEE P1363 r || s, fixed width: what CKM_ECDSA returns (PKCS#11 v2.40
 * Current Mechanisms §2.3.1) and what every caller wants — JWS ES256/ES384 (RFC 7518 §3.4) and the broker's
 * 0.2.0 response signature use it as is, and the CA DER-encodes it for X.509 itself (src/ca/certificate.ts).
 *
 * `sign` is synchronous on purpose: a PKCS#11 C_SignInit/C_Sign pair then runs without another caller's
 * operation on the same session in between (a session holds one operation at a time, PKCS#11 v2.40 §5.2).
 */
export interface EcSigner {
  /** A stable, non-secret identifier: `file:<spki sha256 prefix>` or the key's `pkcs11:` URI. */
  readonly id: string;
  readonly curve: EcCurve;
  readonly publicKey: KeyObject;
  /**
   * How to open the key again, when it is not held in memory: its `pkcs11:` URI with module-path and
   * pin-source (never a PIN), e.g. for the token key file's record of a key generated in the token.
   */
  readonly ref?: string;
  /** ECDSA over `hash(data)`: IEEE P1363 r || s. */
  sign(hash: SignHash, data: Uint8Array): Uint8Array;
  /**
   * The same off the event loop, when the key allows it (a KeyObject: on libuv's thread pool). Absent for a
   * PKCS#11 key, whose operations must not interleave on its session (see above).
   */
  signAsync?(hash: SignHash, data: Uint8Array): Promise<Uint8Array>;
}

/** The curve of an EC key, or undefined for any other key. */
export function curveOf(key: KeyObject): EcCurve | undefined {
  if (key.asymmetricKeyType !== 'ec') return undefined;
  const c = key.asymmetricKeyDetails?.namedCurve;
  return (Object.keys(EC_CURVES) as EcCurve[]).find((k) => EC_CURVES[k].nodeCurve === c);
}

/** A short, stable, non-secret name for a public key: the SHA-256 of its SPKI DER, 16 hex digits. */
export function publicKeyId(publicKey: KeyObject): string {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex').slice(0, 16);
}

/** A signer over a private KeyObject (the file-based default). Throws InvalidArgument `keys.curve`. */
export function keyObjectSigner(privateKey: KeyObject): EcSigner {
  const curve = privateKey.type === 'private' ? curveOf(privateKey) : undefined;
  if (!curve)
    throw new InvalidArgument('keys.curve', 'a signing key must be an ECDSA P-256 or P-384 private key');
  const publicKey = createPublicKey(privateKey);
  const key = { key: privateKey, dsaEncoding: 'ieee-p1363' } as const;
  return {
    id: `file:${publicKeyId(publicKey)}`,
    curve,
    publicKey,
    sign: (hash, data) => new Uint8Array(sign(hash, data, key)),
    signAsync: (hash, data) =>
      new Promise((resolve, reject) =>
        sign(hash, data, key, (err, sig) => (err ? reject(err) : resolve(new Uint8Array(sig)))),
      ),
  };
}

/** `key` as a signer: a private KeyObject is wrapped ({@link keyObjectSigner}), a signer is returned as is. */
export function toSigner(key: KeyObject | EcSigner): EcSigner {
  return 'sign' in key && typeof key.sign === 'function' && 'curve' in key
    ? key
    : keyObjectSigner(key as KeyObject);
}
