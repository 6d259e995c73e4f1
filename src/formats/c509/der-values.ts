import { MalformedEvidence } from '../../errors.js';
import { type BitString, checkOidContent, decodeUtf8, Tag, type Tlv, time } from '../der/reader.js';
import { isPrintable, namedBits, time as timeDer, tlv } from '../der/writer.js';
import { C509_DER } from './der-input.js';

/**
 * The value conversions C509 <-> X.509 re-encoding needs to be byte-exact (draft-ietf-cose-cbor-encoded-
 * cert-20 §3): unsigned integers as CBOR's big-endian magnitudes (~biguint), named-bit BIT STRINGs as
 * integers, OIDs as content octets, times as epoch seconds, string values checked against their DER type's
 * alphabet. Malformed input throws MalformedEvidence with C509's reasons (der-input.ts).
 */

/** Big-endian minimal magnitude of a non-negative integer (empty for zero). Throws `c509.der.integer`. */
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

/** The non-negative integer of big-endian bytes. */
export function bytesToUint(b: Uint8Array): bigint {
  let x = 0n;
  for (const v of b) x = (x << 8n) | BigInt(v);
  return x;
}

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

/** The DER of a named-bit BIT STRING from that integer: trailing zero bits dropped (X.690 §11.2.2). */
export function namedBitsDer(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) throw new MalformedEvidence('c509.der.bit_string', 'negative named-bit value');
  const bits: number[] = [];
  for (let i = 0; v > 0n; i++, v >>= 1n) if (v & 1n) bits.push(i);
  return namedBits(bits);
}

/** An OBJECT IDENTIFIER element from content octets that came from CBOR (checked: `c509.oid`). */
export function oidDer(content: Uint8Array): Uint8Array {
  checkOidContent(content, C509_DER);
  return tlv(Tag.Oid, content);
}

const utf8 = new TextEncoder();

export function encodeUtf8(s: string): Uint8Array {
  return utf8.encode(s);
}

export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * Text of a DER string value of the given tag, checked against that string type's alphabet. Throws
 * MalformedEvidence `c509.der.string`; `what` names the field in the message.
 */
export function stringValue(t: Tlv, what: string): string {
  const s = decodeUtf8(t.value, C509_DER);
  if (t.tag === Tag.PrintableString && !isPrintable(s)) {
    throw new MalformedEvidence('c509.der.string', `${what}: not a PrintableString`);
  }
  if (t.tag === Tag.Ia5String && !isAscii(s))
    throw new MalformedEvidence('c509.der.string', `${what}: not an IA5String`);
  return s;
}

/** Seconds since the epoch of a UTCTime or GeneralizedTime in the RFC 5280 'Z' form (no fractions). */
export function timeToEpoch(t: Tlv): number {
  decodeUtf8(t.value, C509_DER); // bytes that are not UTF-8 are a string fault before they are a time fault
  return time(t, C509_DER).getTime() / 1000;
}

/**
 * RFC 5280 §4.1.2.5: UTCTime for 1950..2049, GeneralizedTime otherwise (0 <= sec < year 10000). Throws
 * InvalidArgument `c509.cert.time`.
 */
export const epochToTime = (sec: number): Uint8Array => timeDer(new Date(sec * 1000), 'c509.cert.time');
