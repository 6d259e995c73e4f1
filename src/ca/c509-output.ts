import { createPublicKey } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import { isArray, isBytes } from '../formats/c509/cbor.js';
import {
  type CborValue,
  c509PublicKeyFromKeyObject,
  encodeCbor,
  encodeCborSequence,
  parseC509Certificate,
  x509ToC509,
} from '../formats/c509/index.js';
import { EXTENSIONS, lookupOid } from '../formats/c509/registry.js';
import { parseCertificate } from '../formats/x509/certificate.js';
import { type SignatureAlgorithm, signatureAlgorithm } from './algorithms.js';
import type { CaKeyStore } from './key-store.js';

/**
 * Certificates in C509 form (draft-ietf-cose-cbor-encoded-cert-20), converted with src/formats/c509:
 * - type 3: the X.509 certificate re-encoded, byte-exact invertible; the signature is the X.509 one.
 * - type 2: the same fields natively signed by the CA key over the CBOR TBS sequence (§3.1.12), with the
 *   subject key point-compressed (02/03) as native certificates use it. Same serial, issuer, validity,
 *   subject, key and extensions as the X.509 certificate, so a revocation of the serial covers both.
 */

export type OutputFormat = 'x509' | 'c509-type2' | 'c509-type3';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['x509', 'c509-type2', 'c509-type3'];

export function checkOutputFormat(f: unknown): OutputFormat {
  if (typeof f !== 'string' || !OUTPUT_FORMATS.includes(f as OutputFormat)) {
    throw new InvalidArgument('ca.format', `format must be one of ${OUTPUT_FORMATS.join(', ')}`);
  }
  return f as OutputFormat;
}

/** C509 type 3 of an issued X.509 certificate. */
export function toC509Type3(der: Uint8Array, issuerKey: CaKeyStore): Uint8Array {
  return x509ToC509(der, { issuerPublicKey: issuerKey.publicKey });
}

/**
 * Natively signed C509 (type 2) with the fields of `der`. Throws NotSupported `c509.*` when the certificate
 * has no C509 form, InvalidArgument `ca.c509.generic_extension` when a registered extension could not take
 * its specific C509 encoding (§3.7 requires it in native certificates).
 */
export async function toC509Type2(
  der: Uint8Array,
  alg: SignatureAlgorithm,
  key: CaKeyStore,
): Promise<Uint8Array> {
  const t3 = parseC509Certificate(toC509Type3(der, key));
  const spki = c509PublicKeyFromKeyObject(
    createPublicKey({ key: Buffer.from(subjectPublicKeyInfoOf(der)), format: 'der', type: 'spki' }),
    { compress: true },
  );
  checkNativeExtensions(t3.extensions);
  const elements: CborValue[] = [
    2,
    t3.serialNumber,
    signatureAlgorithm(alg).c509,
    t3.issuer === null ? null : nativeName(t3.issuer),
    t3.notBefore,
    t3.notAfter,
    nativeName(t3.subject),
    spki.algorithm,
    spki.value,
    t3.extensions,
  ];
  const signature = await key.sign(encodeCborSequence(elements), alg);
  return encodeCbor([...elements, signature]);
}

/**
 * Names in native form (§3.1.4): attribute type ints are non-negative. A negative int marks a DER
 * PrintableString in type 3; a natively signed certificate has no DER string types, so the value is the
 * same text under the positive int.
 */
function nativeName(n: CborValue): CborValue {
  if (!isArray(n)) return n;
  return n.map((x, i) => (i % 2 === 0 && typeof x === 'number' && x < 0 ? -x : x));
}

function checkNativeExtensions(v: CborValue): void {
  if (!isArray(v)) return;
  for (let i = 0; i < v.length; i += 2) {
    const id = v[i]!;
    if (isBytes(id) && lookupOid(EXTENSIONS, id) !== undefined) {
      throw new InvalidArgument(
        'ca.c509.generic_extension',
        'a registered extension has no specific C509 encoding',
      );
    }
  }
}

function subjectPublicKeyInfoOf(der: Uint8Array): Uint8Array {
  return parseCertificate(der).subjectPublicKeyInfo;
}
