import { MalformedEvidence } from '../../errors.js';
import {
  type BitString,
  checkOidContent as checkOid,
  type DerReason,
  children as derChildren,
  decodeUtf8 as derDecodeUtf8,
  expectTag as derExpectTag,
  oidContent as derOidContent,
  smallUint as derSmallUint,
  integerBytes,
  parseOne,
  bitString as readBitString,
  sequence,
  Tag,
  type Tlv,
  time,
} from '../der/reader.js';
import {
  boolean,
  isPrintable,
  namedBits,
  oidContentFromString,
  time as timeDer,
  tlv,
  unsignedInteger,
} from '../der/writer.js';

export { type BitString, ctx, oidToString, Tag, type Tlv } from '../der/reader.js';
export {
  bitString as bitStringDer,
  concatBytes as concat,
  isPrintable,
  NULL as DER_NULL,
  tlv,
  unsignedInteger as integerFromUnsigned,
} from '../der/writer.js';

/**
 * C509's view of DER (X.690): the project's strict reader and writer (src/formats/der) with C509's reasons
 * (`c509.der.truncated`, `c509.der.length`, `c509.der.indefinite_length`, `c509.der.trailing_bytes`,
 * `c509.der.structure`, `c509.der.integer`, ... and `c509.oid`), plus the conversions the C509 <-> X.509
 * re-encoding needs to be byte-exact: INTEGERs as unsigned magnitudes (~biguint), named-bit BIT STRINGs as
 * integers, OIDs as content octets, times as epoch seconds.
 */

/** C509's reason for each DER fault. */
export const C509_DER: DerReason = (fault) => (fault === 'oid' ? 'c509.oid' : `c509.der.${fault}`);

/** Largest DER input converted (certificates and requests are a few KiB). */
const MAX_DER = 1 << 20;

/** Parses exactly one TLV spanning all of `buf`. */
export function parseDer(buf: Uint8Array): Tlv {
  if (buf.length > MAX_DER) throw new MalformedEvidence('c509.der.too_large', 'DER input too large');
  return parseOne(buf, C509_DER);
}

/** The TLVs inside a constructed value. */
export const children = (t: Tlv): Tlv[] => derChildren(t, C509_DER);

/** Asserts the identifier octet; `what` names the field for the message. */
export const expectTag = (t: Tlv | undefined, tag: number, what: string): Tlv =>
  derExpectTag(t, tag, C509_DER, what);

/** Children of a SEQUENCE (or other constructed tag) after checking its tag. */
export const seq = (t: Tlv | undefined, _what: string, tag: number = Tag.Sequence): Tlv[] =>
  sequence(t, C509_DER, tag);

// ---- INTEGER ----

/**
 * The magnitude of a non-negative DER INTEGER without the sign octet (the ~biguint form C509 uses).
 * Rejects negative values (`c509.der.negative_integer`) and non-minimal encodings.
 */
export function unsignedIntegerBytes(t: Tlv, _what: string): Uint8Array {
  const c = integerBytes(t, C509_DER);
  if (c[0]! & 0x80) throw new MalformedEvidence('c509.der.negative_integer', 'negative INTEGER');
  let i = 0;
  while (i < c.length && c[i] === 0) i++;
  return c.subarray(i);
}

/** A small non-negative DER INTEGER as a number (for versions, path lengths, TLS features). */
export const smallUint = (t: Tlv, _what: string): number => derSmallUint(t, C509_DER, 2 ** 48 - 1);

export function integerFromNumber(v: number | bigint): Uint8Array {
  return unsignedInteger(uintToBytes(v));
}

/** Big-endian minimal magnitude of a non-negative integer (empty for zero). */
export function uintToBytes(v: number | bigint): Uint8Array {
  let x = BigInt(v);
  if (x < 0n) throw new MalformedEvidence('c509.der.integer', 'negative value where unsigned expected');
  const out: number[] = [];
  while (x > 0n) {
    out.unshift(Number(x & 0xffn));
    x >>= 8n;
  }
  return new Uint8Array(out);
}

export function bytesToUint(b: Uint8Array): bigint {
  let x = 0n;
  for (const v of b) x = (x << 8n) | BigInt(v);
  return x;
}

// ---- BIT STRING ----

export const bitString = (t: Tlv, _what: string): BitString => readBitString(t, C509_DER);

/**
 * Named-bit BIT STRING (KeyUsage, ReasonFlags) as the integer sum(b_i * 2^i), b0 the first (most significant)
 * bit of the first octet — the draft's keyUsage rule (-20 §3.3), which the -20 test vectors also use for
 * CRL reasons.
 */
export function namedBitsToInt(bs: BitString): bigint {
  let v = 0n;
  const nbits = bs.bytes.length * 8 - bs.unused;
  for (let i = 0; i < nbits; i++) {
    if ((bs.bytes[i >> 3]! >> (7 - (i & 7))) & 1) v |= 1n << BigInt(i);
  }
  return v;
}

/** The DER of a named-bit BIT STRING: trailing zero bits dropped (X.690 §11.2.2). */
export function namedBitsDer(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) throw new MalformedEvidence('c509.der.bit_string', 'negative named-bit value');
  const bits: number[] = [];
  for (let i = 0; v > 0n; i++, v >>= 1n) if (v & 1n) bits.push(i);
  return namedBits(bits);
}

// ---- OBJECT IDENTIFIER ----

/** Validates OID content octets (X.690 §8.19: minimal base-128 arcs, last octet of each arc < 0x80). */
export const checkOidContent = (b: Uint8Array, _what: string): void => checkOid(b, C509_DER);

export const oidContent = (t: Tlv, _what: string): Uint8Array => derOidContent(t, C509_DER);

export function oidDer(content: Uint8Array): Uint8Array {
  checkOid(content, C509_DER);
  return tlv(Tag.Oid, content);
}

/** OID content octets from dotted-decimal text (InvalidArgument `c509.oid` if it is not an OID). */
export const oidFromString = (s: string): Uint8Array => oidContentFromString(s, 'c509.oid');

// ---- strings ----

const utf8enc = new TextEncoder();

export const decodeUtf8 = (b: Uint8Array, _what: string): string => derDecodeUtf8(b, C509_DER);

export function encodeUtf8(s: string): Uint8Array {
  return utf8enc.encode(s);
}

export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Text of a DER string value of the given tag, validated against that string type's alphabet. */
export function stringValue(t: Tlv, what: string): string {
  const s = decodeUtf8(t.value, what);
  if (t.tag === Tag.PrintableString && !isPrintable(s)) {
    throw new MalformedEvidence('c509.der.string', `${what}: not a PrintableString`);
  }
  if (t.tag === Tag.Ia5String && !isAscii(s))
    throw new MalformedEvidence('c509.der.string', `${what}: not an IA5String`);
  return s;
}

// ---- time (RFC 5280 §4.1.2.5) ----

/** Seconds since the epoch of a UTCTime or GeneralizedTime in the RFC 5280 'Z' form (no fractions). */
export function timeToEpoch(t: Tlv, what: string): number {
  decodeUtf8(t.value, what); // bytes that are not UTF-8 are a string fault before they are a time fault
  return time(t, C509_DER).getTime() / 1000;
}

/** RFC 5280: UTCTime for 1950..2049, GeneralizedTime otherwise (0 <= sec < year 10000). */
export const epochToTime = (sec: number): Uint8Array => timeDer(new Date(sec * 1000), 'c509.cert.time');

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export const DER_TRUE = boolean(true);
