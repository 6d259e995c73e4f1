import { InvalidArgument } from '../errors.js';

/**
 * A small DER writer (X.690 §10) for what the CA emits: certificates, CRLs and their extensions. Every
 * function returns a complete TLV. Lengths are minimal, INTEGERs minimal two's complement, SET OF sorted
 * (X.690 §11.6), BOOLEAN TRUE is 0xFF, times follow RFC 5280 §4.1.2.5 (UTCTime through 2049, then
 * GeneralizedTime, always in seconds with Z). Output is checked in tests by the project's strict DER
 * reader (src/formats/x509), @peculiar/x509 and OpenSSL.
 */

export type Der = Uint8Array;

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function lengthBytes(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return Uint8Array.of(0x80 | out.length, ...out);
}

/** One TLV with a single-byte identifier (all tags the CA uses are below 31). */
export function tlv(tag: number, ...content: readonly Uint8Array[]): Der {
  const body = concatBytes(content);
  return concatBytes([Uint8Array.of(tag), lengthBytes(body.length), body]);
}

export const sequence = (...items: readonly Der[]): Der => tlv(0x30, ...items);

/** SET OF: elements sorted by their encodings (X.690 §11.6). */
export function setOf(...items: readonly Der[]): Der {
  const sorted = [...items].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return tlv(0x31, ...sorted);
}

/** An INTEGER from a bigint (two's complement, minimal). */
export function integer(v: bigint | number): Der {
  let n = BigInt(v);
  if (n === 0n) return tlv(0x02, Uint8Array.of(0));
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
  return tlv(0x02, Uint8Array.from(bytes));
}

/** An INTEGER from unsigned big-endian magnitude bytes (serial numbers, ECDSA r and s). */
export function unsignedInteger(mag: Uint8Array): Der {
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  const m = mag.subarray(i);
  if (m.length === 0) return tlv(0x02, Uint8Array.of(0));
  return (m[0]! & 0x80) !== 0 ? tlv(0x02, Uint8Array.of(0), m) : tlv(0x02, m);
}

/** OBJECT IDENTIFIER from dotted text. Throws InvalidArgument `ca.der.oid`. */
export function oid(dotted: string): Der {
  const arcs = dotted.split('.').map((s) => (/^\d+$/.test(s) ? BigInt(s) : -1n));
  if (arcs.length < 2 || arcs.some((a) => a < 0n) || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! > 39n)) {
    throw new InvalidArgument('ca.der.oid', `not an OID: ${dotted}`);
  }
  const values = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  const out: number[] = [];
  for (const v of values) {
    const group: number[] = [Number(v & 0x7fn)];
    for (let x = v >> 7n; x > 0n; x >>= 7n) group.unshift(Number(x & 0x7fn) | 0x80);
    out.push(...group);
  }
  return tlv(0x06, Uint8Array.from(out));
}

export const utf8String = (s: string): Der => tlv(0x0c, new Uint8Array(Buffer.from(s, 'utf8')));

/** PrintableString; throws InvalidArgument `ca.der.printable` for characters outside its alphabet. */
export function printableString(s: string): Der {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s)) {
    throw new InvalidArgument('ca.der.printable', `not a PrintableString: ${JSON.stringify(s)}`);
  }
  return tlv(0x13, new Uint8Array(Buffer.from(s, 'ascii')));
}

export const ia5String = (s: string): Der => tlv(0x16, new Uint8Array(Buffer.from(s, 'ascii')));
export const octetString = (b: Uint8Array): Der => tlv(0x04, b);
export const NULL: Der = Uint8Array.of(0x05, 0x00);
export const boolean = (b: boolean): Der => Uint8Array.of(0x01, 0x01, b ? 0xff : 0x00);

/** BIT STRING holding whole bytes (keys, signatures). */
export const bitString = (b: Uint8Array): Der => tlv(0x03, Uint8Array.of(0), b);

/** A named-bit BIT STRING (KeyUsage): `bits` are bit numbers, trailing zero bits removed (X.690 §11.2.2). */
export function namedBits(bits: readonly number[]): Der {
  if (bits.length === 0) return tlv(0x03, Uint8Array.of(0));
  const max = Math.max(...bits);
  const bytes = new Uint8Array((max >> 3) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unused = 7 - (max & 7);
  return tlv(0x03, Uint8Array.of(unused), bytes);
}

/** [n] EXPLICIT (constructed context tag around one element). */
export const explicit = (n: number, inner: Der): Der => tlv(0xa0 | n, inner);
/** [n] IMPLICIT on a primitive value (e.g. GeneralName uniformResourceIdentifier [6]). */
export const implicitPrimitive = (n: number, content: Uint8Array): Der => tlv(0x80 | n, content);
/** [n] IMPLICIT on a constructed value: the content octets of a SEQUENCE under a context tag. */
export const implicitConstructed = (n: number, ...items: readonly Der[]): Der => tlv(0xa0 | n, ...items);

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** RFC 5280 §4.1.2.5: UTCTime for 1950-2049, GeneralizedTime otherwise; seconds, Zulu, no fraction. */
export function time(d: Date): Der {
  if (Number.isNaN(d.getTime())) throw new InvalidArgument('ca.der.time', 'invalid date');
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, new Uint8Array(Buffer.from(`${pad(y % 100)}${rest}`, 'ascii')));
  if (y < 0 || y > 9999) throw new InvalidArgument('ca.der.time', `year ${y} cannot be encoded`);
  return tlv(0x18, new Uint8Array(Buffer.from(`${pad(y, 4)}${rest}`, 'ascii')));
}

/** Drops milliseconds: certificate times have one-second resolution, so stored and encoded times agree. */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/**
 * Converts an ECDSA signature from IEEE P1363 (r ‖ s, what PKCS#11 and node's `ieee-p1363` produce) to the
 * X.509 Ecdsa-Sig-Value DER SEQUENCE { r INTEGER, s INTEGER } (RFC 5758 §3.2).
 */
export function ecdsaP1363ToDer(sig: Uint8Array): Der {
  if (sig.length === 0 || sig.length % 2 !== 0)
    throw new InvalidArgument('ca.der.ecdsa', 'bad P1363 signature length');
  const h = sig.length / 2;
  return sequence(unsignedInteger(sig.subarray(0, h)), unsignedInteger(sig.subarray(h)));
}
