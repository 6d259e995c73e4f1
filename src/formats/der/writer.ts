import { InvalidArgument } from '../../errors.js';
import { concatBytes } from '../../util/bytes.js';
import { Tag } from './reader.js';

/**
 * The project's one DER writer (X.690 §10): what the platform CA, the SNP simulator and the C509
 * converter emit. Every function returns a complete element. Lengths are minimal, INTEGERs minimal two's
 * complement, SET OF sorted (X.690 §11.6), BOOLEAN TRUE is FF, times follow RFC 5280 §4.1.2.5 (UTCTime
 * for 1950-2049, GeneralizedTime otherwise, whole seconds, Z). Output is read back in tests by the strict
 * reader (reader.ts), @peculiar/x509 and OpenSSL.
 *
 * Values a caller can get wrong (an OID string, a PrintableString, a date) throw InvalidArgument with the
 * caller's reason (default `der.<what>`).
 */

export type Der = Uint8Array;

export { concatBytes };

function lengthOctets(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return [0x80 | out.length, ...out];
}

/** One element with a single identifier octet (every tag used here is below 31). */
export function tlv(tag: number, ...content: readonly Uint8Array[]): Der {
  const body = content.length === 1 ? content[0]! : concatBytes(content);
  const hdr = [tag, ...lengthOctets(body.length)];
  const out = new Uint8Array(hdr.length + body.length);
  out.set(hdr, 0);
  out.set(body, hdr.length);
  return out;
}

export const sequence = (...items: readonly Der[]): Der => tlv(Tag.Sequence, ...items);

/** SET OF: elements sorted by their encodings (X.690 §11.6). */
export function setOf(...items: readonly Der[]): Der {
  const sorted = [...items].sort((a, b) => Buffer.compare(a, b));
  return tlv(Tag.Set, ...sorted);
}

/** [n] EXPLICIT, or [n] IMPLICIT on a constructed value: a constructed context tag around the elements. */
export const explicit = (n: number, ...inner: readonly Der[]): Der => tlv(0xa0 | n, ...inner);
/** [n] IMPLICIT on a primitive value (e.g. GeneralName uniformResourceIdentifier [6]). */
export const implicitPrimitive = (n: number, content: Uint8Array): Der => tlv(0x80 | n, content);

/** An INTEGER from a bigint or safe integer (two's complement, minimal). */
export function integer(v: bigint | number): Der {
  let n = BigInt(v);
  if (n === 0n) return tlv(Tag.Integer, Uint8Array.of(0));
  const bytes: number[] = [];
  const negative = n < 0n;
  for (;;) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
    if (
      (!negative && n === 0n && (bytes[0]! & 0x80) === 0) ||
      (negative && n === -1n && (bytes[0]! & 0x80) !== 0)
    ) {
      break;
    }
  }
  return tlv(Tag.Integer, Uint8Array.from(bytes));
}

/** An INTEGER from unsigned big-endian magnitude octets (serial numbers, ECDSA r and s, C509 ~biguint). */
export function unsignedInteger(mag: Uint8Array): Der {
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  const m = mag.subarray(i);
  if (m.length === 0) return tlv(Tag.Integer, Uint8Array.of(0));
  return (m[0]! & 0x80) !== 0 ? tlv(Tag.Integer, Uint8Array.of(0), m) : tlv(Tag.Integer, m);
}

/** OBJECT IDENTIFIER contents from dotted text. Throws InvalidArgument `reason`. */
export function oidContentFromString(dotted: string, reason = 'der.oid'): Uint8Array {
  const arcs = dotted.split('.').map((s) => (/^\d+$/.test(s) ? BigInt(s) : -1n));
  if (arcs.length < 2 || arcs.some((a) => a < 0n) || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! > 39n)) {
    throw new InvalidArgument(reason, `not an OID: ${dotted}`);
  }
  const values = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  const out: number[] = [];
  for (const v of values) {
    const group: number[] = [Number(v & 0x7fn)];
    for (let x = v >> 7n; x > 0n; x >>= 7n) group.unshift(Number(x & 0x7fn) | 0x80);
    out.push(...group);
  }
  return Uint8Array.from(out);
}

/** OBJECT IDENTIFIER from dotted text. Throws InvalidArgument `reason`. */
export const oid = (dotted: string, reason = 'der.oid'): Der =>
  tlv(Tag.Oid, oidContentFromString(dotted, reason));

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** The PrintableString alphabet (X.680 §41.4). */
export const isPrintable = (s: string): boolean => PRINTABLE.test(s);

export const utf8String = (s: string): Der => tlv(Tag.Utf8String, new Uint8Array(Buffer.from(s, 'utf8')));

/** PrintableString; throws InvalidArgument `reason` for characters outside its alphabet. */
export function printableString(s: string, reason = 'der.printable'): Der {
  if (!isPrintable(s)) throw new InvalidArgument(reason, `not a PrintableString: ${JSON.stringify(s)}`);
  return tlv(Tag.PrintableString, new Uint8Array(Buffer.from(s, 'ascii')));
}

export const ia5String = (s: string): Der => tlv(Tag.Ia5String, new Uint8Array(Buffer.from(s, 'ascii')));
export const octetString = (b: Uint8Array): Der => tlv(Tag.OctetString, b);
export const NULL: Der = Uint8Array.of(0x05, 0x00);
export const boolean = (b: boolean): Der => Uint8Array.of(0x01, 0x01, b ? 0xff : 0x00);

/** BIT STRING: `unused` bits of the last octet (0 for keys and signatures). */
export const bitString = (b: Uint8Array, unused = 0): Der => tlv(Tag.BitString, Uint8Array.of(unused), b);

/** A named-bit BIT STRING (KeyUsage): `bits` are bit numbers, trailing zero bits removed (X.690 §11.2.2). */
export function namedBits(bits: readonly number[]): Der {
  if (bits.length === 0) return tlv(Tag.BitString, Uint8Array.of(0));
  const max = Math.max(...bits);
  const bytes = new Uint8Array((max >> 3) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return bitString(bytes, 7 - (max & 7));
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * RFC 5280 §4.1.2.5: UTCTime for 1950-2049, GeneralizedTime otherwise; seconds, Zulu, no fraction
 * (milliseconds are dropped). Throws InvalidArgument `reason` for an invalid date or a year beyond 0-9999.
 */
export function time(d: Date, reason = 'der.time'): Der {
  if (Number.isNaN(d.getTime())) throw new InvalidArgument(reason, 'invalid date');
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050)
    return tlv(Tag.UtcTime, new Uint8Array(Buffer.from(`${pad(y % 100)}${rest}`, 'ascii')));
  if (y < 0 || y > 9999) throw new InvalidArgument(reason, `year ${y} cannot be encoded`);
  return tlv(Tag.GeneralizedTime, new Uint8Array(Buffer.from(`${pad(y, 4)}${rest}`, 'ascii')));
}

/** Drops milliseconds: certificate times have one-second resolution, so stored and encoded times agree. */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/**
 * Converts an ECDSA signature from IEEE P1363 (r ‖ s, what PKCS#11 and node's `ieee-p1363` produce) to the
 * X.509 Ecdsa-Sig-Value SEQUENCE { r INTEGER, s INTEGER } (RFC 5758 §3.2). Throws InvalidArgument `reason`.
 */
export function ecdsaP1363ToDer(sig: Uint8Array, reason = 'der.ecdsa'): Der {
  if (sig.length === 0 || sig.length % 2 !== 0)
    throw new InvalidArgument(reason, 'bad P1363 signature length');
  const h = sig.length / 2;
  return sequence(unsignedInteger(sig.subarray(0, h)), unsignedInteger(sig.subarray(h)));
}
