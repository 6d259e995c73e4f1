import { constants, createHash, createHmac, diffieHellman, KeyObject, verify } from 'node:crypto';
import { InvalidArgument, MalformedEvidence, NotSupported, SignatureInvalid } from '../../errors.js';
import { bytesEqual, ctEqual } from '../../util/bytes.js';
import { children, sequence } from '../der/reader.js';
import { sigAlgEntry } from './algorithms.js';
import { type CborValue, encodeCbor, isArray, isBytes } from './cbor.js';
import {
  type C509Certificate,
  c509ToX509,
  curveSize,
  encodeC509Certificate,
  parseC509Certificate,
  x509ToC509,
} from './certificate.js';
import { type C509Csr, c509CsrToX509, encodeC509Csr, parseC509Csr } from './csr.js';
import { C509_DER, parseDer } from './der-input.js';
import { c509PublicKey } from './keys.js';
import { nameToDer } from './name.js';
import type { SigScheme } from './registry.js';

/**
 * Signature and proof-of-possession checks for C509 certificates and requests
 * (draft-ietf-cose-cbor-encoded-cert-20 §3.1.12, §4.1, §4.2; RFC 6955 for the ECDH PoP algorithms 14-16).
 *
 * Type 2 signatures cover the CBOR sequence of the TBS elements; type 3 signatures cover the DER
 * TBSCertificate / CertificationRequestInfo the C509 re-encodes. Algorithms node:crypto lacks (SM2, ECDSA and
 * RSASSA-PSS with SHAKE, keys on FRP256v1) raise NotSupported `c509.alg_unsupported` — never a silent pass.
 */

export interface VerifyOptions {
  /**
   * Accept the id-alg-unsigned algorithm (5) with an empty signature. Off by default: an unsigned certificate
   * or request proves nothing, so accepting one is an explicit choice (e.g. a trust anchor delivered out of band).
   */
  readonly allowUnsigned?: boolean;
}

const KEY_TYPES: Record<string, readonly string[]> = Object.assign(Object.create(null), {
  ecdsa: ['ec'],
  'rsa-pkcs1': ['rsa'],
  'rsa-pss': ['rsa', 'rsa-pss'],
});

function keyMismatch(scheme: string, key: KeyObject): never {
  throw new InvalidArgument(
    'c509.key_mismatch',
    `a ${key.asymmetricKeyType} key cannot check a ${scheme} signature`,
  );
}

/** Checks `sig` over `data` with the C509 signature algorithm `sigAlg` and `key`. */
export function verifyC509Signature(
  sigAlg: CborValue,
  data: Uint8Array,
  sig: CborValue,
  key: KeyObject | undefined,
  opts: VerifyOptions = {},
): void {
  const entry = sigAlgEntry(sigAlg);
  if (entry === undefined)
    throw new NotSupported('c509.alg_unsupported', 'signature algorithm not in the C509 registry');
  const s: SigScheme = entry.scheme;
  if (s.kind === 'unsigned') {
    if (opts.allowUnsigned !== true)
      throw new SignatureInvalid('c509.signature.unsigned', 'the item is unsigned (id-alg-unsigned)');
    if (!isBytes(sig) || sig.length !== 0)
      throw new SignatureInvalid('c509.signature.invalid', 'unsigned item with a signature value');
    return;
  }
  if (s.kind === 'unsupported' || s.kind === 'ecdsa-unsupported')
    throw new NotSupported('c509.alg_unsupported', s.why);
  if (s.kind === 'pop-hmac') {
    throw new InvalidArgument(
      'c509.pop_requires_recipient',
      'a proof-of-possession MAC needs the recipient key (verifyC509CsrPop)',
    );
  }
  if (!isBytes(sig)) throw new MalformedEvidence('c509.sig.shape', 'signature value must be a byte string');
  if (key === undefined || key.type !== 'public')
    throw new InvalidArgument('c509.key.type', 'expected a public key');
  const kt = key.asymmetricKeyType ?? '';
  let ok: boolean;
  try {
    switch (s.kind) {
      case 'eddsa':
        if (kt !== s.keyType) keyMismatch(entry.name, key);
        ok = verify(null, data, key, sig);
        break;
      case 'ecdsa': {
        if (!KEY_TYPES.ecdsa!.includes(kt)) keyMismatch(entry.name, key);
        const size = curveSize(key);
        if (size === undefined)
          throw new NotSupported('c509.alg_unsupported', 'ECDSA on this curve is not supported');
        ok = sig.length === 2 * size && verify(s.hash, data, { key, dsaEncoding: 'ieee-p1363' }, sig);
        break;
      }
      case 'rsa-pkcs1':
        if (!KEY_TYPES['rsa-pkcs1']!.includes(kt)) keyMismatch(entry.name, key);
        ok = verify(s.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
        break;
      case 'rsa-pss':
        if (!KEY_TYPES['rsa-pss']!.includes(kt)) keyMismatch(entry.name, key);
        ok = verify(
          s.hash,
          data,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: s.saltLength },
          sig,
        );
        break;
    }
  } catch (e) {
    if (e instanceof InvalidArgument || e instanceof NotSupported) throw e;
    ok = false;
  }
  if (!ok) throw new SignatureInvalid('c509.signature.invalid', `${entry.name} signature does not verify`);
}

function asCert(c: Uint8Array | C509Certificate): C509Certificate {
  return c instanceof Uint8Array ? parseC509Certificate(c) : c;
}

/** The public key a certificate certifies (its subjectPublicKey), as a KeyObject. */
export function c509CertificateKey(c: Uint8Array | C509Certificate): KeyObject {
  const cert = asCert(c);
  return c509PublicKey(cert.subjectPublicKeyAlgorithm, cert.subjectPublicKey);
}

/**
 * Verifies a C509 certificate's signature (type 2 over its CBOR TBS sequence, type 3 over the DER
 * TBSCertificate it re-encodes) with the issuer's key, given as a KeyObject or as the issuer's C509 certificate
 * (pass the certificate itself for a self-signed one). Signature only: validity, names and path are the caller's.
 *
 * Throws SignatureInvalid `c509.signature.invalid` / `c509.signature.unsigned`; NotSupported
 * `c509.alg_unsupported`; InvalidArgument `c509.key_mismatch`; MalformedEvidence for a malformed certificate.
 */
export function verifyC509Certificate(
  cert: Uint8Array | C509Certificate,
  issuer: KeyObject | Uint8Array | C509Certificate,
  opts: VerifyOptions = {},
): void {
  const c = asCert(cert);
  const entry = sigAlgEntry(c.signatureAlgorithm);
  if (entry?.scheme.kind === 'pop-hmac') {
    throw new MalformedEvidence(
      'c509.cert.pop_algorithm',
      'a proof-of-possession algorithm cannot sign a certificate',
    );
  }
  // Unsupported algorithms are reported before the key is loaded (FRP256v1 keys cannot be loaded at all).
  if (
    entry !== undefined &&
    (entry.scheme.kind === 'unsupported' || entry.scheme.kind === 'ecdsa-unsupported')
  ) {
    throw new NotSupported('c509.alg_unsupported', entry.scheme.why);
  }
  const data = c.type === 2 ? c.tbs : canonicalTbs(c);
  if (entry?.scheme.kind === 'unsigned') {
    verifyC509Signature(c.signatureAlgorithm, data, c.signatureValue, undefined, opts);
    return;
  }
  const key = issuer instanceof KeyObject ? issuer : c509CertificateKey(issuer);
  verifyC509Signature(c.signatureAlgorithm, data, c.signatureValue, key, opts);
}

/**
 * The DER TBSCertificate a type 3 certificate's signature covers. Going through {@link c509ToX509} also
 * requires the C509 to be the canonical encoding of that DER, so only one C509 form of a certificate verifies.
 */
function canonicalTbs(c: C509Certificate): Uint8Array {
  return children(parseDer(c509ToX509(encodeC509Certificate(c))), C509_DER)[0]!.raw;
}

/** The DER CertificationRequestInfo of a type 3 request, from its canonical C509 form only. */
function canonicalCri(c: C509Csr): Uint8Array {
  return children(parseDer(c509CsrToX509(encodeC509Csr(c))), C509_DER)[0]!.raw;
}

function asCsr(c: Uint8Array | C509Csr): C509Csr {
  return c instanceof Uint8Array ? parseC509Csr(c) : c;
}

/** The public key a request asks to certify. */
export function c509CsrKey(c: Uint8Array | C509Csr): KeyObject {
  const csr = asCsr(c);
  return c509PublicKey(csr.subjectPublicKeyAlgorithm, csr.subjectPublicKey);
}

/**
 * The recipient of an RFC 6955 static-ECDH proof of possession (algorithms 14-16): the CA's key-agreement
 * private key and the certificate for its public key that the requester used — a C509 certificate (either
 * type) for type 2 requests, the DER X.509 certificate (or its C509 type 3 form) for type 3 requests.
 */
export interface PopRecipient {
  readonly privateKey: KeyObject;
  readonly certificate: Uint8Array;
}

/**
 * Verifies a C509 request's proof of possession: its signature with the requested key, or for algorithms
 * 14-16 the static-ECDH MAC (RFC 6955 §4 with the C509 DhSigStatic of §4.2): ZZ = ECDH(recipient private,
 * requested public), K = H(subject || ZZ || issuer) of the recipient certificate (CBOR names for type 2, DER
 * names for type 3), MAC = HMAC-H(K, TBS). The MAC is compared in constant time.
 *
 * Throws SignatureInvalid `c509.signature.invalid` / `c509.signature.unsigned`; NotSupported
 * `c509.alg_unsupported`; InvalidArgument `c509.pop_requires_recipient`, `c509.pop.recipient_mismatch`.
 */
export function verifyC509Csr(
  csr: Uint8Array | C509Csr,
  opts: VerifyOptions & { pop?: PopRecipient } = {},
): void {
  const c = asCsr(csr);
  const entry = sigAlgEntry(c.signatureAlgorithm);
  if (
    entry !== undefined &&
    (entry.scheme.kind === 'unsupported' || entry.scheme.kind === 'ecdsa-unsupported')
  ) {
    throw new NotSupported('c509.alg_unsupported', entry.scheme.why);
  }
  const data = c.type === 2 ? c.tbs : canonicalCri(c);
  if (entry?.scheme.kind === 'pop-hmac') {
    if (opts.pop === undefined) {
      throw new InvalidArgument(
        'c509.pop_requires_recipient',
        'a proof-of-possession MAC needs the recipient key and certificate',
      );
    }
    verifyPop(c, data, entry.scheme.hash, opts.pop);
    return;
  }
  if (entry?.scheme.kind === 'unsigned') {
    verifyC509Signature(c.signatureAlgorithm, data, c.signatureValue, undefined, opts);
    return;
  }
  verifyC509Signature(c.signatureAlgorithm, data, c.signatureValue, c509CsrKey(c), opts);
}

function verifyPop(
  c: C509Csr,
  data: Uint8Array,
  hash: 'sha256' | 'sha384' | 'sha512',
  r: PopRecipient,
): void {
  if (r.privateKey.type !== 'private')
    throw new InvalidArgument('c509.key.type', 'the PoP recipient key must be private');
  // The recipient certificate's names: CBOR for natively signed requests, DER for re-encoded PKCS#10 requests.
  const isDer = r.certificate[0] === 0x30;
  let leading: Uint8Array;
  let trailing: Uint8Array;
  let serial: Uint8Array;
  if (c.type === 2) {
    const cert = parseC509Certificate(isDer ? x509ToC509(r.certificate) : r.certificate);
    leading = encodeCbor(cert.subject);
    trailing = encodeCbor(cert.issuer === null ? cert.subject : cert.issuer);
    serial = cert.serialNumber;
  } else {
    const der = isDer ? r.certificate : c509ToX509(r.certificate);
    const tbs = sequence(sequence(parseDer(der), C509_DER)[0], C509_DER);
    if (tbs.length < 7) throw new MalformedEvidence('c509.der.structure', 'recipient TBSCertificate');
    leading = tbs[5]!.raw;
    trailing = tbs[3]!.raw;
    serial = parseC509Certificate(x509ToC509(der)).serialNumber;
  }
  let hashValue: CborValue = c.signatureValue;
  if (isArray(hashValue)) {
    // DhSigStatic with issuerAndSerial: it must name the recipient certificate (RFC 6955 §4)
    const [issuer, sn, h] = hashValue;
    const named = c.type === 2 ? encodeCbor(issuer!) : nameToDer(issuer!, 'DhSigStatic issuer');
    if (!bytesEqual(named, trailing) || !isBytes(sn!) || !bytesEqual(sn, serial)) {
      throw new InvalidArgument(
        'c509.pop.recipient_mismatch',
        'the request names a different recipient certificate',
      );
    }
    hashValue = h!;
  }
  if (!isBytes(hashValue))
    throw new MalformedEvidence('c509.sig.shape', 'DhSigStatic hashValue must be bytes');
  let zz: Buffer;
  try {
    zz = diffieHellman({ privateKey: r.privateKey, publicKey: c509CsrKey(c) });
  } catch (e) {
    if (e instanceof NotSupported) throw e;
    throw new InvalidArgument('c509.key_mismatch', 'the recipient key cannot agree with the requested key');
  }
  const k = createHash(hash).update(leading).update(zz).update(trailing).digest();
  const mac = new Uint8Array(createHmac(hash, k).update(data).digest());
  if (!ctEqual(mac, hashValue))
    throw new SignatureInvalid('c509.signature.invalid', 'proof-of-possession MAC does not verify');
}
