import { MalformedEvidence } from '../../errors.js';

/**
 * The project's one strict DER reader (ITU-T X.690 §8.1 and the DER rules of §10): definite lengths in
 * minimal form only, low tag numbers (one identifier octet: X.509, PKCS#10 and the AMD/TCG/GCE extensions
 * need nothing else), at most three length octets (16 MiB). It decodes only what the caller walks into and
 * never recurses, so hostile nesting cannot exhaust the stack. Each element is a view into the input.
 *
 * Why not asn1js: it decodes BER (indefinite and non-minimal lengths, constructed strings), so two byte
 * strings can parse to the same value. Signatures are checked over exact bytes, and a parser stricter
 * than the signer leaves no room for parse differentials.
 *
 * Every failure is MalformedEvidence with the caller's reason: a string, or a function of the fault (C509
 * reports `c509.der.truncated`, `c509.der.length`, ...), never a RangeError.
 */

/** Universal tags as identifier octets (constructed bit included for SEQUENCE and SET). */
export const Tag = {
  Boolean: 0x01,
  Integer: 0x02,
  BitString: 0x03,
  OctetString: 0x04,
  Null: 0x05,
  Oid: 0x06,
  Enumerated: 0x0a,
  Utf8String: 0x0c,
  PrintableString: 0x13,
  Ia5String: 0x16,
  UtcTime: 0x17,
  GeneralizedTime: 0x18,
  Sequence: 0x30,
  Set: 0x31,
} as const;

/** Context-specific identifier octet [n]: constructed (0xa0|n, the default) or primitive (0x80|n). */
export const ctx = (n: number, constructed = true): number => (constructed ? 0xa0 : 0x80) | n;

/** Is this identifier octet constructed (X.690 §8.1.2.5)? */
export const isConstructed = (tag: number): boolean => (tag & 0x20) !== 0;

export interface Tlv {
  /** The identifier octet. */
  readonly tag: number;
  /** The whole element: identifier, length and contents. */
  readonly raw: Uint8Array;
  /** The contents octets. */
  readonly value: Uint8Array;
}

/** What went wrong, for callers whose reasons name the fault. */
export type DerFault =
  | 'truncated'
  | 'tag'
  | 'indefinite_length'
  | 'too_large'
  | 'length'
  | 'trailing_bytes'
  | 'structure'
  | 'integer'
  | 'negative_integer'
  | 'boolean'
  | 'bit_string'
  | 'oid'
  | 'string'
  | 'time';

/** The MalformedEvidence reason: one string for every fault, or one per fault. */
export type DerReason = string | ((fault: DerFault) => string);

export function derFail(reason: DerReason, fault: DerFault, message: string): never {
  const r = typeof reason === 'string' ? reason : reason(fault);
  throw new MalformedEvidence(r, `${r}: ${message}`);
}

const hex = (tag: number): string => `0x${tag.toString(16)}`;

/** Reads one element at `offset`; it must end at or before `limit` (default: the end of `buf`). */
export function readTlv(buf: Uint8Array, offset: number, reason: DerReason, limit = buf.length): Tlv {
  if (offset + 2 > limit) derFail(reason, 'truncated', 'truncated element header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) derFail(reason, 'tag', 'high tag numbers are not used here');
  let len = buf[offset + 1]!;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // 0x80 is BER's indefinite length; more than 3 length octets (16 MiB) bounds hostile input.
    if (n === 0) derFail(reason, 'indefinite_length', 'indefinite length is not DER');
    if (n > 3) derFail(reason, 'too_large', 'length too large');
    if (offset + 2 + n > limit) derFail(reason, 'truncated', 'truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    // DER: the shortest form (long form only from 128; no leading zero length octet), X.690 §10.1.
    if (len < 0x80 || buf[offset + 2] === 0) derFail(reason, 'length', 'non-minimal length');
    hdr += n;
  }
  const end = offset + hdr + len;
  if (end > limit) derFail(reason, 'truncated', 'element runs past its container');
  return { tag, raw: buf.subarray(offset, end), value: buf.subarray(offset + hdr, end) };
}

/** Checks the identifier octet of an element (which must be present). */
export function expectTag(t: Tlv | undefined, tag: number, reason: DerReason, name = 'element'): Tlv {
  if (t === undefined) derFail(reason, 'structure', `missing ${name}`);
  if (t.tag !== tag) derFail(reason, 'structure', `${name}: expected tag ${hex(tag)}, got ${hex(t.tag)}`);
  return t;
}

/** Decodes `buf` as exactly one element (of `tag`, when given) with no trailing bytes. */
export function parseOne(buf: Uint8Array, reason: DerReason, tag?: number): Tlv {
  const t = readTlv(buf, 0, reason);
  if (tag !== undefined) expectTag(t, tag, reason);
  if (t.raw.length !== buf.length) derFail(reason, 'trailing_bytes', 'trailing bytes after the element');
  return t;
}

/** The elements inside a constructed element; they must fill it exactly. */
export function children(t: Tlv, reason: DerReason): Tlv[] {
  if (!isConstructed(t.tag)) derFail(reason, 'structure', 'expected a constructed element');
  const out: Tlv[] = [];
  for (let off = 0; off < t.value.length; ) {
    const c = readTlv(t.value, off, reason);
    out.push(c);
    off += c.raw.length;
  }
  return out;
}

/** The children of an element of `tag` (a SEQUENCE unless told otherwise). */
export function sequence(t: Tlv | undefined, reason: DerReason, tag: number = Tag.Sequence): Tlv[] {
  return children(expectTag(t, tag, reason), reason);
}

/** Resource bounds for {@link checkDerTree}: nesting depth and element count. */
export const TREE_LIMITS = { maxDepth: 32, maxNodes: 4096 } as const;

/**
 * Checks a whole element tree for DER, for inputs read by a library or copied on unread: every constructed
 * element is walked (at most `maxDepth` deep, `maxNodes` elements), constructed universal types other than
 * SEQUENCE and SET (BER's constructed strings) are refused, and every BOOLEAN must be 00 or FF.
 */
export function checkDerTree(t: Tlv, reason: DerReason, limits = TREE_LIMITS): void {
  let nodes = 0;
  const walk = (e: Tlv, depth: number): void => {
    if (++nodes > limits.maxNodes) derFail(reason, 'too_large', 'too many elements');
    if (e.tag === Tag.Boolean && (e.value.length !== 1 || (e.value[0] !== 0 && e.value[0] !== 0xff))) {
      derFail(reason, 'boolean', 'BOOLEAN must be 00 or FF');
    }
    if (!isConstructed(e.tag)) return;
    if ((e.tag & 0xc0) === 0 && e.tag !== Tag.Sequence && e.tag !== Tag.Set) {
      derFail(reason, 'structure', `constructed universal tag ${hex(e.tag)} is not DER`);
    }
    if (depth >= limits.maxDepth) derFail(reason, 'too_large', 'nesting too deep');
    for (const c of children(e, reason)) walk(c, depth + 1);
  };
  walk(t, 0);
}

/** Sequential reader over the contents of a constructed element (fields in schema order). */
export class DerCursor {
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly reason: DerReason,
  ) {}

  /** The identifier octet of the next element, or undefined at the end. */
  peek(): number | undefined {
    return this.pos < this.buf.length ? this.buf[this.pos] : undefined;
  }

  /** Reads the next element, which must carry `tag`. */
  next(tag: number, name = 'element'): Tlv {
    return expectTag(this.any(name), tag, this.reason, name);
  }

  /** Reads the next element if it carries `tag`. */
  optional(tag: number): Tlv | undefined {
    return this.peek() === tag ? this.any() : undefined;
  }

  /** Reads the next element whatever its tag. */
  any(name = 'element'): Tlv {
    if (this.pos >= this.buf.length) derFail(this.reason, 'structure', `missing ${name}`);
    const t = readTlv(this.buf, this.pos, this.reason);
    this.pos += t.raw.length;
    return t;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** Requires that every element was consumed. */
  end(): void {
    if (this.pos !== this.buf.length) derFail(this.reason, 'structure', 'unexpected trailing elements');
  }
}

/** A cursor over a constructed element's contents (of `tag`, when given). */
export function cursor(t: Tlv, reason: DerReason, tag?: number): DerCursor {
  if (tag !== undefined) expectTag(t, tag, reason);
  else if (!isConstructed(t.tag)) derFail(reason, 'structure', 'expected a constructed element');
  return new DerCursor(t.value, reason);
}

// ---- INTEGER (X.690 §8.3) ----

/** INTEGER contents, checked minimal two's complement (serial numbers are compared byte-wise). */
export function integerBytes(t: Tlv | undefined, reason: DerReason): Uint8Array {
  const v = expectTag(t, Tag.Integer, reason, 'INTEGER').value;
  if (v.length === 0) derFail(reason, 'integer', 'empty INTEGER');
  if (v.length > 1 && ((v[0] === 0 && !(v[1]! & 0x80)) || (v[0] === 0xff && v[1]! & 0x80))) {
    derFail(reason, 'integer', 'non-minimal INTEGER');
  }
  return v;
}

/** INTEGER as a bigint (two's complement). */
export function integerBig(t: Tlv | undefined, reason: DerReason): bigint {
  const v = integerBytes(t, reason);
  let n = 0n;
  for (const b of v) n = (n << 8n) | BigInt(b);
  if (v[0]! & 0x80) n -= 1n << BigInt(8 * v.length);
  return n;
}

/** A non-negative INTEGER as a bigint. */
export function unsignedBig(t: Tlv | undefined, reason: DerReason): bigint {
  const v = integerBytes(t, reason);
  if (v[0]! & 0x80) derFail(reason, 'negative_integer', 'negative INTEGER');
  let n = 0n;
  for (const b of v) n = (n << 8n) | BigInt(b);
  return n;
}

/**
 * A non-negative INTEGER's magnitude: big-endian, no sign octet, no leading zeros (empty for 0). The inverse
 * of the writer's `unsignedInteger`; C509 carries serial numbers and key integers in this form (~biguint).
 */
export function unsignedBytes(t: Tlv | undefined, reason: DerReason): Uint8Array {
  const v = integerBytes(t, reason);
  if (v[0]! & 0x80) derFail(reason, 'negative_integer', 'negative INTEGER');
  let i = 0;
  while (i < v.length && v[i] === 0) i++;
  return v.subarray(i);
}

/** The largest bound {@link smallUint} takes: every value below it is exact in a number. */
export const SMALL_UINT_MAX = 2 ** 48 - 1;

/** A small non-negative INTEGER (versions, SPLs, path lengths): 0 <= n <= max (max <= 2^48 - 1). */
export function smallUint(t: Tlv | undefined, reason: DerReason, max = SMALL_UINT_MAX): number {
  const v = integerBytes(t, reason);
  if (v[0]! & 0x80) derFail(reason, 'negative_integer', 'negative INTEGER');
  if (v.length > 7) derFail(reason, 'integer', `INTEGER outside 0..${max}`);
  let n = 0;
  for (const b of v) n = n * 256 + b;
  if (n > max) derFail(reason, 'integer', `INTEGER ${n} outside 0..${max}`);
  return n;
}

// ---- other primitives ----

/** BOOLEAN: DER allows only 00 and FF (X.690 §11.1). */
export function boolean(t: Tlv | undefined, reason: DerReason): boolean {
  const v = expectTag(t, Tag.Boolean, reason, 'BOOLEAN').value;
  if (v.length !== 1 || (v[0] !== 0 && v[0] !== 0xff)) derFail(reason, 'boolean', 'BOOLEAN must be 00 or FF');
  return v[0] === 0xff;
}

export function octetString(t: Tlv | undefined, reason: DerReason): Uint8Array {
  return expectTag(t, Tag.OctetString, reason, 'OCTET STRING').value;
}

export interface BitString {
  /** Unused bits in the last octet (0-7). */
  readonly unused: number;
  readonly bytes: Uint8Array;
}

/** BIT STRING (X.690 §8.6): the unused-bits count and the bit octets. */
export function bitString(t: Tlv | undefined, reason: DerReason): BitString {
  const v = expectTag(t, Tag.BitString, reason, 'BIT STRING').value;
  if (v.length === 0 || v[0]! > 7 || (v.length === 1 && v[0] !== 0)) {
    derFail(reason, 'bit_string', 'bad BIT STRING unused-bits count');
  }
  return { unused: v[0]!, bytes: v.subarray(1) };
}

/** BIT STRING octets with zero unused bits (signatures and keys are whole octets). */
export function bitStringBytes(t: Tlv | undefined, reason: DerReason): Uint8Array {
  const b = bitString(t, reason);
  if (b.unused !== 0) derFail(reason, 'bit_string', 'BIT STRING with unused bits');
  return b.bytes;
}

// ---- OBJECT IDENTIFIER (X.690 §8.19) ----

/** Longest OID content accepted: far above any registered OID (the longest real ones are ~30 octets). */
const MAX_OID = 128;

/** Validates OID contents: 1-128 octets, minimal base-128 arcs, the last arc complete. */
export function checkOidContent(v: Uint8Array, reason: DerReason): void {
  if (v.length === 0 || v.length > MAX_OID) derFail(reason, 'oid', 'bad OBJECT IDENTIFIER length');
  if (v[v.length - 1]! & 0x80) derFail(reason, 'oid', 'truncated OBJECT IDENTIFIER arc');
  let start = true;
  for (const b of v) {
    if (start && b === 0x80) derFail(reason, 'oid', 'non-minimal OBJECT IDENTIFIER arc');
    start = (b & 0x80) === 0;
  }
}

/** OBJECT IDENTIFIER contents, validated. */
export function oidContent(t: Tlv | undefined, reason: DerReason): Uint8Array {
  const v = expectTag(t, Tag.Oid, reason, 'OBJECT IDENTIFIER').value;
  checkOidContent(v, reason);
  return v;
}

/** Dotted-decimal text of validated OID contents (arcs of any size). */
export function oidToString(v: Uint8Array): string {
  let out = '';
  let n = 0;
  let big: bigint | undefined;
  let first = true;
  for (const b of v) {
    // Numbers while exact, bigint beyond 2^53 (only hostile or exotic OIDs get there).
    if (big === undefined && n > 2 ** 45) big = BigInt(n);
    if (big === undefined) n = n * 128 + (b & 0x7f);
    else big = (big << 7n) | BigInt(b & 0x7f);
    if (b & 0x80) continue;
    const arc = big ?? n;
    if (first) {
      const a = arc < 40 ? 0 : arc < 80 ? 1 : 2;
      out = `${a}.${typeof arc === 'bigint' ? arc - BigInt(40 * a) : arc - 40 * a}`;
      first = false;
    } else out += `.${arc}`;
    n = 0;
    big = undefined;
  }
  return out;
}

/** OBJECT IDENTIFIER in dotted form. */
export function oid(t: Tlv | undefined, reason: DerReason): string {
  return oidToString(oidContent(t, reason));
}

// ---- strings ----

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text; invalid UTF-8 is MalformedEvidence (never silently replaced). */
export function decodeUtf8(v: Uint8Array, reason: DerReason): string {
  try {
    return utf8.decode(v);
  } catch {
    return derFail(reason, 'string', 'invalid UTF-8');
  }
}

/** A UTF8String's text. */
export function utf8String(t: Tlv | undefined, reason: DerReason): string {
  return decodeUtf8(expectTag(t, Tag.Utf8String, reason, 'UTF8String').value, reason);
}

/** IA5String, PrintableString or UTF8String as text; only printable ASCII is accepted (AMD's names). */
export function asciiString(t: Tlv | undefined, reason: DerReason): string {
  if (t === undefined) derFail(reason, 'structure', 'missing string');
  if (t.tag !== Tag.Ia5String && t.tag !== Tag.PrintableString && t.tag !== Tag.Utf8String) {
    derFail(reason, 'string', `tag ${hex(t.tag)} is not a string type`);
  }
  let s = '';
  for (const b of t.value) {
    if (b < 0x20 || b > 0x7e) derFail(reason, 'string', 'non-printable character in string');
    s += String.fromCharCode(b);
  }
  return s;
}

// ---- time (RFC 5280 §4.1.2.5) ----

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/**
 * UTCTime (YYMMDDHHMMSSZ, years 50-99 are 19xx) or GeneralizedTime (YYYYMMDDHHMMSSZ): the only forms RFC
 * 5280 §4.1.2.5 allows (seconds, Zulu, no fraction). Calendar-checked: no month 13, 31 April or second 60.
 */
export function time(t: Tlv | undefined, reason: DerReason): Date {
  if (t === undefined || (t.tag !== Tag.UtcTime && t.tag !== Tag.GeneralizedTime)) {
    derFail(reason, 'structure', 'expected UTCTime or GeneralizedTime');
  }
  let s = '';
  for (const b of t.value) s += String.fromCharCode(b);
  const m = (t.tag === Tag.UtcTime ? UTC_TIME : GENERALIZED_TIME).exec(s);
  if (m === null) derFail(reason, 'time', 'time is not in the RFC 5280 DER form');
  const yy = Number(m[1]);
  const year = t.tag === Tag.GeneralizedTime ? yy : yy >= 50 ? 1900 + yy : 2000 + yy;
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  // setUTCFullYear, not Date.UTC: the latter maps years 0-99 to 1900-1999. Rolled-over fields show up below.
  const date = new Date(0);
  date.setUTCFullYear(year, mo - 1, d);
  date.setUTCHours(h, mi, se, 0);
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    h > 23 ||
    mi > 59 ||
    se > 59
  ) {
    derFail(reason, 'time', 'time out of range');
  }
  return date;
}
