import { MalformedEvidence } from '../../errors.js';

/**
 * A strict DER reader (ITU-T X.690 §10) for the few certificate and CRL structures the SNP verifier needs.
 *
 * Why not asn1js: it decodes BER (indefinite lengths, non-minimal lengths, constructed strings), so two
 * different byte strings can parse to the same value. Signatures are checked over the exact TBS bytes, and
 * a parser that is stricter than the signer removes any room for parse differentials. Every read is
 * bounds-checked; bad input throws MalformedEvidence with reason `<what>.der`, never a RangeError.
 */

/** Universal tags used here. */
export const Tag = {
  Boolean: 0x01,
  Integer: 0x02,
  BitString: 0x03,
  OctetString: 0x04,
  Null: 0x05,
  Oid: 0x06,
  Utf8String: 0x0c,
  PrintableString: 0x13,
  Ia5String: 0x16,
  UtcTime: 0x17,
  GeneralizedTime: 0x18,
  Sequence: 0x30,
  Set: 0x31,
} as const;

/** Context-specific constructed tag [n]. */
export const ctx = (n: number): number => 0xa0 | n;

export interface Tlv {
  /** The identifier octet (low-tag-number form only; X.509 needs nothing else). */
  readonly tag: number;
  /** The whole element: identifier, length and contents. */
  readonly raw: Uint8Array;
  /** The contents octets. */
  readonly value: Uint8Array;
}

/** Largest length accepted: AMD certificates are ~1.5 KiB and CRLs a few KiB; 16 MiB bounds hostile input. */
const MAX_LENGTH = 1 << 24;

export function derFail(what: string, message: string): never {
  throw new MalformedEvidence(`${what}.der`, `${what}: ${message}`);
}

/** Reads one element at `offset` of `buf`; the element must lie inside `buf`. */
export function readTlv(buf: Uint8Array, offset: number, what: string): Tlv {
  if (offset + 2 > buf.length) derFail(what, 'truncated element header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) derFail(what, 'high tag numbers are not used in X.509');
  let len = buf[offset + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // 0x80 is BER's indefinite length; more than 3 length bytes exceeds MAX_LENGTH anyway.
    if (n === 0 || n > 3) derFail(what, n === 0 ? 'indefinite length' : 'length too large');
    if (offset + 2 + n > buf.length) derFail(what, 'truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    // DER: the shortest form (long form only from 128; no leading zero length byte).
    if (len < 0x80 || buf[offset + 2]! === 0) derFail(what, 'non-minimal length');
    hdr += n;
  }
  if (len > MAX_LENGTH) derFail(what, 'length too large');
  const end = offset + hdr + len;
  if (end > buf.length) derFail(what, 'element runs past its container');
  return { tag, raw: buf.subarray(offset, end), value: buf.subarray(offset + hdr, end) };
}

/** Parses `buf` as exactly one element of `tag` (no trailing bytes). */
export function parseOne(buf: Uint8Array, tag: number, what: string): Tlv {
  const t = readTlv(buf, 0, what);
  if (t.tag !== tag) derFail(what, `expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  if (t.raw.length !== buf.length) derFail(what, 'trailing bytes after the element');
  return t;
}

/** Sequential reader over the contents of a constructed element. */
export class DerSeq {
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  /** The tag of the next element, or undefined at the end. */
  peek(): number | undefined {
    return this.pos < this.buf.length ? this.buf[this.pos] : undefined;
  }

  /** Reads the next element, which must carry `tag`. */
  next(tag: number, name = 'element'): Tlv {
    if (this.pos >= this.buf.length) derFail(this.what, `missing ${name}`);
    const t = readTlv(this.buf, this.pos, this.what);
    if (t.tag !== tag) {
      derFail(this.what, `${name}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
    }
    this.pos += t.raw.length;
    return t;
  }

  /** Reads the next element if it carries `tag`. */
  optional(tag: number): Tlv | undefined {
    return this.peek() === tag ? this.next(tag) : undefined;
  }

  /** Reads the next element whatever its tag. */
  any(name = 'element'): Tlv {
    if (this.pos >= this.buf.length) derFail(this.what, `missing ${name}`);
    const t = readTlv(this.buf, this.pos, this.what);
    this.pos += t.raw.length;
    return t;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** Requires that every element was consumed. */
  end(): void {
    if (this.pos !== this.buf.length) derFail(this.what, 'unexpected trailing elements');
  }
}

export function seq(t: Tlv, what: string): DerSeq {
  return new DerSeq(t.value, what);
}

/** INTEGER contents must be minimal two's complement (X.690 §8.3.2). */
function checkInteger(t: Tlv, what: string): void {
  const v = t.value;
  if (v.length === 0) derFail(what, 'empty INTEGER');
  if (v.length > 1 && ((v[0] === 0 && !(v[1]! & 0x80)) || (v[0] === 0xff && v[1]! & 0x80))) {
    derFail(what, 'non-minimal INTEGER');
  }
}

/** INTEGER as its minimal contents bytes (for serial numbers, compared byte-wise). */
export function integerBytes(t: Tlv, what: string): Uint8Array {
  checkInteger(t, what);
  return t.value;
}

/** INTEGER as a bigint (two's complement). */
export function integerBig(t: Tlv, what: string): bigint {
  checkInteger(t, what);
  let n = 0n;
  for (const b of t.value) n = (n << 8n) | BigInt(b);
  if (t.value[0]! & 0x80) n -= 1n << BigInt(8 * t.value.length);
  return n;
}

/** A small non-negative INTEGER (versions, SPLs, salt lengths): 0 <= n <= max. */
export function smallUint(t: Tlv, what: string, max: number): number {
  const n = integerBig(t, what);
  if (n < 0n || n > BigInt(max)) derFail(what, `integer ${n} outside 0..${max}`);
  return Number(n);
}

export function boolean(t: Tlv, what: string): boolean {
  if (t.value.length !== 1 || (t.value[0] !== 0 && t.value[0] !== 0xff)) derFail(what, 'bad BOOLEAN');
  return t.value[0] === 0xff;
}

/** OBJECT IDENTIFIER in dotted form; arcs limited to 2^53 (checked), minimal base-128 encoding. */
export function oid(t: Tlv, what: string): string {
  const v = t.value;
  if (v.length === 0 || v[v.length - 1]! & 0x80) derFail(what, 'bad OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let n = 0;
  let first = true;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (n === 0 && b === 0x80) derFail(what, 'non-minimal OID arc');
    n = n * 128 + (b & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER) derFail(what, 'OID arc too large');
    if (!(b & 0x80)) {
      if (first) {
        const a = n < 40 ? 0 : n < 80 ? 1 : 2;
        arcs.push(a, n - 40 * a);
        first = false;
      } else arcs.push(n);
      n = 0;
    }
  }
  return arcs.join('.');
}

/** BIT STRING contents with zero unused bits (signatures and keys are whole bytes). */
export function bitStringBytes(t: Tlv, what: string): Uint8Array {
  if (t.value.length === 0 || t.value[0] !== 0) derFail(what, 'BIT STRING with unused bits');
  return t.value.subarray(1);
}

/** A character string as text; only printable ASCII is accepted (every AMD string is ASCII). */
export function asciiString(t: Tlv, what: string): string {
  if (t.tag !== Tag.Ia5String && t.tag !== Tag.PrintableString && t.tag !== Tag.Utf8String) {
    derFail(what, `tag 0x${t.tag.toString(16)} is not a string type`);
  }
  for (const b of t.value) if (b < 0x20 || b > 0x7e) derFail(what, 'non-printable character in string');
  return Buffer.from(t.value.buffer, t.value.byteOffset, t.value.byteLength).toString('latin1');
}

const digits = (s: string, i: number, n: number): number => Number(s.slice(i, i + n));

/**
 * UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), the only forms RFC 5280 §4.1.2.5 allows.
 * UTCTime years 50-99 are 19xx.
 */
export function time(t: Tlv, what: string): Date {
  const s = asciiOnly(t.value);
  const form =
    t.tag === Tag.UtcTime
      ? /^(\d{2})(\d{10})Z$/
      : t.tag === Tag.GeneralizedTime
        ? /^(\d{4})(\d{10})Z$/
        : null;
  const m = form?.exec(s);
  if (!m) derFail(what, 'time is not UTCTime/GeneralizedTime in RFC 5280 form');
  const yy = Number(m[1]);
  const year = t.tag === Tag.GeneralizedTime ? yy : yy >= 50 ? 1900 + yy : 2000 + yy;
  const rest = m[2]!;
  const [mo, d, h, mi, se] = [0, 2, 4, 6, 8].map((i) => digits(rest, i, 2)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, se));
  // Date.UTC rolls over (month 13, day 32, second 60) and maps years 0-99 to 19xx; a round trip catches both.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    date.getUTCHours() !== h ||
    date.getUTCMinutes() !== mi ||
    date.getUTCSeconds() !== se
  ) {
    derFail(what, 'time out of range');
  }
  return date;
}

function asciiOnly(v: Uint8Array): string {
  let s = '';
  for (const b of v) s += String.fromCharCode(b);
  return s;
}
