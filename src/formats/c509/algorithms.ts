import { ECDH } from 'node:crypto';
import { MalformedEvidence, NotSupported } from '../../errors.js';
import { toHex } from '../../util/bytes.js';
import {
  bitString,
  checkOidContent,
  expectTag,
  oidContent,
  sequence,
  Tag,
  type Tlv,
  unsignedBytes,
} from '../der/reader.js';
import { bitString as bitStringDer, tlv, unsignedInteger } from '../der/writer.js';
import { type CborValue, isArray, isBytes, isInt } from './cbor.js';
import { C509_DER, parseDer } from './der-input.js';
import { oidDer } from './der-values.js';
import { nameToC509, nameToDer } from './name.js';
import { PK_ALGS, type PkAlg, SIG_ALGS, type SigAlg } from './registry.js';

/**
 * AlgorithmIdentifier, subjectPublicKey and signature value encodings (draft-ietf-cose-cbor-encoded-cert-20
 * §3.1.3, §3.1.7, §3.1.12 and §3.2).
 *
 * AlgorithmIdentifier = int / ~oid / [ algorithm: ~oid, parameters: bytes ]: the registry int when the whole
 * DER AlgorithmIdentifier matches a registry row byte for byte, else the OID (with the DER parameters).
 */

/** A C509 AlgorithmIdentifier as decoded CBOR. */
export type C509AlgorithmIdentifier = CborValue;

type Kind = 'sig' | 'pk';

function registryFor(kind: Kind) {
  return kind === 'sig' ? SIG_ALGS : PK_ALGS;
}

export function algIdToC509(t: Tlv, kind: Kind): C509AlgorithmIdentifier {
  const hit = registryFor(kind).byDer[toHex(t.raw)];
  if (hit !== undefined) return hit.value;
  const f = sequence(t, C509_DER);
  if (f.length < 1 || f.length > 2) throw new MalformedEvidence('c509.der.structure', 'AlgorithmIdentifier');
  const oid = new Uint8Array(oidContent(f[0]!, C509_DER));
  return f.length === 1 ? oid : [oid, new Uint8Array(f[1]!.raw)];
}

export function algIdToDer(v: C509AlgorithmIdentifier, kind: Kind): Uint8Array {
  if (isInt(v)) {
    const hit = typeof v === 'number' ? registryFor(kind).byValue[v] : undefined;
    if (hit === undefined) {
      throw new NotSupported(
        'c509.alg_unknown',
        `unregistered C509 ${kind === 'sig' ? 'signature' : 'public key'} algorithm ${v}`,
      );
    }
    return hit.der;
  }
  if (isBytes(v)) return tlv(Tag.Sequence, oidDer(v));
  if (isArray(v) && v.length === 2 && isBytes(v[0]!) && isBytes(v[1]!)) {
    parseDer(v[1]);
    return tlv(Tag.Sequence, oidDer(v[0]), v[1]);
  }
  throw new MalformedEvidence(
    'c509.alg.shape',
    'AlgorithmIdentifier must be an int, an OID or [OID, parameters]',
  );
}

/** Structural check of a C509 AlgorithmIdentifier. */
export function checkAlgId(v: CborValue, what: string): void {
  if (isInt(v)) return;
  if (isBytes(v)) {
    checkOidContent(v, C509_DER);
    return;
  }
  if (isArray(v) && v.length === 2 && isBytes(v[0]!) && isBytes(v[1]!)) {
    checkOidContent(v[0], C509_DER);
    return;
  }
  throw new MalformedEvidence('c509.alg.shape', `${what}: not a C509 AlgorithmIdentifier`);
}

export function sigAlgEntry(v: CborValue): SigAlg | undefined {
  return typeof v === 'number' ? SIG_ALGS.byValue[v] : undefined;
}

export function pkAlgEntry(v: CborValue): PkAlg | undefined {
  return typeof v === 'number' ? PK_ALGS.byValue[v] : undefined;
}

/** The fixed r and s length of an ECDSA-family signature by a key of this C509 public key algorithm. */
export function ecdsaHalfLength(pkAlg: CborValue): number | undefined {
  const e = pkAlgEntry(pkAlg);
  return e?.scheme.kind === 'ec' ? e.scheme.size : undefined;
}

function isEcdsaFamily(sigAlg: CborValue): boolean {
  const k = sigAlgEntry(sigAlg)?.scheme.kind;
  return k === 'ecdsa' || k === 'ecdsa-unsupported';
}

function isPop(sigAlg: CborValue): boolean {
  return sigAlgEntry(sigAlg)?.scheme.kind === 'pop-hmac';
}

// ---- subjectPublicKey ----

export interface PublicKeyOptions {
  /**
   * Point-compress uncompressed Weierstrass keys: 'reencoded' uses 0xfe/0xfd (type 3, §3.2.1), 'native' uses
   * 0x02/0x03 (type 2). Default: keep the point as it is (what the -20 test vectors do).
   */
  readonly compress?: 'none' | 'reencoded' | 'native';
}

const RSA_F4 = new Uint8Array([0x01, 0x00, 0x01]);

/** C509 subjectPublicKey from the DER subjectPublicKey BIT STRING (§3.1.7, §3.2.1). */
export function publicKeyToC509(pkAlg: CborValue, bits: Tlv, opts: PublicKeyOptions = {}): CborValue {
  const bs = bitString(bits, C509_DER);
  if (bs.unused !== 0) throw new NotSupported('c509.key.unused_bits', 'subjectPublicKey with unused bits');
  const entry = pkAlgEntry(pkAlg);
  if (entry?.scheme.kind === 'rsa') {
    const f = sequence(parseDer(bs.bytes), C509_DER);
    if (f.length !== 2) throw new MalformedEvidence('c509.der.structure', 'RSAPublicKey');
    const n = new Uint8Array(unsignedBytes(f[0]!, C509_DER));
    const e = new Uint8Array(unsignedBytes(f[1]!, C509_DER));
    if (e.length === 3 && e[0] === 1 && e[1] === 0 && e[2] === 1) return n;
    return [n, e];
  }
  if (entry?.scheme.kind === 'ec') {
    const p = bs.bytes;
    const size = entry.scheme.size;
    const compress = opts.compress ?? 'none';
    // Only compress where the point can be decompressed again here (not FRP256v1): conversions stay invertible.
    if (
      compress !== 'none' &&
      entry.scheme.nodeCurve !== null &&
      p.length === 1 + 2 * size &&
      p[0] === 0x04
    ) {
      const odd = (p[p.length - 1]! & 1) === 1;
      const prefix = compress === 'native' ? (odd ? 0x03 : 0x02) : odd ? 0xfd : 0xfe;
      return new Uint8Array([prefix, ...p.subarray(1, 1 + size)]);
    }
    return new Uint8Array(p);
  }
  return new Uint8Array(bs.bytes);
}

/** Uncompressed point for a C509 point-compressed (0xfe/0xfd or 0x02/0x03) key, via node:crypto. */
function decompress(entry: PkAlg, x: Uint8Array, odd: boolean): Uint8Array {
  const s = entry.scheme;
  if (s.kind !== 'ec' || s.nodeCurve === null) {
    throw new NotSupported('c509.key.decompress_unsupported', `cannot decompress a ${entry.name} point here`);
  }
  try {
    const out = ECDH.convertKey(
      Buffer.from([odd ? 3 : 2, ...x]),
      s.nodeCurve,
      undefined,
      undefined,
      'uncompressed',
    );
    return new Uint8Array(out as Buffer);
  } catch {
    throw new MalformedEvidence('c509.key.point', `${entry.name} point is not on the curve`);
  }
}

/** DER subjectPublicKey BIT STRING for a C509 subjectPublicKey. */
export function publicKeyToDer(pkAlg: CborValue, v: CborValue): Uint8Array {
  const entry = pkAlgEntry(pkAlg);
  if (entry?.scheme.kind === 'rsa') {
    let n: CborValue;
    let e: CborValue = RSA_F4;
    if (isBytes(v)) n = v;
    else if (isArray(v) && v.length === 2 && isBytes(v[0]!) && isBytes(v[1]!)) [n, e] = v;
    else throw new MalformedEvidence('c509.key.shape', 'RSA key must be a modulus or [modulus, exponent]');
    if ((n as Uint8Array).length === 0 || (n as Uint8Array)[0] === 0)
      throw new MalformedEvidence('c509.key.shape', 'RSA modulus not minimal');
    return bitStringDer(
      tlv(Tag.Sequence, unsignedInteger(n as Uint8Array), unsignedInteger(e as Uint8Array)),
    );
  }
  if (!isBytes(v))
    throw new NotSupported('c509.key.shape', 'a non-byte-string public key has no DER form here');
  if (entry?.scheme.kind === 'ec') {
    const size = entry.scheme.size;
    if ((v[0] === 0xfe || v[0] === 0xfd) && v.length === 1 + size) {
      return bitStringDer(decompress(entry, v.subarray(1), v[0] === 0xfd));
    }
  }
  return bitStringDer(v);
}

/** DER SubjectPublicKeyInfo for a C509 key (for node:crypto's createPublicKey). */
export function spkiDer(pkAlg: CborValue, v: CborValue): Uint8Array {
  const entry = pkAlgEntry(pkAlg);
  let keyBits: Uint8Array;
  if (
    entry?.scheme.kind === 'ec' &&
    isBytes(v) &&
    (v[0] === 0x02 || v[0] === 0x03) &&
    v.length === 1 + entry.scheme.size
  ) {
    // natively signed certificates compress with 0x02/0x03; SPKI can carry that form too, but expand for node
    keyBits = bitStringDer(decompress(entry, v.subarray(1), v[0] === 0x03));
  } else {
    keyBits = publicKeyToDer(pkAlg, v);
  }
  return tlv(Tag.Sequence, algIdToDer(pkAlg, 'pk'), keyBits);
}

// ---- signature values ----

function stripInt(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/** Smallest standard field size holding both integers (used when the issuer's curve is not known). */
function inferHalf(r: Uint8Array, s: Uint8Array): number {
  const n = Math.max(r.length, s.length);
  for (const size of [32, 48, 64, 66]) if (n <= size) return size;
  throw new NotSupported('c509.sig.ecdsa_size', 'ECDSA integers larger than any registered curve');
}

export interface SignatureContext {
  /** r and s length for ECDSA-family signatures (authoritative: the issuer's curve). */
  readonly ecdsaHalfLength?: number;
  /** A likely r and s length (the subject's curve for a self-issued certificate), used when the integers fit. */
  readonly ecdsaHalfHint?: number;
}

/** C509 signature value from the DER signature BIT STRING (§3.1.12, §3.2.2; DhSigStatic §4.2). */
export function signatureToC509(sigAlg: CborValue, bits: Tlv, ctx: SignatureContext = {}): CborValue {
  const bs = bitString(bits, C509_DER);
  if (bs.unused !== 0) throw new NotSupported('c509.sig.unused_bits', 'signature with unused bits');
  if (isEcdsaFamily(sigAlg)) {
    const f = sequence(parseDer(bs.bytes), C509_DER);
    if (f.length !== 2) throw new MalformedEvidence('c509.der.structure', 'ECDSA-Sig-Value');
    const r = stripInt(unsignedBytes(f[0]!, C509_DER));
    const s = stripInt(unsignedBytes(f[1]!, C509_DER));
    const hint = ctx.ecdsaHalfHint;
    const half =
      ctx.ecdsaHalfLength ??
      (hint !== undefined && r.length <= hint && s.length <= hint ? hint : inferHalf(r, s));
    if (r.length > half || s.length > half)
      throw new MalformedEvidence('c509.sig.ecdsa_size', 'ECDSA integer too long for the curve');
    const out = new Uint8Array(2 * half);
    out.set(r, half - r.length);
    out.set(s, 2 * half - s.length);
    return out;
  }
  if (isPop(sigAlg)) {
    // DhSigStatic ::= SEQUENCE { issuerAndSerial IssuerAndSerialNumber OPTIONAL, hashValue MessageDigest }
    const f = sequence(parseDer(bs.bytes), C509_DER);
    if (f.length === 1) return new Uint8Array(expectTag(f[0], Tag.OctetString, C509_DER, 'hashValue').value);
    if (f.length !== 2) throw new MalformedEvidence('c509.der.structure', 'DhSigStatic');
    const ias = sequence(f[0], C509_DER);
    if (ias.length !== 2) throw new MalformedEvidence('c509.der.structure', 'IssuerAndSerialNumber');
    return [
      nameToC509(ias[0]!),
      new Uint8Array(unsignedBytes(ias[1]!, C509_DER)),
      new Uint8Array(expectTag(f[1], Tag.OctetString, C509_DER, 'hashValue').value),
    ];
  }
  return new Uint8Array(bs.bytes);
}

/** DER signature BIT STRING for a C509 signature value. */
export function signatureToDer(sigAlg: CborValue, v: CborValue): Uint8Array {
  if (isEcdsaFamily(sigAlg)) {
    if (!isBytes(v) || v.length === 0 || v.length % 2 !== 0) {
      throw new MalformedEvidence('c509.sig.shape', 'ECDSA signature must be r || s of equal lengths');
    }
    const half = v.length / 2;
    return bitStringDer(
      tlv(Tag.Sequence, unsignedInteger(v.subarray(0, half)), unsignedInteger(v.subarray(half))),
    );
  }
  if (isPop(sigAlg)) {
    if (isBytes(v)) return bitStringDer(tlv(Tag.Sequence, tlv(Tag.OctetString, v)));
    if (isArray(v) && v.length === 3 && isBytes(v[1]!) && isBytes(v[2]!)) {
      const ias = tlv(Tag.Sequence, nameToDer(v[0]!, 'DhSigStatic issuer'), unsignedInteger(v[1]));
      return bitStringDer(tlv(Tag.Sequence, ias, tlv(Tag.OctetString, v[2])));
    }
    throw new MalformedEvidence('c509.sig.shape', 'DhSigStatic must be bytes or [issuer, serial, hash]');
  }
  if (!isBytes(v)) throw new MalformedEvidence('c509.sig.shape', 'signature value must be a byte string');
  return bitStringDer(v);
}

/** Structural children of an ECDSA-family signature check, exported for verification. */
export function isEcdsaSignatureAlgorithm(sigAlg: CborValue): boolean {
  return isEcdsaFamily(sigAlg);
}
