import type { KeyObject } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import { type Der, NULL, oid, sequence } from '../formats/der/writer.js';

/**
 * The CA's key types and signature algorithms, as null-prototype tables. X.509 identifiers from RFC 5758
 * §3.2 (ECDSA, parameters absent) and RFC 4055 §5 / RFC 8017 (PKCS #1 v1.5, parameters NULL); C509
 * integers from draft-ietf-cose-cbor-encoded-cert-20 §9.5 (signature algorithms).
 */

export type CaKeyType = 'p256' | 'p384' | 'rsa2048' | 'rsa3072';
export type SignatureAlgorithm = 'ecdsa-sha256' | 'ecdsa-sha384' | 'rsa-pkcs1-sha256' | 'rsa-pkcs1-sha384';

export interface SignatureAlgorithmInfo {
  readonly name: SignatureAlgorithm;
  readonly oid: string;
  /** node:crypto digest name. */
  readonly hash: 'sha256' | 'sha384';
  readonly keyKind: 'ec' | 'rsa';
  /** C509 signature algorithm integer. */
  readonly c509: number;
}

export interface KeyTypeInfo {
  readonly name: CaKeyType;
  readonly kind: 'ec' | 'rsa';
  /** node namedCurve (EC) or modulus length (RSA). */
  readonly curve?: 'P-256' | 'P-384';
  readonly modulusLength?: number;
  readonly signature: SignatureAlgorithm;
}

function table<T extends { name: string }>(rows: readonly T[]): Readonly<Record<string, T>> {
  const t: Record<string, T> = Object.create(null);
  for (const r of rows) t[r.name] = r;
  return Object.freeze(t);
}

export const SIGNATURE_ALGORITHMS = table<SignatureAlgorithmInfo>([
  { name: 'ecdsa-sha256', oid: '1.2.840.10045.4.3.2', hash: 'sha256', keyKind: 'ec', c509: 0 },
  { name: 'ecdsa-sha384', oid: '1.2.840.10045.4.3.3', hash: 'sha384', keyKind: 'ec', c509: 1 },
  { name: 'rsa-pkcs1-sha256', oid: '1.2.840.113549.1.1.11', hash: 'sha256', keyKind: 'rsa', c509: 23 },
  { name: 'rsa-pkcs1-sha384', oid: '1.2.840.113549.1.1.12', hash: 'sha384', keyKind: 'rsa', c509: 24 },
]);

/** Default signature algorithm per key type: the hash matches the key's strength (P-384 → SHA-384). */
export const KEY_TYPES = table<KeyTypeInfo>([
  { name: 'p256', kind: 'ec', curve: 'P-256', signature: 'ecdsa-sha256' },
  { name: 'p384', kind: 'ec', curve: 'P-384', signature: 'ecdsa-sha384' },
  { name: 'rsa2048', kind: 'rsa', modulusLength: 2048, signature: 'rsa-pkcs1-sha256' },
  { name: 'rsa3072', kind: 'rsa', modulusLength: 3072, signature: 'rsa-pkcs1-sha384' },
]);

export function signatureAlgorithm(name: string): SignatureAlgorithmInfo {
  const a = SIGNATURE_ALGORITHMS[name];
  if (a === undefined)
    throw new InvalidArgument('ca.signature_algorithm', `unknown signature algorithm ${name}`);
  return a;
}

export function keyType(name: string): KeyTypeInfo {
  const k = KEY_TYPES[name];
  if (k === undefined) {
    throw new InvalidArgument(
      'ca.key_type',
      `unknown key type ${name} (${Object.keys(KEY_TYPES).join(', ')})`,
    );
  }
  return k;
}

/** The key type of a KeyObject, or undefined when the CA cannot use it. */
export function keyTypeOf(key: KeyObject): CaKeyType | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    if (d?.namedCurve === 'prime256v1') return 'p256';
    if (d?.namedCurve === 'secp384r1') return 'p384';
  }
  if (key.asymmetricKeyType === 'rsa' && d?.publicExponent === 65537n) {
    if (d.modulusLength === 2048) return 'rsa2048';
    if (d.modulusLength === 3072) return 'rsa3072';
  }
  return undefined;
}

/** AlgorithmIdentifier DER for a signature algorithm (ECDSA: parameters absent; RSA: NULL). */
export function algorithmIdentifier(a: SignatureAlgorithmInfo): Der {
  return a.keyKind === 'ec' ? sequence(oid(a.oid)) : sequence(oid(a.oid), NULL);
}
