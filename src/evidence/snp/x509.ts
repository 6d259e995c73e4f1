import { createHash } from 'node:crypto';
import { ChainInvalid, MalformedEvidence } from '../../errors.js';
import {
  asciiString,
  bitStringBytes,
  boolean,
  ctx,
  derFail,
  integerBytes,
  oid,
  parseOne,
  seq,
  smallUint,
  Tag,
  type Tlv,
  time,
} from './der.js';

/**
 * The parts of an X.509 v3 certificate (RFC 5280 §4.1) the SNP verifier uses, read with the strict DER
 * reader. This is a structural parse only: nothing here checks a signature, a name or a date.
 * Malformed input throws MalformedEvidence (`snp.cert.der`, `snp.cert.size`, `snp.cert.pem`,
 * `snp.cert.extension_duplicate`).
 */
export interface X509Cert {
  readonly der: Uint8Array;
  /** SHA-256 of `der`, lower-case hex. */
  readonly sha256: string;
  /** The exact TBSCertificate bytes the issuer signed. */
  readonly tbs: Uint8Array;
  /** 1, 2 or 3 (the encoded value + 1). */
  readonly version: number;
  /** serialNumber contents (minimal two's complement), compared byte-wise against CRL entries. */
  readonly serial: Uint8Array;
  /** TBSCertificate.signature and Certificate.signatureAlgorithm, whole AlgorithmIdentifier elements. */
  readonly tbsSignatureAlgorithm: Uint8Array;
  readonly signatureAlgorithm: Uint8Array;
  readonly issuer: X509Name;
  readonly subject: X509Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The whole SubjectPublicKeyInfo element (what node:crypto imports as `spki`). */
  readonly spki: Uint8Array;
  readonly spkiAlgorithm: string;
  /** SPKI algorithm parameters element (e.g. the named curve OID), if any. */
  readonly spkiParameters?: Tlv;
  readonly extensions: ReadonlyMap<string, X509Extension>;
  readonly signature: Uint8Array;
}

export interface X509Extension {
  readonly critical: boolean;
  /** extnValue contents (the OCTET STRING's bytes). */
  readonly value: Uint8Array;
}

export interface X509Name {
  /** The whole Name element; issuer/subject chaining compares these bytes. */
  readonly der: Uint8Array;
  readonly attributes: readonly { readonly oid: string; readonly value: string }[];
}

/** A certificate larger than this is not an AMD certificate (they are ~1.3-2 KiB). */
export const MAX_CERT_SIZE = 64 * 1024;
/** Bound on any DER/PEM input to the loader (a CRL may be larger than a certificate). */
const MAX_PEM_INPUT = 4 << 20;

export const Oid = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  sha384: '2.16.840.1.101.3.4.2.2',
  ecPublicKey: '1.2.840.10045.2.1',
  secp384r1: '1.3.132.0.34',
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  crlDistributionPoints: '2.5.29.31',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  invalidityDate: '2.5.29.24',
} as const;

const ATTR_SHORT: Record<string, string> = Object.assign(Object.create(null), {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
});

export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * DER from a DER or PEM input (the small loader the CLI and tests use). PEM must hold exactly one
 * CERTIFICATE block (or the `label` given). Throws MalformedEvidence `snp.cert.pem`, `snp.cert.size`.
 */
export function loadDer(input: Uint8Array | string, label = 'CERTIFICATE'): Uint8Array {
  if (input.length > MAX_PEM_INPUT) {
    throw new MalformedEvidence('snp.cert.size', `input over ${MAX_PEM_INPUT} bytes`);
  }
  if (typeof input !== 'string' && input.length > 0 && input[0] === Tag.Sequence) return input;
  const text =
    typeof input === 'string'
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.length).toString('latin1');
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, 'g');
  const blocks = [...text.matchAll(re)];
  if (blocks.length !== 1) {
    throw new MalformedEvidence('snp.cert.pem', `expected DER or exactly one PEM ${label} block`);
  }
  const b64 = blocks[0]![1]!.replace(/\s+/g, '');
  if (b64.length === 0 || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new MalformedEvidence('snp.cert.pem', 'PEM body is not base64');
  }
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

export function parseName(t: Tlv, what: string): X509Name {
  const attributes: { oid: string; value: string }[] = [];
  const rdns = seq(t, what);
  while (!rdns.done) {
    const set = seq(rdns.next(Tag.Set, 'RDN'), what);
    do {
      const atv = seq(set.next(Tag.Sequence, 'AttributeTypeAndValue'), what);
      const type = oid(atv.next(Tag.Oid, 'attribute type'), what);
      attributes.push({ oid: type, value: asciiString(atv.any('attribute value'), what) });
      atv.end();
    } while (!set.done);
  }
  return { der: t.raw, attributes };
}

/** RFC 4514 rendering, most significant RDN last in the encoding, first in the string: `CN=..,O=..`. */
export function formatName(n: X509Name): string {
  return n.attributes
    .map((a) => `${ATTR_SHORT[a.oid] ?? a.oid}=${a.value}`)
    .reverse()
    .join(',');
}

export function commonName(n: X509Name): string | undefined {
  const cns = n.attributes.filter((a) => a.oid === Oid.commonName);
  return cns.length === 1 ? cns[0]!.value : undefined;
}

export function parseExtensions(t: Tlv, what: string): Map<string, X509Extension> {
  const out = new Map<string, X509Extension>();
  const exts = seq(parseOne(t.value, Tag.Sequence, what), what);
  while (!exts.done) {
    const e = seq(exts.next(Tag.Sequence, 'Extension'), what);
    const id = oid(e.next(Tag.Oid, 'extnID'), what);
    const critTlv = e.optional(Tag.Boolean);
    const critical = critTlv ? boolean(critTlv, what) : false;
    const value = e.next(Tag.OctetString, 'extnValue').value;
    e.end();
    // RFC 5280 §4.2: a certificate MUST NOT include more than one instance of an extension.
    if (out.has(id)) throw new MalformedEvidence(`${what}.extension_duplicate`, `extension ${id} repeated`);
    out.set(id, { critical, value });
  }
  return out;
}

/** Parses a DER certificate. */
export function parseX509(der: Uint8Array, what = 'snp.cert'): X509Cert {
  if (der.length > MAX_CERT_SIZE)
    throw new MalformedEvidence(`${what}.size`, `certificate over ${MAX_CERT_SIZE} bytes`);
  const cert = seq(parseOne(der, Tag.Sequence, what), what);
  const tbsTlv = cert.next(Tag.Sequence, 'tbsCertificate');
  const signatureAlgorithm = cert.next(Tag.Sequence, 'signatureAlgorithm').raw;
  const signature = bitStringBytes(cert.next(Tag.BitString, 'signatureValue'), what);
  cert.end();

  const tbs = seq(tbsTlv, what);
  const vTlv = tbs.optional(ctx(0));
  const version = vTlv ? smallUint(parseOne(vTlv.value, Tag.Integer, what), what, 2) + 1 : 1;
  const serial = integerBytes(tbs.next(Tag.Integer, 'serialNumber'), what);
  const tbsSignatureAlgorithm = tbs.next(Tag.Sequence, 'signature').raw;
  const issuer = parseName(tbs.next(Tag.Sequence, 'issuer'), what);
  const validity = seq(tbs.next(Tag.Sequence, 'validity'), what);
  const notBefore = time(validity.any('notBefore'), what);
  const notAfter = time(validity.any('notAfter'), what);
  validity.end();
  const subject = parseName(tbs.next(Tag.Sequence, 'subject'), what);
  const spkiTlv = tbs.next(Tag.Sequence, 'subjectPublicKeyInfo');
  const spkiSeq = seq(spkiTlv, what);
  const spkiAlg = seq(spkiSeq.next(Tag.Sequence, 'algorithm'), what);
  const spkiAlgorithm = oid(spkiAlg.next(Tag.Oid, 'algorithm'), what);
  const spkiParameters = spkiAlg.done ? undefined : spkiAlg.any('parameters');
  spkiAlg.end();
  bitStringBytes(spkiSeq.next(Tag.BitString, 'subjectPublicKey'), what);
  spkiSeq.end();
  // issuerUniqueID [1] / subjectUniqueID [2] are IMPLICIT primitive: skip them if present.
  if (tbs.peek() === 0x81) tbs.next(0x81);
  if (tbs.peek() === 0x82) tbs.next(0x82);
  const extTlv = tbs.optional(ctx(3));
  tbs.end();
  const extensions = extTlv ? parseExtensions(extTlv, what) : new Map<string, X509Extension>();

  return {
    der,
    sha256: sha256Hex(der),
    tbs: tbsTlv.raw,
    version,
    serial,
    tbsSignatureAlgorithm,
    signatureAlgorithm,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki: spkiTlv.raw,
    spkiAlgorithm,
    ...(spkiParameters ? { spkiParameters } : {}),
    extensions,
    signature,
  };
}

/**
 * Checks that an AlgorithmIdentifier is RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, trailer 1 — the only
 * algorithm AMD uses for ARK, ASK/ASVK and VCEK/VLEK signatures and CRLs (KDS 57230). The parameters are
 * read, not byte-compared: AMD's ASKs encode the default trailer field explicitly, its VCEKs omit it.
 * Returns false rather than throwing so callers pick the reason.
 */
export function isRsaPssSha384(algId: Uint8Array): boolean {
  try {
    const what = 'snp.cert';
    const a = seq(parseOne(algId, Tag.Sequence, what), what);
    if (oid(a.next(Tag.Oid), what) !== Oid.rsassaPss) return false;
    const p = seq(a.next(Tag.Sequence, 'RSASSA-PSS-params'), what);
    a.end();
    const hash = p.next(ctx(0), 'hashAlgorithm');
    if (!isDigestAlg(parseOne(hash.value, Tag.Sequence, what), Oid.sha384)) return false;
    const mgf = seq(parseOne(p.next(ctx(1), 'maskGenAlgorithm').value, Tag.Sequence, what), what);
    if (oid(mgf.next(Tag.Oid), what) !== Oid.mgf1) return false;
    if (!isDigestAlg(mgf.next(Tag.Sequence), Oid.sha384)) return false;
    mgf.end();
    const salt = smallUint(parseOne(p.next(ctx(2), 'saltLength').value, Tag.Integer, what), what, 1 << 16);
    if (salt !== 48) return false;
    const trailer = p.optional(ctx(3));
    if (trailer && smallUint(parseOne(trailer.value, Tag.Integer, what), what, 255) !== 1) return false;
    p.end();
    return true;
  } catch (e) {
    if (e instanceof MalformedEvidence) return false;
    throw e;
  }
}

function isDigestAlg(t: Tlv, want: string): boolean {
  const s = seq(t, 'snp.cert');
  if (oid(s.next(Tag.Oid), 'snp.cert') !== want) return false;
  // Parameters: absent or NULL (RFC 4055 §2.1 allows both).
  const n = s.optional(Tag.Null);
  if (n && n.value.length !== 0) return false;
  s.end();
  return true;
}

/** BasicConstraints (RFC 5280 §4.2.1.9); undefined when the extension is absent. */
export function basicConstraints(c: X509Cert, what: string): { ca: boolean; pathLen?: number } | undefined {
  const e = c.extensions.get(Oid.basicConstraints);
  if (!e) return undefined;
  const s = seq(parseOne(e.value, Tag.Sequence, what), what);
  const caTlv = s.optional(Tag.Boolean);
  const ca = caTlv ? boolean(caTlv, what) : false;
  const plTlv = s.optional(Tag.Integer);
  s.end();
  return plTlv ? { ca, pathLen: smallUint(plTlv, what, 255) } : { ca };
}

/** KeyUsage bits (RFC 5280 §4.2.1.3): bit 5 keyCertSign, bit 6 cRLSign; undefined when absent. */
export function keyUsage(c: X509Cert, what: string): { keyCertSign: boolean; cRLSign: boolean } | undefined {
  const e = c.extensions.get(Oid.keyUsage);
  if (!e) return undefined;
  const t = parseOne(e.value, Tag.BitString, what);
  if (t.value.length < 2 || t.value[0]! > 7) derFail(what, 'bad KeyUsage');
  const b0 = t.value[1]!;
  return { keyCertSign: (b0 & 0x04) !== 0, cRLSign: (b0 & 0x02) !== 0 };
}

/** Throws ChainInvalid `<what>.unknown_critical_extension` if a critical extension is not in `known`. */
export function checkCriticalExtensions(
  exts: ReadonlyMap<string, X509Extension>,
  known: readonly string[],
  reason: string,
  role: string,
): void {
  for (const [id, e] of exts) {
    // RFC 5280 §4.2: a certificate with an unrecognised critical extension must be rejected.
    if (e.critical && !known.includes(id)) {
      throw new ChainInvalid(reason, `${role} has an unrecognised critical extension ${id}`);
    }
  }
}
