import { MalformedEvidence } from '../../errors.js';

/**
 * A small, strict DER (X.690) reader and writer: just what the C509 <-> X.509 re-encoding needs. Only
 * low-tag-number identifiers (one identifier octet) occur in RFC 5280 / RFC 2986 structures; anything else,
 * indefinite lengths and non-minimal length octets are rejected with MalformedEvidence `c509.der.*`.
 */

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

/** Context-specific tag octet: primitive `[n]` (0x80|n) or constructed (0xa0|n). */
export function ctx(n: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | n;
}

export interface Tlv {
  /** The identifier octet. */
  readonly tag: number;
  /** The content octets (a view into the input). */
  readonly content: Uint8Array;
  /** The whole encoding: identifier, length and content (a view into the input). */
  readonly raw: Uint8Array;
}

const MAX_DER = 1 << 20;

/** Reads one TLV at `pos`; returns it and the offset after it. */
export function readTlv(buf: Uint8Array, pos: number): { tlv: Tlv; next: number } {
  if (pos + 2 > buf.length)
    throw new MalformedEvidence('c509.der.truncated', 'DER input ends inside a header');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f)
    throw new MalformedEvidence('c509.der.tag', 'high-tag-number DER form is not used here');
  let len = buf[pos + 1]!;
  let hdr = 2;
  if (len === 0x80) throw new MalformedEvidence('c509.der.indefinite_length', 'indefinite length is not DER');
  if (len > 0x80) {
    const n = len & 0x7f;
    if (n > 3) throw new MalformedEvidence('c509.der.too_large', 'DER length too large');
    if (pos + 2 + n > buf.length)
      throw new MalformedEvidence('c509.der.truncated', 'DER input ends inside a length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
    // DER: shortest length form (X.690 §10.1)
    if (len < 0x80 || buf[pos + 2] === 0)
      throw new MalformedEvidence('c509.der.length', 'DER length not minimal');
    hdr = 2 + n;
  }
  const end = pos + hdr + len;
  if (end > buf.length) throw new MalformedEvidence('c509.der.truncated', 'DER content runs past the input');
  return {
    tlv: { tag, content: buf.subarray(pos + hdr, end), raw: buf.subarray(pos, end) },
    next: end,
  };
}

/** Parses exactly one TLV spanning all of `buf`. */
export function parseDer(buf: Uint8Array): Tlv {
  if (buf.length > MAX_DER) throw new MalformedEvidence('c509.der.too_large', 'DER input too large');
  const { tlv, next } = readTlv(buf, 0);
  if (next !== buf.length)
    throw new MalformedEvidence('c509.der.trailing_bytes', 'bytes follow the DER value');
  return tlv;
}

/** The TLVs inside a constructed value. */
export function children(t: Tlv): Tlv[] {
  if ((t.tag & 0x20) === 0)
    throw new MalformedEvidence('c509.der.structure', 'expected a constructed DER value');
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < t.content.length) {
    const { tlv, next } = readTlv(t.content, pos);
    out.push(tlv);
    pos = next;
  }
  return out;
}

/** Asserts the identifier octet; `what` names the field for the message. */
export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined) throw new MalformedEvidence('c509.der.structure', `${what}: missing`);
  if (t.tag !== tag) {
    throw new MalformedEvidence(
      'c509.der.structure',
      `${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`,
    );
  }
  return t;
}

/** Children of a SEQUENCE (or other constructed tag) after checking its tag. */
export function seq(t: Tlv | undefined, what: string, tag: number = Tag.Sequence): Tlv[] {
  return children(expectTag(t, tag, what));
}

// ---- writing ----

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Encodes one TLV with a minimal definite length. */
export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = content.length === 1 ? content[0]! : concat(content);
  const n = body.length;
  let hdr: number[];
  if (n < 0x80) hdr = [tag, n];
  else if (n < 0x100) hdr = [tag, 0x81, n];
  else if (n < 0x10000) hdr = [tag, 0x82, n >> 8, n & 0xff];
  else hdr = [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(hdr.length + n);
  out.set(hdr, 0);
  out.set(body, hdr.length);
  return out;
}

// ---- INTEGER ----

/**
 * The magnitude of a non-negative DER INTEGER without the sign octet (the ~biguint form C509 uses).
 * Rejects negative values (NotSupported by the caller's choice of reason) and non-minimal encodings.
 */
export function unsignedIntegerBytes(t: Tlv, what: string): Uint8Array {
  expectTag(t, Tag.Integer, what);
  const c = t.content;
  if (c.length === 0) throw new MalformedEvidence('c509.der.integer', `${what}: empty INTEGER`);
  if (c.length > 1 && ((c[0] === 0 && (c[1]! & 0x80) === 0) || (c[0] === 0xff && (c[1]! & 0x80) !== 0))) {
    throw new MalformedEvidence('c509.der.integer', `${what}: INTEGER not minimally encoded`);
  }
  if (c[0]! & 0x80) throw new MalformedEvidence('c509.der.negative_integer', `${what}: negative INTEGER`);
  let i = 0;
  while (i < c.length && c[i] === 0) i++;
  return c.subarray(i);
}

/** DER INTEGER from a big-endian magnitude (leading zero octets stripped, a 0x00 added if the top bit is set). */
export function integerFromUnsigned(mag: Uint8Array): Uint8Array {
  let i = 0;
  while (i < mag.length && mag[i] === 0) i++;
  const m = mag.subarray(i);
  if (m.length === 0) return tlv(Tag.Integer, new Uint8Array([0]));
  if (m[0]! & 0x80) return tlv(Tag.Integer, new Uint8Array([0]), m);
  return tlv(Tag.Integer, m);
}

/** A small non-negative DER INTEGER as a number (for versions, path lengths, TLS features). */
export function smallUint(t: Tlv, what: string): number {
  const b = unsignedIntegerBytes(t, what);
  if (b.length > 6) throw new MalformedEvidence('c509.der.integer', `${what}: INTEGER too large`);
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

export function integerFromNumber(v: number | bigint): Uint8Array {
  return integerFromUnsigned(uintToBytes(v));
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

export interface BitString {
  readonly unused: number;
  readonly bytes: Uint8Array;
}

export function bitString(t: Tlv, what: string): BitString {
  expectTag(t, Tag.BitString, what);
  const c = t.content;
  if (c.length === 0) throw new MalformedEvidence('c509.der.bit_string', `${what}: empty BIT STRING`);
  const unused = c[0]!;
  if (unused > 7 || (c.length === 1 && unused !== 0)) {
    throw new MalformedEvidence('c509.der.bit_string', `${what}: bad unused-bits count`);
  }
  return { unused, bytes: c.subarray(1) };
}

export function bitStringDer(bytes: Uint8Array, unused = 0): Uint8Array {
  return tlv(Tag.BitString, new Uint8Array([unused]), bytes);
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

/** The DER of a named-bit BIT STRING: trailing zero bits dropped (X.690 §11.2.2). */
export function namedBitsDer(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) throw new MalformedEvidence('c509.der.bit_string', 'negative named-bit value');
  if (v === 0n) return bitStringDer(new Uint8Array(0), 0);
  let top = 0;
  for (let x = v; x > 1n; x >>= 1n) top++;
  const nbytes = (top >> 3) + 1;
  const out = new Uint8Array(nbytes);
  for (let i = 0; i <= top; i++) {
    if (v & 1n) out[i >> 3]! |= 1 << (7 - (i & 7));
    v >>= 1n;
  }
  return bitStringDer(out, nbytes * 8 - (top + 1));
}

// ---- OBJECT IDENTIFIER ----

/** Validates OID content octets (X.690 §8.19: minimal base-128 arcs, last octet of each arc < 0x80). */
export function checkOidContent(b: Uint8Array, what: string): void {
  if (b.length === 0 || b.length > 128) throw new MalformedEvidence('c509.oid', `${what}: bad OID length`);
  if ((b[b.length - 1]! & 0x80) !== 0) throw new MalformedEvidence('c509.oid', `${what}: truncated OID arc`);
  let start = true;
  for (const x of b) {
    if (start && x === 0x80) throw new MalformedEvidence('c509.oid', `${what}: OID arc not minimal`);
    start = (x & 0x80) === 0;
  }
}

export function oidContent(t: Tlv, what: string): Uint8Array {
  expectTag(t, Tag.Oid, what);
  checkOidContent(t.content, what);
  return t.content;
}

export function oidDer(content: Uint8Array): Uint8Array {
  checkOidContent(content, 'OID');
  return tlv(Tag.Oid, content);
}

/** Dotted-decimal text of OID content octets. */
export function oidToString(b: Uint8Array): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const x of b) {
    v = (v << 7n) | BigInt(x & 0x7f);
    if ((x & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs].join('.');
}

/** OID content octets from dotted-decimal text. */
export function oidFromString(s: string): Uint8Array {
  const arcs = s.split('.').map((x) => BigInt(x));
  if (arcs.length < 2) throw new Error(`bad OID ${s}`);
  const all = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  const out: number[] = [];
  for (const a of all) {
    const part: number[] = [Number(a & 0x7fn)];
    let x = a >> 7n;
    while (x > 0n) {
      part.unshift(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    out.push(...part);
  }
  return new Uint8Array(out);
}

// ---- strings ----

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8enc = new TextEncoder();

export function decodeUtf8(b: Uint8Array, what: string): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new MalformedEvidence('c509.der.string', `${what}: invalid UTF-8`);
  }
}

export function encodeUtf8(s: string): Uint8Array {
  return utf8enc.encode(s);
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

export function isPrintable(s: string): boolean {
  return PRINTABLE.test(s);
}

export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Text of a DER string value of the given tag, validated against that string type's alphabet. */
export function stringValue(t: Tlv, what: string): string {
  const s = decodeUtf8(t.content, what);
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
  const s = decodeUtf8(t.content, what);
  let m: RegExpExecArray | null;
  let year: number;
  if (t.tag === Tag.UtcTime) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (!m) throw new MalformedEvidence('c509.der.time', `${what}: bad UTCTime`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (t.tag === Tag.GeneralizedTime) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
    if (!m) throw new MalformedEvidence('c509.der.time', `${what}: bad GeneralizedTime`);
    year = Number(m[1]);
  } else {
    throw new MalformedEvidence('c509.der.structure', `${what}: not a time`);
  }
  const [mo, d, h, mi, se] = [2, 3, 4, 5, 6].map((i) => Number(m![i]));
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > 31 || h! > 23 || mi! > 59 || se! > 59) {
    throw new MalformedEvidence('c509.der.time', `${what}: time out of range`);
  }
  const ms = Date.UTC(year, mo! - 1, d!, h!, mi!, se!);
  const back = new Date(ms);
  if (back.getUTCDate() !== d || back.getUTCFullYear() !== year) {
    throw new MalformedEvidence('c509.der.time', `${what}: no such date`);
  }
  return ms / 1000;
}

function pad(n: number, w: number): string {
  return String(n).padStart(w, '0');
}

/** RFC 5280: UTCTime for 1950..2049, GeneralizedTime otherwise. */
export function epochToTime(sec: number): Uint8Array {
  const d = new Date(sec * 1000);
  const y = d.getUTCFullYear();
  const rest =
    pad(d.getUTCMonth() + 1, 2) +
    pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) +
    pad(d.getUTCSeconds(), 2) +
    'Z';
  if (y >= 1950 && y <= 2049) return tlv(Tag.UtcTime, encodeUtf8(pad(y % 100, 2) + rest));
  return tlv(Tag.GeneralizedTime, encodeUtf8(pad(y, 4) + rest));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const DER_NULL = new Uint8Array([0x05, 0x00]);
export const DER_TRUE = new Uint8Array([0x01, 0x01, 0xff]);
