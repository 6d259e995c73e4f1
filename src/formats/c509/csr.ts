import { AttestationError, MalformedEvidence, NotSupported } from '../../errors.js';
import { bytesEqual } from '../../util/bytes.js';
import {
  checkOidContent,
  ctx,
  expectTag,
  oidContent,
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
  isTag,
  Tagged,
} from './cbor.js';
import { c509ToX509, certificateFromValue, x509ToC509 } from './certificate.js';
import { C509_DER, parseDer } from './der-input.js';
import { encodeUtf8, oidDer, stringValue } from './der-values.js';
import {
  extensionsFromC509,
  extensionsToC509,
  parseX509Extensions,
  x509ExtensionsDer,
} from './extensions.js';
import { type C509Name, checkC509Name, nameToC509, nameToDer } from './name.js';
import { CR_ATTRIBUTES, lookupOid } from './registry.js';
import { Unrepresentable, unrepresentable } from './unrepresentable.js';

/**
 * C509 Certification Requests (draft-ietf-cose-cbor-encoded-cert-20 §4):
 *
 *   C509CertificationRequest = [ TBSCertificationRequest, subjectSignatureValue ]
 *   TBSCertificationRequest  = ( c509CertificationRequestType, subjectSignatureAlgorithm, subject,
 *                                subjectPublicKeyAlgorithm, subjectPublicKey, attributes )
 *   CRAttribute = (int, Defined) // (~oid, bytes)   ; bytes: the DER 'values' SET OF
 *
 * Type 3 re-encodes an RFC 2986 PKCS#10 request (invertible); type 2 is natively signed over the CBOR
 * sequence of the six TBS elements.
 */

export interface C509Csr {
  readonly type: 2 | 3;
  readonly signatureAlgorithm: C509AlgorithmIdentifier;
  readonly subject: C509Name;
  readonly subjectPublicKeyAlgorithm: C509AlgorithmIdentifier;
  readonly subjectPublicKey: CborValue;
  /** Flat (attributeType, attributeValue) pairs. */
  readonly attributes: CborValue[];
  readonly signatureValue: CborValue;
  /** TBSCertificationRequest as the CBOR sequence of elements 0..5: what type 2 signs. */
  readonly tbs: Uint8Array;
}

export type C509CsrFields = Omit<C509Csr, 'tbs'>;

function bad(reason: string, message: string): never {
  throw new MalformedEvidence(reason, message);
}

export function csrElements(c: C509CsrFields): CborValue[] {
  return [
    c.type,
    c.signatureAlgorithm,
    c.subject,
    c.subjectPublicKeyAlgorithm,
    c.subjectPublicKey,
    c.attributes,
    c.signatureValue,
  ];
}

const EXTENSION_REQUEST = 0;
const CHALLENGE_PASSWORD = 1;
const POSSESSION_STATEMENT = 2;

/** Structural check of one registered CR attribute value (both types). */
function checkAttribute(type: number, value: CborValue, native: boolean): void {
  if (type === EXTENSION_REQUEST) {
    if (!isInt(value) && !(isArray(value) && value.length % 2 === 0))
      bad('c509.csr.attribute', 'extensionRequest value');
  } else if (type === CHALLENGE_PASSWORD) {
    // §4.3.2: type 2 requests allow only UTF8String (text)
    if (typeof value === 'string') return;
    if (!native && isTag(value, 121) && typeof value.value === 'string') return;
    bad('c509.csr.attribute', 'challengePassword value');
  } else if (type === POSSESSION_STATEMENT) {
    if (
      !isArray(value) ||
      value.length !== 3 ||
      !isBytes(value[1]!) ||
      !(value[2] === null || isBytes(value[2]!))
    ) {
      bad('c509.csr.attribute', 'privateKeyPossessionStatement value');
    }
    checkC509Name(value[0]!, 'privateKeyPossessionStatement issuer', native);
    if (isBytes(value[2]!)) {
      const cert = certificateFromValue(decodeCbor(value[2]));
      if (cert.type !== (native ? 2 : 3)) {
        bad('c509.csr.attribute', 'the embedded certificate type must match the request type');
      }
    }
  }
}

/** Structural validation of a decoded C509CertificationRequest array. */
export function csrFromValue(v: CborValue): C509Csr {
  if (!isArray(v) || v.length !== 7)
    bad('c509.csr.shape', 'a C509CertificationRequest is an array of 7 elements');
  const [type, sigAlg, subject, pkAlg, pk, attrs, sig] = v as CborValue[];
  if (type !== 2 && type !== 3) {
    if (!isInt(type!)) bad('c509.csr.shape', 'c509CertificationRequestType must be an int');
    throw new NotSupported('c509.csr.type', `C509 request type ${type} is not supported (2 and 3 are)`);
  }
  checkAlgId(sigAlg!, 'subjectSignatureAlgorithm');
  checkC509Name(subject!, 'subject', type === 2);
  checkAlgId(pkAlg!, 'subjectPublicKeyAlgorithm');
  if (!isArray(attrs!) || attrs.length % 2 !== 0)
    bad('c509.csr.shape', 'attributes must be an array of pairs');
  for (let i = 0; i < attrs.length; i += 2) {
    const t = attrs[i]!;
    if (isInt(t)) {
      if (typeof t === 'number') checkAttribute(t, attrs[i + 1]!, type === 2);
    } else if (isBytes(t)) {
      checkOidContent(t, C509_DER);
      if (!isBytes(attrs[i + 1]!)) bad('c509.csr.attribute', 'an OID attribute needs a byte string value');
    } else {
      bad('c509.csr.attribute', 'attributeType must be an int or an OID');
    }
  }
  const fields: C509CsrFields = {
    type,
    signatureAlgorithm: sigAlg!,
    subject: subject!,
    subjectPublicKeyAlgorithm: pkAlg!,
    subjectPublicKey: pk!,
    attributes: attrs,
    signatureValue: sig!,
  };
  return { ...fields, tbs: encodeCborSequence(csrElements(fields).slice(0, 6)) };
}

/**
 * Decodes a C509 certification request (type 2 or 3) and checks its structure. Throws MalformedEvidence
 * `c509.cbor.*`, `c509.csr.*`, `c509.name.*`, `c509.alg.*`; NotSupported `c509.csr.type`.
 */
export function parseC509Csr(bytes: Uint8Array): C509Csr {
  return csrFromValue(decodeCbor(bytes));
}

export function encodeC509Csr(c: C509CsrFields): Uint8Array {
  return encodeCbor(csrElements(c));
}

// ---- attributes ----

function attributeValueToC509(type: number, values: Tlv[]): CborValue {
  if (values.length !== 1) unrepresentable('attribute with more than one value');
  const v = values[0]!;
  if (type === EXTENSION_REQUEST) return extensionsToC509(parseX509Extensions(v));
  if (type === CHALLENGE_PASSWORD) {
    if (v.tag === Tag.Utf8String) return stringValue(v, 'challengePassword');
    if (v.tag === Tag.PrintableString) return new Tagged(121, stringValue(v, 'challengePassword'));
    return unrepresentable('challengePassword string type');
  }
  if (type === POSSESSION_STATEMENT) {
    // RFC 9883: PrivateKeyPossessionStatement ::= SEQUENCE { signer IssuerAndSerialNumber, cert Certificate OPTIONAL }
    const f = sequence(v, C509_DER);
    if (f.length < 1 || f.length > 2) bad('c509.der.structure', 'PrivateKeyPossessionStatement');
    const ias = sequence(f[0], C509_DER);
    if (ias.length !== 2) bad('c509.der.structure', 'IssuerAndSerialNumber');
    const cert = f[1] === undefined ? null : x509ToC509(expectTag(f[1], Tag.Sequence, C509_DER, 'cert').raw);
    return [nameToC509(ias[0]!), new Uint8Array(unsignedBytes(ias[1]!, C509_DER)), cert];
  }
  return unrepresentable('attribute');
}

function attributeValueToDer(type: number, value: CborValue): Uint8Array {
  if (type === EXTENSION_REQUEST) return x509ExtensionsDer(extensionsFromC509(value));
  if (type === CHALLENGE_PASSWORD) {
    if (typeof value === 'string') return tlv(Tag.Utf8String, encodeUtf8(value));
    if (isTag(value, 121) && typeof value.value === 'string') {
      return tlv(Tag.PrintableString, encodeUtf8(value.value));
    }
    return bad('c509.csr.attribute', 'challengePassword value');
  }
  if (type === POSSESSION_STATEMENT) {
    if (!isArray(value) || value.length !== 3 || !isBytes(value[1]!))
      bad('c509.csr.attribute', 'privateKeyPossessionStatement');
    const [issuer, serial, cert] = value;
    const ias = tlv(Tag.Sequence, nameToDer(issuer!, 'signer issuer'), unsignedInteger(serial as Uint8Array));
    if (cert === null) return tlv(Tag.Sequence, ias);
    if (!isBytes(cert!)) bad('c509.csr.attribute', 'privateKeyPossessionStatement cert');
    return tlv(Tag.Sequence, ias, c509ToX509(cert));
  }
  throw new NotSupported('c509.csr.attribute_unknown', `unknown C509 CR attribute ${type}`);
}

function attributeDer(oid: Uint8Array, valuesSet: Uint8Array): Uint8Array {
  return tlv(Tag.Sequence, oidDer(oid), valuesSet);
}

function attributesToC509(attrs: Tlv): CborValue[] {
  const out: CborValue[] = [];
  for (const a of sequence(attrs, C509_DER, ctx(0, true))) {
    const [typeT, valuesT, ...more] = sequence(a, C509_DER);
    if (more.length > 0 || valuesT === undefined) bad('c509.der.structure', 'Attribute');
    const oid = new Uint8Array(oidContent(typeT!, C509_DER));
    const values = sequence(valuesT, C509_DER, Tag.Set);
    const reg = lookupOid(CR_ATTRIBUTES, oid);
    let done = false;
    if (reg !== undefined) {
      try {
        const v = attributeValueToC509(reg.value, values);
        if (bytesEqual(attributeDer(oid, tlv(Tag.Set, attributeValueToDer(reg.value, v))), a.raw)) {
          out.push(reg.value, v);
          done = true;
        }
      } catch (e) {
        if (!(e instanceof Unrepresentable) && !(e instanceof AttestationError)) throw e;
      }
    }
    if (!done) out.push(oid, new Uint8Array(valuesT.raw));
  }
  return out;
}

function attributesToDer(attrs: CborValue[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < attrs.length; i += 2) {
    const t = attrs[i]!;
    const v = attrs[i + 1]!;
    if (isInt(t)) {
      const reg = typeof t === 'number' ? CR_ATTRIBUTES.byValue[t] : undefined;
      if (reg === undefined)
        throw new NotSupported('c509.csr.attribute_unknown', `unknown C509 CR attribute ${t}`);
      parts.push(attributeDer(reg.oid, tlv(Tag.Set, attributeValueToDer(reg.value, v))));
    } else {
      const set = parseDer(v as Uint8Array);
      if (set.tag !== Tag.Set)
        bad('c509.csr.attribute', 'an OID attribute value must be the DER values SET OF');
      parts.push(attributeDer(t as Uint8Array, v as Uint8Array));
    }
  }
  return tlv(ctx(0, true), ...parts);
}

// ---- conversion ----

interface Internal {
  readonly compress: boolean;
  readonly ecdsaHalf?: number;
}

function x509CsrToValue(der: Uint8Array, opts: Internal): CborValue[] {
  const req = sequence(parseDer(der), C509_DER);
  if (req.length !== 3) bad('c509.der.structure', 'CertificationRequest needs 3 fields');
  const [criT, sigAlgT, sigT] = req as [Tlv, Tlv, Tlv];
  const cri = sequence(criT, C509_DER);
  if (cri.length !== 4) bad('c509.der.structure', 'CertificationRequestInfo needs 4 fields');
  if (smallUint(cri[0]!, C509_DER) !== 0)
    throw new NotSupported('c509.csr.version', 'only version 1 (0) requests are defined');
  const subject = nameToC509(expectTag(cri[1], Tag.Sequence, C509_DER, 'subject'));
  const spki = sequence(cri[2], C509_DER);
  if (spki.length !== 2) bad('c509.der.structure', 'SubjectPublicKeyInfo');
  const pkAlg = algIdToC509(spki[0]!, 'pk');
  const sigAlg = algIdToC509(expectTag(sigAlgT, Tag.Sequence, C509_DER, 'signatureAlgorithm'), 'sig');
  // the request is signed with the subject key: its curve sizes an ECDSA signature
  const half = opts.ecdsaHalf ?? ecdsaHalfLength(pkAlg);
  return [
    3,
    sigAlg,
    subject,
    pkAlg,
    publicKeyToC509(pkAlg, spki[1]!, { compress: opts.compress ? 'reencoded' : 'none' }),
    attributesToC509(cri[3]!),
    signatureToC509(sigAlg, sigT, half !== undefined ? { ecdsaHalfLength: half } : {}),
  ];
}

/** DER CertificationRequestInfo of a type 3 request: what its signature (or PoP MAC) covers. */
export function certificationRequestInfoDer(c: C509Csr): Uint8Array {
  return tlv(
    Tag.Sequence,
    new Uint8Array([0x02, 0x01, 0x00]),
    nameToDer(c.subject, 'subject'),
    tlv(
      Tag.Sequence,
      algIdToDer(c.subjectPublicKeyAlgorithm, 'pk'),
      publicKeyToDer(c.subjectPublicKeyAlgorithm, c.subjectPublicKey),
    ),
    attributesToDer(c.attributes),
  );
}

function c509CsrToDer(c: C509Csr): Uint8Array {
  if (c.type !== 3)
    throw new NotSupported('c509.csr.native', 'a natively signed (type 2) C509 request has no PKCS#10 form');
  return tlv(
    Tag.Sequence,
    certificationRequestInfoDer(c),
    algIdToDer(c.signatureAlgorithm, 'sig'),
    signatureToDer(c.signatureAlgorithm, c.signatureValue),
  );
}

/**
 * DER PKCS#10 request -> C509 request type 3 (§4), byte-exact invertible (checked by converting back).
 * Throws MalformedEvidence `c509.der.*`; NotSupported `c509.csr.version`, `c509.name.multi_valued_rdn`,
 * `c509.csr.not_invertible`.
 */
export function x509CsrToC509(der: Uint8Array, opts: { compressPoints?: boolean } = {}): Uint8Array {
  const out = encodeCbor(x509CsrToValue(der, { compress: opts.compressPoints === true }));
  let back: Uint8Array;
  try {
    back = c509CsrToDer(csrFromValue(decodeCbor(out)));
  } catch (e) {
    throw new NotSupported(
      'c509.csr.not_invertible',
      `the request has no exact C509 form: ${(e as Error).message}`,
    );
  }
  if (!bytesEqual(back, der))
    throw new NotSupported('c509.csr.not_invertible', 'the request has no exact C509 form');
  return out;
}

/**
 * C509 request type 3 -> the DER PKCS#10 request it re-encodes. The input must be canonical (converting the
 * DER back reproduces it). Throws MalformedEvidence `c509.*`, `c509.not_canonical`; NotSupported
 * `c509.csr.native` for type 2.
 */
export function c509CsrToX509(bytes: Uint8Array): Uint8Array {
  const c = parseC509Csr(bytes);
  const der = c509CsrToDer(c);
  const pk = c.subjectPublicKey;
  const compress = isBytes(pk) && (pk[0] === 0xfe || pk[0] === 0xfd);
  const sig = c.signatureValue;
  const half = isEcdsaSignatureAlgorithm(c.signatureAlgorithm) && isBytes(sig) ? sig.length / 2 : undefined;
  const again = encodeCbor(
    x509CsrToValue(der, half !== undefined ? { compress, ecdsaHalf: half } : { compress }),
  );
  if (!bytesEqual(again, bytes))
    bad('c509.not_canonical', 'the C509 request is not the canonical encoding of its PKCS#10 form');
  return der;
}

/** The DER subject Name of a request. */
export function csrSubjectDer(c: C509Csr): Uint8Array {
  return nameToDer(c.subject, 'subject');
}

/** A registered attribute's value, if present (e.g. 0 extensionRequest). */
export function csrAttribute(c: C509Csr, type: number): CborValue | undefined {
  for (let i = 0; i < c.attributes.length; i += 2) if (c.attributes[i] === type) return c.attributes[i + 1];
  return undefined;
}
