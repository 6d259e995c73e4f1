import { MalformedEvidence } from '../../errors.js';
import {
  bitStringBytes,
  children,
  ctx,
  cursor,
  type DerReason,
  derFail,
  integerBytes,
  parseOne,
  smallUint,
  Tag,
  time,
} from '../der/reader.js';
import { type AlgorithmIdentifier, readAlgorithm } from './algorithm.js';
import {
  type BasicConstraints,
  type Extension,
  findExtension,
  OID,
  readBasicConstraints,
  readExtensions,
  readExtKeyUsage,
  readKeyUsage,
} from './extensions.js';
import { readSigned, type SignedStructure } from './signed.js';

export {
  type BasicConstraints,
  type Extension,
  findExtension,
  KeyUsage,
  OID,
  readBasicConstraints,
  readExtKeyUsage,
  readKeyUsage,
  subjectAltNameTags,
} from './extensions.js';

/**
 * The project's one X.509 v3 certificate decoder (RFC 5280 §4.1), on the strict DER reader: the fields
 * path validation, the SNP verifier, the CA and the collateral cache need, each a view of the exact DER.
 * It checks structure, not signatures, names or validity (the verifiers' job).
 */

export interface Certificate extends SignedStructure {
  /** 1, 2 or 3 (the encoded value + 1). */
  readonly version: number;
  /** serialNumber contents (minimal two's complement), compared byte-wise. */
  readonly serialNumber: Uint8Array;
  /** The DER of the issuer and subject Names (compared byte-for-byte when chaining; see name.ts). */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The whole SubjectPublicKeyInfo element (what node:crypto imports as `spki`). */
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly extensions: readonly Extension[];
  /** basicConstraints, when present (strict parses only). */
  readonly basicConstraints?: BasicConstraints;
  /** keyUsage bit set (index = KeyUsage value), when present (strict parses only). */
  readonly keyUsage?: ReadonlySet<number>;
  /** extKeyUsage OIDs, when present (strict parses only). */
  readonly extKeyUsage?: readonly string[];
}

/** MalformedEvidence reasons of a certificate parse. */
export interface CertificateReasons {
  /** Structure and DER encoding. */
  readonly der: string;
  readonly version: string;
  /** TBSCertificate.signature differs from signatureAlgorithm (strict parses only). */
  readonly signatureAlgorithm: string;
  readonly validity: string;
  readonly extensions: string;
  readonly duplicateExtension: string;
}

const R = 'x509.certificate';

/** The default reasons: `x509.certificate`, `x509.certificate.version`, `.signature_algorithm`, ... */
export const X509_REASONS: CertificateReasons = {
  der: R,
  version: `${R}.version`,
  signatureAlgorithm: `${R}.signature_algorithm`,
  validity: `${R}.validity`,
  extensions: `${R}.extensions`,
  duplicateExtension: `${R}.duplicate_extension`,
};

/** One reason for every fault except a repeated extension (callers that only name "malformed"). */
export function certificateReasons(der: string, duplicateExtension = der): CertificateReasons {
  return { der, version: der, signatureAlgorithm: der, validity: der, extensions: der, duplicateExtension };
}

export interface CertificateOptions {
  readonly reasons?: CertificateReasons;
  /**
   * True (the default): also enforce, at parse time, the RFC 5280 profile and DER's rule that DEFAULT
   * values are not encoded: no explicit v1, identical TBS and outer algorithms (§4.1.1.2), unique IDs only
   * from v2 and extensions only in v3, a non-empty extension list without an encoded critical FALSE; and
   * decode basicConstraints (no encoded cA FALSE), keyUsage and extKeyUsage. False: structure only — the
   * SNP verifier's mode, which checks the algorithm and the version itself and reports them as
   * ChainInvalid, and reads basicConstraints and keyUsage on demand.
   */
  readonly strict?: boolean;
}

/**
 * Decodes a DER X.509 certificate. Throws MalformedEvidence with the reasons given (by default
 * `x509.certificate` for structure and non-DER, `x509.certificate.signature_algorithm`, `.validity`,
 * `.extensions`, `.duplicate_extension`, `.version`), and, when strict, `x509.extension.basic_constraints`,
 * `.key_usage`, `.ext_key_usage`.
 */
export function parseCertificate(der: Uint8Array, opts: CertificateOptions = {}): Certificate {
  const reasons = opts.reasons ?? X509_REASONS;
  const strict = opts.strict ?? true;
  const r = reasons.der;
  const { tbs: tbsTlv, signatureAlgorithm: sigAlgTlv, signatureValue } = readSigned(der, r);

  const tbs = cursor(tbsTlv, r);
  let version = 1;
  const v = tbs.optional(ctx(0));
  if (v) {
    version = smallUint(parseOne(v.value, reasons.version, Tag.Integer), reasons.version, 2) + 1;
    // DER: v1 (the DEFAULT) is never encoded explicitly.
    if (strict && version === 1) derFail(reasons.version, 'structure', 'explicit v1 is not DER');
  }
  const serialNumber = integerBytes(tbs.next(Tag.Integer, 'serialNumber'), r);
  const tbsSigAlgTlv = tbs.next(Tag.Sequence, 'signature');
  // RFC 5280 §4.1.1.2: the signed and the outer algorithm identifiers must be identical.
  if (strict && Buffer.compare(tbsSigAlgTlv.raw, sigAlgTlv.raw) !== 0) {
    throw new MalformedEvidence(
      reasons.signatureAlgorithm,
      'TBSCertificate.signature differs from signatureAlgorithm',
    );
  }
  const signatureAlgorithm = readAlgorithm(sigAlgTlv, r);
  const tbsSignatureAlgorithm = readAlgorithm(tbsSigAlgTlv, r);
  const issuer = tbs.next(Tag.Sequence, 'issuer');
  const validity = cursor(tbs.any('validity'), reasons.validity, Tag.Sequence);
  const notBefore = time(validity.any('notBefore'), reasons.validity);
  const notAfter = time(validity.any('notAfter'), reasons.validity);
  validity.end();
  const subject = tbs.next(Tag.Sequence, 'subject');
  const spki = tbs.next(Tag.Sequence, 'subjectPublicKeyInfo');
  // One level into the names and the key; their contents are read on demand (name.ts, readSpki), which
  // structure-only callers always do.
  if (strict) for (const t of [issuer, subject, spki]) children(t, r);
  // issuerUniqueID [1] / subjectUniqueID [2] are IMPLICIT BIT STRINGs: primitive in DER.
  const uniqueIds = tbs.optional(ctx(1, false)) !== undefined;
  const subjectUniqueId = tbs.optional(ctx(2, false)) !== undefined;
  const extTlv = tbs.optional(ctx(3));
  tbs.end();
  if (strict && (((uniqueIds || subjectUniqueId) && version < 2) || (extTlv && version < 3))) {
    derFail(r, 'structure', `unexpected field in a v${version} TBSCertificate`);
  }
  const extensions = extTlv
    ? readExtensions(parseOne(extTlv.value, reasons.extensions, Tag.Sequence), reasons, strict)
    : [];

  const cert: { -readonly [K in keyof Certificate]: Certificate[K] } = {
    der,
    tbs: tbsTlv.raw,
    signatureAlgorithm,
    tbsSignatureAlgorithm,
    signatureValue,
    version,
    serialNumber,
    issuer: issuer.raw,
    subject: subject.raw,
    notBefore,
    notAfter,
    subjectPublicKeyInfo: spki.raw,
    extensions,
  };
  if (!strict) return cert;
  // Decoded once here for path validation (object spread is slow: the fields are added in place).
  const bc = findExtension(cert, OID.basicConstraints);
  const ku = findExtension(cert, OID.keyUsage);
  const eku = findExtension(cert, OID.extKeyUsage);
  if (bc) cert.basicConstraints = readBasicConstraints(bc.value);
  if (ku) cert.keyUsage = readKeyUsage(ku.value);
  if (eku) cert.extKeyUsage = readExtKeyUsage(eku.value);
  return cert;
}

/** SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): the algorithm and the key's octets (whole octets only). */
export interface SubjectPublicKeyInfo {
  /** For EC keys the parameters name the curve. */
  readonly algorithm: AlgorithmIdentifier;
  readonly publicKey: Uint8Array;
}

/** Reads a DER SubjectPublicKeyInfo. Throws MalformedEvidence `reason`. */
export function readSpki(spki: Uint8Array, reason: DerReason): SubjectPublicKeyInfo {
  const s = cursor(parseOne(spki, reason, Tag.Sequence), reason);
  const algorithm = readAlgorithm(s.next(Tag.Sequence, 'algorithm'), reason);
  const publicKey = bitStringBytes(s.next(Tag.BitString, 'subjectPublicKey'), reason);
  s.end();
  return { algorithm, publicKey };
}

/** True when a Name (RDNSequence DER) is empty, as in TCG EK/AK certificates with a critical SAN. */
export function isEmptyName(nameDer: Uint8Array): boolean {
  return nameDer.length === 2 && nameDer[0] === 0x30 && nameDer[1] === 0x00;
}
