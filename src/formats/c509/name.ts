import { MalformedEvidence, NotSupported } from '../../errors.js';
import { toHex } from '../../util/bytes.js';
import { checkOidContent, oidContent, sequence, Tag, type Tlv } from '../der/reader.js';
import { isPrintable, tlv } from '../der/writer.js';
import { type CborValue, isArray, isBytes, isInt, isTag, Tagged } from './cbor.js';
import { C509_DER, parseDer } from './der-input.js';
import { encodeUtf8, isAscii, oidDer, stringValue } from './der-values.js';
import { RDN_ATTRIBUTES } from './registry.js';

/**
 * C509 Name and SpecialText (draft-ietf-cose-cbor-encoded-cert-20 §3.1.4 issuer, §3.1.6 subject).
 *
 * Name = [ * RDNAttribute ] / SpecialText; RDNAttribute = (int, SpecialText) // (~oid, bytes). The int is the
 * C509 RDN Attributes registry value, positive for utf8String (and IA5String for IA5-only attributes),
 * negative for printableString. A Name with one commonName in utf8String is just its SpecialText.
 */

/** A C509 Name as decoded CBOR: an array of (type, value) pairs, or a SpecialText for a lone commonName. */
export type C509Name = CborValue;

const EUI64 = /^[0-9A-F]{2}(-[0-9A-F]{2}){7}$/;
const LOWER_HEX = /^(?:[0-9a-f]{2})+$/;

/** SpecialText for a text value (§3.1.4): lowercase even-length hex -> bytes, EUI-64 -> tag 48, else text. */
export function specialTextFromString(s: string): CborValue {
  if (LOWER_HEX.test(s)) return new Uint8Array(Buffer.from(s, 'hex'));
  if (EUI64.test(s)) {
    const b = new Uint8Array(Buffer.from(s.replace(/-/g, ''), 'hex'));
    // HH-HH-HH-FF-FE-HH-HH-HH is a MAC-48 embedded in EUI-64: tag 48 carries the 6-byte form.
    if (b[3] === 0xff && b[4] === 0xfe)
      return new Tagged(48, new Uint8Array([...b.subarray(0, 3), ...b.subarray(5)]));
    return new Tagged(48, b);
  }
  return s;
}

/** The text a SpecialText stands for; MalformedEvidence `c509.name.special_text` for other items. */
export function specialTextToString(v: CborValue, what: string): string {
  if (typeof v === 'string') return v;
  if (isBytes(v)) {
    if (v.length === 0) throw new MalformedEvidence('c509.name.special_text', `${what}: empty byte string`);
    return toHex(v);
  }
  if (isTag(v, 48) && isBytes(v.value) && (v.value.length === 6 || v.value.length === 8)) {
    const b =
      v.value.length === 6 ? [...v.value.subarray(0, 3), 0xff, 0xfe, ...v.value.subarray(3)] : [...v.value];
    return b.map((x) => x.toString(16).toUpperCase().padStart(2, '0')).join('-');
  }
  throw new MalformedEvidence('c509.name.special_text', `${what}: not a SpecialText`);
}

export function isSpecialText(v: CborValue): boolean {
  return typeof v === 'string' || isBytes(v) || isTag(v);
}

/** One attribute as C509 (type, value), or undefined when only the (~oid, bytes) form can carry it. */
export function attributeToC509(oid: Uint8Array, value: Tlv): [number, CborValue] | undefined {
  const reg = RDN_ATTRIBUTES.byOid[toHex(oid)];
  if (reg === undefined) return undefined;
  const okTag = reg.ia5Only
    ? value.tag === Tag.Ia5String
    : value.tag === Tag.Utf8String || value.tag === Tag.PrintableString;
  if (!okTag) return undefined;
  let s: string;
  try {
    s = stringValue(value, 'attribute value');
  } catch {
    // not valid for its string type (e.g. '@' in a PrintableString): only the (~oid, bytes) form is exact
    return undefined;
  }
  const sign = value.tag === Tag.PrintableString ? -1 : 1;
  return [sign * reg.value, specialTextFromString(s)];
}

/** DER AttributeValue for a C509 (int, SpecialText) attribute; returns the OID content and the value TLV. */
export function attributeToDer(
  type: number | bigint,
  value: CborValue,
  what: string,
): { oid: Uint8Array; value: Uint8Array } {
  const abs = typeof type === 'bigint' ? (type < 0n ? -type : type) : Math.abs(type);
  const reg = typeof abs === 'number' ? RDN_ATTRIBUTES.byValue[abs] : undefined;
  if (reg === undefined)
    throw new NotSupported('c509.name.attribute_unknown', `${what}: unknown C509 attribute type ${type}`);
  const s = specialTextToString(value, what);
  const negative = type < 0;
  let tag: number;
  if (negative) {
    if (reg.ia5Only)
      throw new MalformedEvidence(
        'c509.name.attribute_sign',
        `${what}: IA5-only attribute with a negative type`,
      );
    if (!isPrintable(s))
      throw new MalformedEvidence('c509.name.printable', `${what}: not a PrintableString value`);
    tag = Tag.PrintableString;
  } else if (reg.ia5Only) {
    if (!isAscii(s)) throw new MalformedEvidence('c509.name.ia5', `${what}: not an IA5String value`);
    tag = Tag.Ia5String;
  } else {
    tag = Tag.Utf8String;
  }
  return { oid: reg.oid, value: tlv(tag, encodeUtf8(s)) };
}

/**
 * Re-encodes a DER Name. Throws NotSupported `c509.name.multi_valued_rdn` for an RDN with more than one
 * attribute (§3.1.4: not supported).
 */
export function nameToC509(name: Tlv): C509Name {
  const out: CborValue[] = [];
  for (const rdn of sequence(name, C509_DER)) {
    const atvs = sequence(rdn, C509_DER, Tag.Set);
    if (atvs.length !== 1) {
      throw new NotSupported(
        'c509.name.multi_valued_rdn',
        'a RelativeDistinguishedName with more than one attribute',
      );
    }
    const parts = sequence(atvs[0], C509_DER);
    if (parts.length !== 2)
      throw new MalformedEvidence('c509.der.structure', 'AttributeTypeAndValue needs 2 fields');
    const oid = oidContent(parts[0]!, C509_DER);
    const pair = attributeToC509(oid, parts[1]!);
    if (pair) out.push(pair[0], pair[1]);
    else out.push(new Uint8Array(oid), new Uint8Array(parts[1]!.raw));
  }
  if (out.length === 2 && out[0] === 1) return out[1]!;
  return out;
}

/** DER Name of a C509 Name; MalformedEvidence `c509.name.*` for a value that is not a Name. */
export function nameToDer(v: C509Name, what = 'Name'): Uint8Array {
  if (isSpecialText(v)) return nameToDer([1, v], what);
  if (!isArray(v) || v.length % 2 !== 0)
    throw new MalformedEvidence('c509.name.shape', `${what}: not a C509 Name`);
  const rdns: Uint8Array[] = [];
  for (let i = 0; i < v.length; i += 2) {
    const t = v[i]!;
    const val = v[i + 1]!;
    let oid: Uint8Array;
    let valueDer: Uint8Array;
    if (isInt(t)) {
      const a = attributeToDer(t, val, what);
      oid = a.oid;
      valueDer = a.value;
    } else if (isBytes(t)) {
      checkOidContent(t, C509_DER);
      if (!isBytes(val))
        throw new MalformedEvidence('c509.name.shape', `${what}: OID attribute needs a byte string value`);
      parseDer(val); // the value must be exactly one DER TLV
      oid = t;
      valueDer = val;
    } else {
      throw new MalformedEvidence('c509.name.shape', `${what}: attribute type must be an int or an OID`);
    }
    rdns.push(tlv(Tag.Set, tlv(Tag.Sequence, oidDer(oid), valueDer)));
  }
  return tlv(Tag.Sequence, ...rdns);
}

/** Structural check of a C509 Name without converting it (used for natively signed certificates). */
export function checkC509Name(v: CborValue, what: string, native: boolean): void {
  // Type 3 SpecialText must stand for a text value; in native certificates bytes and tags are values in
  // their own right (§3.1.4), so any SpecialText (text / bytes / tag) is structurally fine there.
  const checkText = (x: CborValue) => {
    if (native && isSpecialText(x)) return;
    specialTextToString(x, what);
  };
  if (isSpecialText(v)) {
    checkText(v);
    return;
  }
  if (!isArray(v) || v.length % 2 !== 0)
    throw new MalformedEvidence('c509.name.shape', `${what}: not a C509 Name`);
  for (let i = 0; i < v.length; i += 2) {
    const t = v[i]!;
    const val = v[i + 1]!;
    if (isInt(t)) {
      // §3.1.4: in natively signed certificates the attributeType int SHALL be non-negative.
      if (native && t < 0)
        throw new MalformedEvidence('c509.name.attribute_sign', `${what}: negative attribute type`);
      specialTextToString(val, what);
    } else if (isBytes(t)) {
      checkOidContent(t, C509_DER);
      if (!isBytes(val))
        throw new MalformedEvidence('c509.name.shape', `${what}: OID attribute needs a byte string value`);
    } else {
      throw new MalformedEvidence('c509.name.shape', `${what}: attribute type must be an int or an OID`);
    }
  }
}
