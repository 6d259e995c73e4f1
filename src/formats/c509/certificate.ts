import type { KeyObject } from 'node:crypto';
import { MalformedEvidence, NotSupported } from '../../errors.js';
import { bytesEqual } from '../../util/bytes.js';
import {
  ctx,
  decodeUtf8,
  expectTag,
  sequence,
  smallUint,
  Tag,
  type Tlv,
  unsignedBytes,
} from '../der/reader.js';
import { tlv, unsignedInteger } from '../der/writer.js';
import {
  algIdToC509,
  algIdToDer,
  type C509AlgorithmIdentifier,
  checkAlgId,
  ecdsaHalfLength,
  isEcdsaSignatureAlgorithm,
  publicKeyToC509,
  publicKeyToDer,
  signatureToC509,
  signatureToDer,
} from './algorithms.js';
import {
  type CborValue,
  decodeCbor,
  encodeCbor,
  encodeCborSequence,
  isArray,
  isBytes,
  isInt,
  isUint,
} from './cbor.js';
import { C509_DER, parseDer } from './der-input.js';
import { epochToTime, timeToEpoch } from './der-values.js';
import {
  extensionsFromC509,
  extensionsToC509,
  parseX509Extensions,
  x509ExtensionsDer,
} from './extensions.js';
import { type C509Name, checkC509Name, nameToC509, nameToDer } from './name.js';

/**
 * C509 certificates (draft-ietf-cose-cbor-encoded-cert-20 §3.1):
 *
 *   C509Certificate = [ TBSCertificate, issuerSignatureValue ]
 *   TBSCertificate  = ( c509CertificateType, certificateSerialNumber, issuerSignatureAlgorithm, issuer / null,
 *                       validityNotBefore, validityNotAfter / null, subject, subjectPublicKeyAlgorithm,
 *                       subjectPublicKey, extensions )
 *
 * Type 3 is the invertible re-encoding of a DER X.509 v3 certificate (the signature covers the DER); type 2 is
 * natively signed (the signature covers the CBOR sequence of the ten TBS elements).
 */

export interface C509Certificate {
  readonly type: 2 | 3;
  /** certificateSerialNumber magnitude, without leading zero octets. */
  readonly serialNumber: Uint8Array;
  readonly signatureAlgorithm: C509AlgorithmIdentifier;
  /** null: the issuer equals the subject. */
  readonly issuer: C509Name | null;
  /** Seconds since the epoch. */
  readonly notBefore: number;
  /** Seconds since the epoch; null stands for 99991231235959Z (no expiry). */
  readonly notAfter: number | null;
  readonly subject: C509Name;
  readonly subjectPublicKeyAlgorithm: C509AlgorithmIdentifier;
  readonly subjectPublicKey: CborValue;
  readonly extensions: CborValue;
  readonly signatureValue: CborValue;
  /** The TBSCertificate CBOR sequence (elements 0..9 without the array header): what type 2 signs. */
  readonly tbs: Uint8Array;
}

export type C509CertificateFields = Omit<C509Certificate, 'tbs'>;

function bad(reason: string, message: string): never {
  throw new MalformedEvidence(reason, message);
}

function epoch(v: CborValue, what: string): number {
  if (!isUint(v) || typeof v === 'bigint')
    bad('c509.cert.time', `${what} must be an unsigned integer of seconds`);
  return v as number;
}

/** The elements of a certificate in C509 order. */
export function certificateElements(c: C509CertificateFields): CborValue[] {
  return [
    c.type,
    c.serialNumber,
    c.signatureAlgorithm,
    c.issuer,
    c.notBefore,
    c.notAfter,
    c.subject,
    c.subjectPublicKeyAlgorithm,
    c.subjectPublicKey,
    c.extensions,
    c.signatureValue,
  ];
}

/** Structural validation of a decoded C509Certificate array (both types). */
export function certificateFromValue(v: CborValue): C509Certificate {
  if (!isArray(v) || v.length !== 11) bad('c509.cert.shape', 'a C509Certificate is an array of 11 elements');
  const [type, serial, sigAlg, issuer, nb, na, subject, pkAlg, pk, exts, sig] = v as CborValue[];
  if (type !== 2 && type !== 3) {
    if (!isInt(type!)) bad('c509.cert.shape', 'c509CertificateType must be an int');
    throw new NotSupported('c509.cert.type', `C509 certificate type ${type} is not supported (2 and 3 are)`);
  }
  const native = type === 2;
  if (!isBytes(serial!)) bad('c509.cert.serial', 'certificateSerialNumber must be a byte string');
  // §3.1.2: leading 0x00 octets are omitted
  if (serial.length > 0 && serial[0] === 0)
    bad('c509.cert.serial', 'certificateSerialNumber has a leading zero octet');
  checkAlgId(sigAlg!, 'issuerSignatureAlgorithm');
  if (issuer !== null) checkC509Name(issuer!, 'issuer', native);
  const notBefore = epoch(nb!, 'validityNotBefore');
  const notAfter = na === null ? null : epoch(na!, 'validityNotAfter');
  if (subject === null) bad('c509.cert.shape', 'subject must not be null');
  checkC509Name(subject!, 'subject', native);
  checkAlgId(pkAlg!, 'subjectPublicKeyAlgorithm');
  if (!isInt(exts!) && !(isArray(exts!) && exts.length % 2 === 0)) {
    bad('c509.ext.shape', 'extensions must be an array of pairs or an int');
  }
  const fields: C509CertificateFields = {
    type,
    serialNumber: serial,
    signatureAlgorithm: sigAlg!,
    issuer: issuer!,
    notBefore,
    notAfter,
    subject: subject!,
    subjectPublicKeyAlgorithm: pkAlg!,
    subjectPublicKey: pk!,
    extensions: exts!,
    signatureValue: sig!,
  };
  return { ...fields, tbs: encodeCborSequence(certificateElements(fields).slice(0, 10)) };
}

/**
 * Decodes a C509Certificate (type 2 or 3) from deterministic CBOR and checks its structure.
 * Throws MalformedEvidence `c509.cbor.*`, `c509.cert.*`, `c509.name.*`, `c509.alg.*`; NotSupported
 * `c509.cert.type` for types other than 2 and 3.
 */
export function parseC509Certificate(bytes: Uint8Array): C509Certificate {
  return certificateFromValue(decodeCbor(bytes));
}

/** Deterministic CBOR of a C509Certificate. */
export function encodeC509Certificate(c: C509CertificateFields): Uint8Array {
  return encodeCbor(certificateElements(c));
}

export interface X509ToC509Options {
  /**
   * Point-compress an uncompressed EC subject key (0xfe/0xfd, §3.2.1). Default false: the key is kept as it
   * is, which is what the draft-20 test vectors do.
   */
  readonly compressPoints?: boolean;
  /**
   * The issuer's public key, used only to size an ECDSA signature's r and s. Not needed for self-issued
   * certificates; without it the size is inferred from the integers (smallest curve size that holds them).
   */
  readonly issuerPublicKey?: KeyObject;
}

interface Internal {
  readonly compress: boolean;
  readonly ecdsaHalf?: number;
}

const CURVE_SIZES: Record<string, number> = Object.assign(Object.create(null), {
  prime256v1: 32,
  secp384r1: 48,
  secp521r1: 66,
  brainpoolP256r1: 32,
  brainpoolP384r1: 48,
  brainpoolP512r1: 64,
});

export function curveSize(key: KeyObject | undefined): number | undefined {
  const c = key?.asymmetricKeyDetails?.namedCurve;
  return c !== undefined ? CURVE_SIZES[c] : undefined;
}

const NO_EXPIRY = '99991231235959Z';

function notAfterToC509(t: Tlv): number | null {
  if (t.tag === Tag.GeneralizedTime && decodeUtf8(t.value, C509_DER) === NO_EXPIRY) return null;
  return timeToEpoch(t);
}

function epochOk(n: number, what: string): number {
  if (n < 0)
    throw new NotSupported('c509.x509.time_before_epoch', `${what} before 1970 has no C509 encoding`);
  return n;
}

function x509ToC509Value(der: Uint8Array, opts: Internal): CborValue[] {
  const cert = sequence(parseDer(der), C509_DER);
  if (cert.length !== 3) bad('c509.der.structure', 'Certificate needs 3 fields');
  const [tbsT, sigAlgT, sigT] = cert as [Tlv, Tlv, Tlv];
  const tbs = sequence(tbsT, C509_DER);
  const version = tbs[0];
  if (version?.tag !== ctx(0, true))
    throw new NotSupported('c509.x509.version', 'only X.509 v3 certificates have a C509 form');
  const vf = sequence(version, C509_DER, ctx(0, true));
  if (vf.length !== 1 || smallUint(vf[0]!, C509_DER) !== 2) {
    throw new NotSupported('c509.x509.version', 'only X.509 v3 certificates have a C509 form');
  }
  const [, serialT, sigInnerT, issuerT, validityT, subjectT, spkiT, ...rest] = tbs;
  let serial: Uint8Array;
  try {
    serial = unsignedBytes(serialT!, C509_DER);
  } catch (e) {
    if (e instanceof MalformedEvidence && e.reason === 'c509.der.negative_integer') {
      throw new NotSupported('c509.x509.serial_negative', 'a negative serial number has no C509 form');
    }
    throw e;
  }
  if (
    !bytesEqual(
      expectTag(sigInnerT, Tag.Sequence, C509_DER, 'signature').raw,
      expectTag(sigAlgT, Tag.Sequence, C509_DER, 'signatureAlgorithm').raw,
    )
  ) {
    bad('c509.x509.signature_algorithm_mismatch', 'signature and signatureAlgorithm differ');
  }
  let extensions: CborValue = [];
  for (const t of rest) {
    if (
      t.tag === ctx(1, false) ||
      t.tag === ctx(2, false) ||
      t.tag === ctx(1, true) ||
      t.tag === ctx(2, true)
    ) {
      throw new NotSupported(
        'c509.x509.unique_id',
        'issuerUniqueID and subjectUniqueID are not supported (§3.1.8)',
      );
    }
    if (t.tag !== ctx(3, true) || rest.length !== 1)
      bad('c509.der.structure', 'unexpected TBSCertificate field');
    const inner = sequence(t, C509_DER, ctx(3, true));
    if (inner.length !== 1) bad('c509.der.structure', 'extensions');
    extensions = extensionsToC509(parseX509Extensions(inner[0]!));
  }
  const validity = sequence(validityT, C509_DER);
  if (validity.length !== 2) bad('c509.der.structure', 'Validity');
  const subject = nameToC509(expectTag(subjectT, Tag.Sequence, C509_DER, 'subject'));
  const selfIssued = bytesEqual(expectTag(issuerT, Tag.Sequence, C509_DER, 'issuer').raw, subjectT!.raw);
  const spki = sequence(spkiT, C509_DER);
  if (spki.length !== 2) bad('c509.der.structure', 'SubjectPublicKeyInfo');
  const sigAlg = algIdToC509(sigInnerT!, 'sig');
  const pkAlg = algIdToC509(spki[0]!, 'pk');
  const notAfter = notAfterToC509(validity[1]!);
  // The issuer's curve sizes r and s; for a self-issued certificate the subject's curve is only a hint (a
  // self-issued certificate may be signed by another key, e.g. at key rollover).
  const sigCtx =
    opts.ecdsaHalf !== undefined
      ? { ecdsaHalfLength: opts.ecdsaHalf }
      : selfIssued && ecdsaHalfLength(pkAlg) !== undefined
        ? { ecdsaHalfHint: ecdsaHalfLength(pkAlg)! }
        : {};
  return [
    3,
    new Uint8Array(serial),
    sigAlg,
    selfIssued ? null : nameToC509(issuerT!),
    epochOk(timeToEpoch(validity[0]!), 'notBefore'),
    notAfter === null ? null : epochOk(notAfter, 'notAfter'),
    subject,
    pkAlg,
    publicKeyToC509(pkAlg, spki[1]!, { compress: opts.compress ? 'reencoded' : 'none' }),
    extensions,
    signatureToC509(sigAlg, sigT, sigCtx),
  ];
}

function timeDer(sec: number, what: string): Uint8Array {
  if (sec > 253402300799) bad('c509.cert.time', `${what} is after the year 9999`);
  return epochToTime(sec);
}

/** DER TBSCertificate of a type 3 certificate. */
export function tbsCertificateDer(c: C509Certificate): Uint8Array {
  const subject = nameToDer(c.subject, 'subject');
  const issuer = c.issuer === null ? subject : nameToDer(c.issuer, 'issuer');
  const exts = extensionsFromC509(c.extensions);
  const fields = [
    tlv(ctx(0, true), new Uint8Array([0x02, 0x01, 0x02])),
    unsignedInteger(c.serialNumber),
    algIdToDer(c.signatureAlgorithm, 'sig'),
    issuer,
    tlv(
      Tag.Sequence,
      timeDer(c.notBefore, 'notBefore'),
      c.notAfter === null
        ? tlv(Tag.GeneralizedTime, new TextEncoder().encode(NO_EXPIRY))
        : timeDer(c.notAfter, 'notAfter'),
    ),
    subject,
    tlv(
      Tag.Sequence,
      algIdToDer(c.subjectPublicKeyAlgorithm, 'pk'),
      publicKeyToDer(c.subjectPublicKeyAlgorithm, c.subjectPublicKey),
    ),
  ];
  if (exts.length > 0) fields.push(tlv(ctx(3, true), x509ExtensionsDer(exts)));
  return tlv(Tag.Sequence, ...fields);
}

function c509ToX509Der(c: C509Certificate): Uint8Array {
  if (c.type !== 3) {
    throw new NotSupported(
      'c509.cert.native',
      'a natively signed (type 2) C509 certificate has no DER X.509 form',
    );
  }
  return tlv(
    Tag.Sequence,
    tbsCertificateDer(c),
    algIdToDer(c.signatureAlgorithm, 'sig'),
    signatureToDer(c.signatureAlgorithm, c.signatureValue),
  );
}

function internalFromC509(c: C509Certificate): Internal {
  const pk = c.subjectPublicKey;
  const compress = isBytes(pk) && (pk[0] === 0xfe || pk[0] === 0xfd);
  const sig = c.signatureValue;
  const ecdsaHalf =
    isEcdsaSignatureAlgorithm(c.signatureAlgorithm) && isBytes(sig) ? sig.length / 2 : undefined;
  return ecdsaHalf !== undefined ? { compress, ecdsaHalf } : { compress };
}

/**
 * DER X.509 v3 certificate -> C509 certificate type 3 (§3.1), byte-exact invertible: the result is converted
 * back and compared with the input, so a certificate that C509 cannot carry exactly is refused.
 *
 * Throws MalformedEvidence `c509.der.*` (input is not DER), NotSupported `c509.x509.version`,
 * `c509.x509.unique_id`, `c509.name.multi_valued_rdn`, `c509.x509.time_before_epoch`,
 * `c509.x509.serial_negative`, `c509.x509.not_invertible` (no exact C509 form, e.g. a non-DER detail).
 */
export function x509ToC509(der: Uint8Array, opts: X509ToC509Options = {}): Uint8Array {
  const half = curveSize(opts.issuerPublicKey);
  const out = encodeCbor(
    x509ToC509Value(
      der,
      half !== undefined
        ? { compress: opts.compressPoints === true, ecdsaHalf: half }
        : { compress: opts.compressPoints === true },
    ),
  );
  let back: Uint8Array;
  try {
    back = c509ToX509Der(certificateFromValue(decodeCbor(out)));
  } catch (e) {
    throw new NotSupported(
      'c509.x509.not_invertible',
      `the certificate has no exact C509 form: ${(e as Error).message}`,
    );
  }
  if (!bytesEqual(back, der)) {
    throw new NotSupported(
      'c509.x509.not_invertible',
      'the certificate has no exact C509 form (re-encoding differs)',
    );
  }
  return out;
}

/**
 * C509 certificate type 3 -> the DER X.509 certificate it re-encodes (§3.1). The input must be the canonical
 * C509 form of that DER (converting the DER back must reproduce the input), so two different C509 byte strings
 * never stand for the same certificate.
 *
 * Throws MalformedEvidence `c509.cbor.*`, `c509.cert.*`, `c509.name.*`, `c509.ext.*`, `c509.key.*`,
 * `c509.sig.*`, `c509.not_canonical`; NotSupported `c509.cert.native` for type 2, `c509.alg_unknown`,
 * `c509.ext.unknown`.
 */
export function c509ToX509(bytes: Uint8Array): Uint8Array {
  const c = parseC509Certificate(bytes);
  const der = c509ToX509Der(c);
  const again = encodeCbor(x509ToC509Value(der, internalFromC509(c)));
  if (!bytesEqual(again, bytes))
    bad('c509.not_canonical', 'the C509 certificate is not the canonical encoding of its X.509 form');
  return der;
}
