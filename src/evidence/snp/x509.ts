import { createHash } from 'node:crypto';
import { ChainInvalid, MalformedEvidence } from '../../errors.js';
import { derFail, Tag } from '../../formats/der/reader.js';
import { decodePemBlock, PEM_LIMITS, pemText } from '../../formats/pem.js';
import { type AlgorithmIdentifier, AlgorithmOid } from '../../formats/x509/algorithm.js';
import {
  type BasicConstraints,
  type Certificate,
  certificateReasons,
  type Extension,
  findExtension,
  KeyUsage,
  OID,
  parseCertificate,
  readBasicConstraints,
  readKeyUsage,
  readSpki,
} from '../../formats/x509/certificate.js';
import { parseName, type X509Name } from '../../formats/x509/name.js';

export { isRsaPssSha384 } from '../../formats/x509/algorithm.js';
export { commonName, formatName, type X509Name } from '../../formats/x509/name.js';

/**
 * Certificates as the SNP verifier holds them: the shared strict X.509 parse (src/formats/x509) in
 * structure-only mode, plus the certificate's SHA-256 and its names read (AMD's are printable ASCII).
 * Nothing here checks a signature, a name or a date. Malformed input throws MalformedEvidence
 * (`snp.cert.der`, `snp.cert.size`, `snp.cert.pem`, `snp.cert.extension_duplicate`).
 */
export interface X509Cert extends Certificate {
  /** SHA-256 of `der`, lower-case hex. */
  readonly sha256: string;
  readonly issuerName: X509Name;
  readonly subjectName: X509Name;
  /** SubjectPublicKeyInfo.algorithm (the curve OID in the parameters for the leaf's EC key). */
  readonly publicKeyAlgorithm: AlgorithmIdentifier;
}

/** A certificate larger than this is not an AMD certificate (they are ~1.3-2 KiB). */
export const MAX_CERT_SIZE = 64 * 1024;
/** Bound on any DER/PEM input to the loader (a CRL may be larger than a certificate). */
const MAX_PEM_INPUT = PEM_LIMITS.maxLength;

/** The OIDs the SNP verifier names: algorithms, and the RFC 5280 extensions it knows. */
export const Oid = { ...AlgorithmOid, ...OID } as const;

export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * DER from a DER or PEM input (the small loader the CLI and tests use). PEM (read by src/formats/pem.ts)
 * must hold exactly one CERTIFICATE block (or the `label` given). Throws MalformedEvidence `snp.cert.pem`,
 * `snp.cert.size`.
 */
export function loadDer(input: Uint8Array | string, label = 'CERTIFICATE'): Uint8Array {
  if (input.length > MAX_PEM_INPUT) {
    throw new MalformedEvidence('snp.cert.size', `input over ${MAX_PEM_INPUT} bytes`);
  }
  if (typeof input !== 'string' && input.length > 0 && input[0] === Tag.Sequence) return input;
  return decodePemBlock(typeof input === 'string' ? input : pemText(input), 'snp.cert', [label]).der;
}

/** Parses a DER certificate (structure only; `what` prefixes the reasons). */
export function parseX509(der: Uint8Array, what = 'snp.cert'): X509Cert {
  if (der.length > MAX_CERT_SIZE)
    throw new MalformedEvidence(`${what}.size`, `certificate over ${MAX_CERT_SIZE} bytes`);
  const r = `${what}.der`;
  const reasons = certificateReasons(r, `${what}.extension_duplicate`);
  const cert = parseCertificate(der, { strict: false, reasons });
  // Object.assign, not a spread: spreading a parsed certificate costs more than parsing its names.
  return Object.assign(cert, {
    sha256: sha256Hex(der),
    issuerName: parseName(cert.issuer, r),
    subjectName: parseName(cert.subject, r),
    publicKeyAlgorithm: readSpki(cert.subjectPublicKeyInfo, r).algorithm,
  });
}

/** The value of the extension `id`, if the certificate carries it. */
export function extensionValue(c: Certificate, id: string): Uint8Array | undefined {
  return findExtension(c, id)?.value;
}

/** BasicConstraints (RFC 5280 §4.2.1.9), an encoded cA FALSE read as FALSE; undefined when absent. */
export function basicConstraints(c: Certificate, what: string): BasicConstraints | undefined {
  const v = extensionValue(c, OID.basicConstraints);
  return v === undefined ? undefined : readBasicConstraints(v, false, `${what}.der`);
}

/** KeyUsage (RFC 5280 §4.2.1.3) keyCertSign and cRLSign; undefined when absent. */
export function keyUsage(
  c: Certificate,
  what: string,
): { keyCertSign: boolean; cRLSign: boolean } | undefined {
  const v = extensionValue(c, OID.keyUsage);
  if (v === undefined) return undefined;
  const bits = readKeyUsage(v, `${what}.der`);
  // At least one octet of bits (03 02 uu bb); RFC 5280 §4.2.1.3 wants one bit set.
  if (v.length < 4) derFail(`${what}.der`, 'bit_string', 'bad KeyUsage');
  return { keyCertSign: bits.has(KeyUsage.keyCertSign), cRLSign: bits.has(KeyUsage.cRLSign) };
}

/** Throws ChainInvalid `reason` if a critical extension is not in `known`. */
export function checkCriticalExtensions(
  exts: readonly Extension[],
  known: readonly string[],
  reason: string,
  role: string,
): void {
  for (const e of exts) {
    // RFC 5280 §4.2: a certificate with an unrecognised critical extension must be rejected.
    if (e.critical && !known.includes(e.oid)) {
      throw new ChainInvalid(reason, `${role} has an unrecognised critical extension ${e.oid}`);
    }
  }
}
