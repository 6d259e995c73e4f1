import { MalformedEvidence } from '../../errors.js';

/**
 * A small, strict DER tag-length-value reader (X.690 §8.1 and the DER rules of §10): definite lengths in
 * minimal form only, low tag numbers in one byte. It decodes only what the caller walks into, so it is
 * fast (certificates on the quote-verification hot path) and has no recursion a hostile input could
 * deepen. Every failure is MalformedEvidence with the caller's reason.
 */

export const Cls = { universal: 0, application: 1, context: 2, private: 3 } as const;

export const Tag = {
  boolean: 1,
  integer: 2,
  bitString: 3,
  octetString: 4,
  null: 5,
  oid: 6,
  utf8String: 12,
  sequence: 16,
  set: 17,
  utcTime: 23,
  generalizedTime: 24,
} as const;

export interface Tlv {
  readonly buf: Uint8Array;
  readonly cls: number;
  readonly constructed: boolean;
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

function fail(reason: string, why: string): never {
  throw new MalformedEvidence(reason, `${reason}: ${why}`);
}

/** Reads one TLV at `off`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, off: number, limit: number, reason: string): Tlv {
  if (off + 2 > limit) fail(reason, 'truncated DER header');
  const id = buf[off]!;
  let tag = id & 0x1f;
  let p = off + 1;
  if (tag === 0x1f) {
    tag = 0;
    let first = true;
    for (;;) {
      if (p >= limit) fail(reason, 'truncated DER tag');
      const b = buf[p++]!;
      if (first && b === 0x80) fail(reason, 'non-minimal DER tag');
      first = false;
      tag = tag * 128 + (b & 0x7f);
      if (tag > 0xffffff) fail(reason, 'DER tag number too large');
      if ((b & 0x80) === 0) break;
    }
    if (tag < 31) fail(reason, 'non-minimal DER tag');
  }
  if (p >= limit) fail(reason, 'truncated DER length');
  let len = buf[p++]!;
  if (len === 0x80) fail(reason, 'indefinite length is not DER');
  if (len > 0x80) {
    const n = len & 0x7f;
    if (n > 4 || p + n > limit) fail(reason, 'bad DER length');
    if (buf[p] === 0) fail(reason, 'non-minimal DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
    if (len < 0x80) fail(reason, 'non-minimal DER length');
  }
  const end = p + len;
  if (end > limit) fail(reason, 'DER length runs past the end');
  return { buf, cls: id >> 6, constructed: (id & 0x20) !== 0, tag, start: off, valueStart: p, end };
}

/** Decodes one TLV that must fill `bytes` exactly. */
export function decodeTlv(bytes: Uint8Array, reason: string): Tlv {
  const t = readTlv(bytes, 0, bytes.length, reason);
  if (t.end !== bytes.length) fail(reason, `${bytes.length - t.end} trailing bytes after DER`);
  return t;
}

/** The elements inside a constructed TLV; they must fill it exactly. */
export function childrenOf(t: Tlv, reason: string): Tlv[] {
  if (!t.constructed) fail(reason, 'expected a constructed element');
  const out: Tlv[] = [];
  for (let off = t.valueStart; off < t.end; ) {
    const c = readTlv(t.buf, off, t.end, reason);
    out.push(c);
    off = c.end;
  }
  return out;
}

export function is(t: Tlv | undefined, cls: number, tag: number): t is Tlv {
  return t !== undefined && t.cls === cls && t.tag === tag;
}

/** The children of a universal SEQUENCE. */
export function seq(t: Tlv | undefined, reason: string): Tlv[] {
  if (!is(t, Cls.universal, Tag.sequence) || !t.constructed) fail(reason, 'expected a SEQUENCE');
  return childrenOf(t, reason);
}

export function value(t: Tlv): Uint8Array {
  return t.buf.subarray(t.valueStart, t.end);
}

export function raw(t: Tlv): Uint8Array {
  return t.buf.subarray(t.start, t.end);
}

function primitive(t: Tlv | undefined, tag: number, what: string, reason: string): Uint8Array {
  if (!is(t, Cls.universal, tag) || t.constructed) fail(reason, `expected ${what}`);
  return value(t);
}

/** INTEGER contents, checked minimal (X.690 §8.3.2). */
export function integerBytes(t: Tlv | undefined, reason: string): Uint8Array {
  const v = primitive(t, Tag.integer, 'an INTEGER', reason);
  if (
    v.length === 0 ||
    (v.length > 1 && ((v[0] === 0 && v[1]! < 0x80) || (v[0] === 0xff && v[1]! >= 0x80)))
  ) {
    fail(reason, 'INTEGER is not minimally encoded');
  }
  return v;
}

/** A small non-negative INTEGER as a number. */
export function smallUnsigned(t: Tlv | undefined, reason: string, max: number): number {
  const v = integerBytes(t, reason);
  if (v[0]! >= 0x80 || v.length > 4) fail(reason, 'INTEGER out of range');
  let n = 0;
  for (const b of v) n = n * 256 + b;
  if (n > max) fail(reason, 'INTEGER out of range');
  return n;
}

export function booleanOf(t: Tlv | undefined, reason: string): boolean {
  const v = primitive(t, Tag.boolean, 'a BOOLEAN', reason);
  if (v.length !== 1 || (v[0] !== 0 && v[0] !== 0xff)) fail(reason, 'BOOLEAN must be 00 or FF in DER');
  return v[0] === 0xff;
}

export function octets(t: Tlv | undefined, reason: string): Uint8Array {
  return primitive(t, Tag.octetString, 'an OCTET STRING', reason);
}

/** BIT STRING contents without the unused-bits byte, plus that count. */
export function bitString(t: Tlv | undefined, reason: string): { bytes: Uint8Array; unused: number } {
  const v = primitive(t, Tag.bitString, 'a BIT STRING', reason);
  if (v.length === 0 || v[0]! > 7 || (v.length === 1 && v[0] !== 0)) fail(reason, 'bad BIT STRING');
  return { bytes: v.subarray(1), unused: v[0]! };
}

/** OBJECT IDENTIFIER in dotted form (X.690 §8.19), with minimal subidentifiers. */
export function oidOf(t: Tlv | undefined, reason: string): string {
  const v = primitive(t, Tag.oid, 'an OBJECT IDENTIFIER', reason);
  if (v.length === 0 || v.length > 64) fail(reason, 'bad OBJECT IDENTIFIER length');
  const arcs: bigint[] = [];
  let acc = 0n;
  let startOfArc = true;
  for (const b of v) {
    if (startOfArc && b === 0x80) fail(reason, 'non-minimal OBJECT IDENTIFIER');
    acc = (acc << 7n) | BigInt(b & 0x7f);
    startOfArc = (b & 0x80) === 0;
    if (startOfArc) {
      arcs.push(acc);
      acc = 0n;
    }
  }
  if (!startOfArc) fail(reason, 'truncated OBJECT IDENTIFIER');
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), the DER forms RFC 5280 §4.1.2.5 allows. */
export function timeOf(t: Tlv | undefined, reason: string): Date {
  if (t === undefined || t.cls !== Cls.universal || t.constructed) fail(reason, 'expected a time');
  const s = Buffer.from(value(t)).toString('latin1');
  const utc = t.tag === Tag.utcTime ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  const gen = t.tag === Tag.generalizedTime ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  const m = utc ?? gen;
  if (m === null) fail(reason, 'time is not a DER UTCTime/GeneralizedTime');
  // RFC 5280 §4.1.2.5.1: two-digit years 50-99 are 19xx, 00-49 are 20xx.
  const year = utc ? (Number(m[1]) >= 50 ? 1900 : 2000) + Number(m[1]) : Number(m[1]);
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  // setUTCFullYear, not Date.UTC: the latter maps years 0-99 to 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(year, mo - 1, d);
  date.setUTCHours(h, mi, se, 0);
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    fail(reason, 'time is not a valid date');
  }
  return date;
}
