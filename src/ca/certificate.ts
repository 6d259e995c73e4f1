import { randomBytes } from 'node:crypto';
import {
  bitString,
  type Der,
  ecdsaP1363ToDer,
  explicit,
  integer,
  sequence,
  time,
  unsignedInteger,
} from '../formats/der/writer.js';
import { encodeExtensionList } from '../formats/x509/extension-builders.js';
import type { Extension } from '../formats/x509/extensions.js';
import { algorithmIdentifier, type SignatureAlgorithm, signatureAlgorithm } from './algorithms.js';
import type { CaKeyStore } from './key-store.js';

/**
 * X.509 v3 certificate assembly (RFC 5280 §4.1): the TBSCertificate is encoded here, signed by the
 * {@link CaKeyStore}, and wrapped with the signature algorithm and value.
 */

export interface TbsCertificateInput {
  /** Unsigned big-endian serial number, 1..20 bytes (RFC 5280 §4.1.2.2). */
  readonly serialNumber: Uint8Array;
  readonly signatureAlgorithm: SignatureAlgorithm;
  /** DER Name of the issuer (the CA certificate's subject, byte for byte). */
  readonly issuer: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER Name; `30 00` for the empty subject of TCG EK certificates. */
  readonly subject: Uint8Array;
  /** DER SubjectPublicKeyInfo. */
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly extensions: readonly Extension[];
}

/** Encodes a v3 TBSCertificate. */
export function encodeTbsCertificate(t: TbsCertificateInput): Der {
  return sequence(
    explicit(0, integer(2)), // v3
    unsignedInteger(t.serialNumber),
    algorithmIdentifier(signatureAlgorithm(t.signatureAlgorithm)),
    t.issuer,
    sequence(time(t.notBefore), time(t.notAfter)),
    t.subject,
    t.subjectPublicKeyInfo,
    ...(t.extensions.length > 0 ? [explicit(3, encodeExtensionList(t.extensions))] : []), // [3] EXPLICIT
  );
}

/** The X.509 signature value for `alg`: ECDSA as DER Ecdsa-Sig-Value, RSA as is. */
export function x509SignatureValue(sig: Uint8Array, alg: SignatureAlgorithm): Uint8Array {
  return signatureAlgorithm(alg).keyKind === 'ec' ? ecdsaP1363ToDer(sig) : sig;
}

/** Signs a TBS structure (certificate or CRL) and returns the outer SEQUENCE {tbs, algorithm, signature}. */
export async function signTbs(tbs: Uint8Array, alg: SignatureAlgorithm, key: CaKeyStore): Promise<Der> {
  const sig = await key.sign(tbs, alg);
  return sequence(tbs, algorithmIdentifier(signatureAlgorithm(alg)), bitString(x509SignatureValue(sig, alg)));
}

/** Encodes and signs a certificate. */
export async function signCertificate(t: TbsCertificateInput, key: CaKeyStore): Promise<Der> {
  return signTbs(encodeTbsCertificate(t), t.signatureAlgorithm, key);
}

/**
 * A fresh serial number: 16 random bytes with the top bit clear (positive) and the second-highest bit set (so
 * the DER INTEGER is always exactly 16 bytes). 126 bits of entropy, above the CA/B Forum's 64.
 */
export function newSerialNumber(): Uint8Array {
  const b = new Uint8Array(randomBytes(16));
  b[0] = (b[0]! & 0x3f) | 0x40;
  return b;
}
