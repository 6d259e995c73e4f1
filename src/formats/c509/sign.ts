import { constants, createPublicKey, KeyObject, sign } from 'node:crypto';
import { InvalidArgument, NotSupported } from '../../errors.js';
import { sigAlgEntry } from './algorithms.js';
import { type CborValue, encodeCbor, encodeCborSequence, isArray, isBytes } from './cbor.js';
import { curveSize } from './certificate.js';
import { csrFromValue } from './csr.js';
import { extensionsFromC509 } from './extensions.js';
import { type C509PublicKey, c509PublicKeyFromKeyObject } from './keys.js';
import { type C509Name, checkC509Name } from './name.js';
import { EXTENSIONS, lookupOid } from './registry.js';

/**
 * Natively signed C509 certificates and requests (type 2, draft-ietf-cose-cbor-encoded-cert-20 §3.1.12, §4.1):
 * the signature is computed over the CBOR sequence of the TBS elements (no array header).
 */

export interface C509TbsCertificate {
  /** certificateSerialNumber magnitude: no leading zero octets (§3.1.2). */
  readonly serialNumber: Uint8Array;
  /** null when the issuer equals the subject (self-signed). */
  readonly issuer: C509Name | null;
  readonly notBefore: number;
  /** null for 99991231235959Z (no expiry). */
  readonly notAfter: number | null;
  readonly subject: C509Name;
  readonly subjectPublicKey: KeyObject | C509PublicKey;
  /** The C509 `extensions` field (pairs or a lone keyUsage int); use specific encodings for registered ones. */
  readonly extensions: CborValue;
}

export interface C509TbsCsr {
  readonly subject: C509Name;
  /** Defaults to the public half of the signing key. */
  readonly subjectPublicKey?: KeyObject | C509PublicKey;
  /** Flat (attributeType, attributeValue) pairs, e.g. [0, extensions]. */
  readonly attributes: CborValue[];
}

export interface SignOptions {
  /** C509 signature algorithm; default from the key (Ed25519 12, Ed448 13, P-256 0, P-384 1, P-521 2, RSA 23). */
  readonly signatureAlgorithm?: number;
  /** Point-compress an EC subject key given as a KeyObject (0x02/0x03). Default false. */
  readonly compressPoints?: boolean;
}

const EC_DEFAULTS: Record<string, number> = Object.assign(Object.create(null), {
  prime256v1: 0,
  secp384r1: 1,
  secp521r1: 2,
  brainpoolP256r1: 0,
  brainpoolP384r1: 1,
  brainpoolP512r1: 2,
});

/** The C509 signature algorithm used for a private key when none is given. */
export function defaultSignatureAlgorithm(key: KeyObject): number {
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return 12;
    case 'ed448':
      return 13;
    case 'rsa':
      return 23;
    case 'rsa-pss':
      return 26;
    case 'ec': {
      const v = EC_DEFAULTS[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (v !== undefined) return v;
      break;
    }
  }
  throw new NotSupported(
    'c509.alg_unsupported',
    `no C509 signature algorithm for a ${key.asymmetricKeyType} key`,
  );
}

/** Signs `data` with the C509 signature algorithm `alg`; returns the C509 issuerSignatureValue. */
export function signC509Data(alg: number, data: Uint8Array, key: KeyObject | undefined): Uint8Array {
  const entry = sigAlgEntry(alg);
  if (entry === undefined)
    throw new NotSupported('c509.alg_unsupported', `C509 signature algorithm ${alg} is not registered`);
  const s = entry.scheme;
  if (s.kind === 'unsigned') return new Uint8Array(0);
  if (key === undefined || key.type !== 'private')
    throw new InvalidArgument('c509.key.type', 'signing needs a private key');
  const kt = key.asymmetricKeyType;
  const mismatch = (): never => {
    throw new InvalidArgument('c509.key_mismatch', `a ${kt} key cannot produce ${entry.name}`);
  };
  switch (s.kind) {
    case 'eddsa':
      if (kt !== s.keyType) mismatch();
      return new Uint8Array(sign(null, data, key));
    case 'ecdsa':
      if (kt !== 'ec' || curveSize(key) === undefined) mismatch();
      return new Uint8Array(sign(s.hash, data, { key, dsaEncoding: 'ieee-p1363' }));
    case 'rsa-pkcs1':
      if (kt !== 'rsa') mismatch();
      return new Uint8Array(sign(s.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }));
    case 'rsa-pss':
      if (kt !== 'rsa' && kt !== 'rsa-pss') mismatch();
      return new Uint8Array(
        sign(s.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: s.saltLength }),
      );
    case 'pop-hmac':
      throw new NotSupported(
        'c509.alg_unsupported',
        'producing an ECDH proof-of-possession is not implemented',
      );
    default:
      throw new NotSupported('c509.alg_unsupported', s.why);
  }
}

function publicKeyFields(k: KeyObject | C509PublicKey, compress: boolean): C509PublicKey {
  return k instanceof KeyObject ? c509PublicKeyFromKeyObject(k, { compress }) : k;
}

/** Native certificates MUST use the specific encoding of a registered extension (§3.7). */
function checkNativeExtensions(v: CborValue): void {
  extensionsFromC509(v);
  if (!isArray(v)) return;
  for (let i = 0; i < v.length; i += 2) {
    const id = v[i]!;
    if (isBytes(id) && lookupOid(EXTENSIONS, id) !== undefined) {
      throw new InvalidArgument(
        'c509.native.generic_extension',
        'a registered extension must use its C509 int in a native certificate',
      );
    }
  }
}

/**
 * Builds and signs a natively signed C509 certificate (type 2). The signature is over the CBOR sequence of
 * the ten TBSCertificate elements (§3.1.12). Ed25519, Ed448, ECDSA (P-256/384/521, brainpool) and RSA
 * (PKCS#1 v1.5, PSS with SHA-2) keys are supported; `signatureAlgorithm: 5` produces an unsigned certificate.
 *
 * Throws InvalidArgument `c509.serial`, `c509.key_mismatch`, `c509.native.generic_extension`; NotSupported
 * `c509.alg_unsupported`; MalformedEvidence `c509.name.*` / `c509.ext.*` for malformed fields.
 */
export function signC509Certificate(
  tbs: C509TbsCertificate,
  issuerKey: KeyObject | undefined,
  opts: SignOptions = {},
): Uint8Array {
  if (tbs.serialNumber.length > 0 && tbs.serialNumber[0] === 0) {
    throw new InvalidArgument('c509.serial', 'serialNumber must not have leading zero octets');
  }
  if (
    !Number.isSafeInteger(tbs.notBefore) ||
    tbs.notBefore < 0 ||
    (tbs.notAfter !== null && (!Number.isSafeInteger(tbs.notAfter) || tbs.notAfter < 0))
  ) {
    throw new InvalidArgument('c509.time', 'validity times are non-negative integer seconds');
  }
  if (tbs.issuer !== null) checkC509Name(tbs.issuer, 'issuer', true);
  checkC509Name(tbs.subject, 'subject', true);
  checkNativeExtensions(tbs.extensions);
  const alg = opts.signatureAlgorithm ?? (issuerKey ? defaultSignatureAlgorithm(issuerKey) : 5);
  const pk = publicKeyFields(tbs.subjectPublicKey, opts.compressPoints === true);
  const elements: CborValue[] = [
    2,
    tbs.serialNumber,
    alg,
    tbs.issuer,
    tbs.notBefore,
    tbs.notAfter,
    tbs.subject,
    pk.algorithm,
    pk.value,
    tbs.extensions,
  ];
  const signature = signC509Data(alg, encodeCborSequence(elements), issuerKey);
  return encodeCbor([...elements, signature]);
}

/**
 * Builds and signs a natively signed C509 certification request (type 2, §4.1) with the subject's private
 * key. Throws as {@link signC509Certificate}.
 */
export function signC509Csr(
  tbs: C509TbsCsr,
  subjectKey: KeyObject | undefined,
  opts: SignOptions = {},
): Uint8Array {
  const alg = opts.signatureAlgorithm ?? (subjectKey ? defaultSignatureAlgorithm(subjectKey) : 5);
  const pkSource = tbs.subjectPublicKey ?? (subjectKey ? createPublicKey(subjectKey) : undefined);
  if (pkSource === undefined)
    throw new InvalidArgument('c509.key.type', 'an unsigned request needs subjectPublicKey');
  const pk = publicKeyFields(pkSource, opts.compressPoints === true);
  const elements: CborValue[] = [2, alg, tbs.subject, pk.algorithm, pk.value, tbs.attributes];
  // structural validation of the whole request before signing
  csrFromValue([...elements, new Uint8Array(0)]);
  const signature = signC509Data(alg, encodeCborSequence(elements), subjectKey);
  return encodeCbor([...elements, signature]);
}
