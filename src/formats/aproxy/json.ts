import { MalformedEvidence } from '../../errors.js';

/**
 * A strict JSON (RFC 8259) parser for aproxy messages. JSON.parse is not used because it accepts what
 * serde_json refuses for these structs and would let two parsers disagree on one message: duplicate keys
 * (JSON.parse keeps the last one; serde_json's derived structs fail with "duplicate field"), lone surrogate
 * escapes, and `__proto__` keys. Objects become null-prototype-free `Map`s; numbers keep their source text
 * so integer fields can be checked exactly. Nesting is capped so hostile input cannot exhaust the stack.
 *
 * Errors: MalformedEvidence `aproxy.json.utf8` (invalid UTF-8), `aproxy.json.syntax`, `aproxy.json.depth`,
 * `aproxy.json.duplicate_key`.
 */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

/** A JSON number as written, e.g. `0`, `-1.5e3`. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export const MAX_JSON_DEPTH = 16;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;

/** Parses UTF-8 JSON bytes (serde_json requires UTF-8; a BOM is not allowed). */
export function parseJson(bytes: Uint8Array): JsonValue {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (cause) {
    throw new MalformedEvidence('aproxy.json.utf8', 'message is not valid UTF-8', { cause });
  }
  return parseJsonText(text);
}

/** Parses JSON text; exported for tests and for callers that already hold a string. */
export function parseJsonText(text: string): JsonValue {
  const p = new Parser(text);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.pos !== text.length) p.fail('trailing characters');
  return v;
}

class Parser {
  pos = 0;
  constructor(private readonly s: string) {}

  fail(what: string): never {
    throw new MalformedEvidence('aproxy.json.syntax', `invalid JSON at offset ${this.pos}: ${what}`);
  }

  ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  value(depth: number): JsonValue {
    if (depth > MAX_JSON_DEPTH) {
      throw new MalformedEvidence('aproxy.json.depth', `JSON nested deeper than ${MAX_JSON_DEPTH}`);
    }
    const c = this.s[this.pos];
    switch (c) {
      case '{':
        return this.object(depth);
      case '[':
        return this.array(depth);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        return this.number();
    }
  }

  literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.pos)) this.fail(`expected ${word}`);
    this.pos += word.length;
    return v;
  }

  number(): JsonNumber {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.s);
    if (!m || m[0].length === 0) this.fail('unexpected character');
    this.pos += m[0].length;
    return new JsonNumber(m[0]);
  }

  string(): string {
    const s = this.s;
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      PLAIN_RUN.lastIndex = this.pos;
      const run = PLAIN_RUN.exec(s)![0];
      out += run;
      this.pos += run.length;
      if (this.pos >= s.length) this.fail('unterminated string');
      const c = s.charCodeAt(this.pos);
      if (c === 0x22) {
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('control character in string');
      // Backslash escape.
      const e = s[this.pos + 1];
      this.pos += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const cu = this.hex4();
          if (cu >= 0xd800 && cu <= 0xdbff) {
            // A high surrogate must be followed by an escaped low surrogate (serde_json: "lone leading surrogate").
            if (s[this.pos] !== '\\' || s[this.pos + 1] !== 'u') this.fail('lone surrogate');
            this.pos += 2;
            const lo = this.hex4();
            if (lo < 0xdc00 || lo > 0xdfff) this.fail('lone surrogate');
            out += String.fromCharCode(cu, lo);
          } else if (cu >= 0xdc00 && cu <= 0xdfff) {
            this.fail('lone surrogate');
          } else {
            out += String.fromCharCode(cu);
          }
          break;
        }
        default:
          this.pos -= 1;
          this.fail('invalid escape');
      }
    }
  }

  hex4(): number {
    const h = this.s.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) this.fail('invalid \\u escape');
    this.pos += 4;
    return Number.parseInt(h, 16);
  }

  array(depth: number): JsonValue[] {
    this.pos++;
    const out: JsonValue[] = [];
    this.ws();
    if (this.s[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return out;
      }
      this.fail("expected ',' or ']'");
    }
  }

  object(depth: number): JsonObject {
    this.pos++;
    const out: JsonObject = new Map();
    this.ws();
    if (this.s[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.pos] !== '"') this.fail('expected a key');
      const key = this.string();
      if (out.has(key)) {
        throw new MalformedEvidence('aproxy.json.duplicate_key', `duplicate key ${JSON.stringify(key)}`);
      }
      this.ws();
      if (this.s[this.pos] !== ':') this.fail("expected ':'");
      this.pos++;
      this.ws();
      out.set(key, this.value(depth + 1));
      this.ws();
      const c = this.s[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        return out;
      }
      this.fail("expected ',' or '}'");
    }
  }
}

// ---- Field access for message validators --------------------------------------------------------------

/** Describes a JSON value's type for error messages. */
function typeName(v: JsonValue | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Map) return 'object';
  if (v instanceof JsonNumber) return 'number';
  return typeof v;
}

function typeError(field: string, expected: string, v: JsonValue | undefined): never {
  throw new MalformedEvidence('aproxy.field.type', `${field}: expected ${expected}, got ${typeName(v)}`);
}

/**
 * Checks that `v` is an object that has every `required` key. A key in neither `required` nor `optional`
 * is refused, unless `unknown` is given: then its path (`field.key`) is appended there and the key is
 * ignored. Guest messages pass a list, because aproxy reads them with serde's default (unknown fields
 * ignored) and a field a future SVSM adds must not break only Vouchsafe (docs/protocol.md §4).
 * Throws `aproxy.field.type`, `aproxy.field.unknown`, `aproxy.field.missing`.
 */
export function expectObject(
  v: JsonValue | undefined,
  field: string,
  required: readonly string[],
  optional: readonly string[] = [],
  unknown?: string[],
): JsonObject {
  if (!(v instanceof Map)) typeError(field, 'object', v);
  for (const k of v.keys()) {
    if (!required.includes(k) && !optional.includes(k)) {
      if (unknown) unknown.push(`${field}.${k}`);
      else
        throw new MalformedEvidence('aproxy.field.unknown', `${field}: unknown field ${JSON.stringify(k)}`);
    }
  }
  for (const k of required) {
    if (!v.has(k)) throw new MalformedEvidence('aproxy.field.missing', `${field}: missing field ${k}`);
  }
  return v;
}

export function expectString(v: JsonValue | undefined, field: string): string {
  if (typeof v !== 'string') typeError(field, 'string', v);
  return v;
}

export function expectBool(v: JsonValue | undefined, field: string): boolean {
  if (typeof v !== 'boolean') typeError(field, 'boolean', v);
  return v;
}

export function expectArray(v: JsonValue | undefined, field: string): JsonValue[] {
  if (!Array.isArray(v)) typeError(field, 'array', v);
  return v;
}

/** A u32 as serde reads one: a plain non-negative integer literal (no fraction, exponent or sign). */
export function expectU32(v: JsonValue | undefined, field: string): number {
  if (!(v instanceof JsonNumber)) typeError(field, 'integer', v);
  if (!/^(?:0|[1-9][0-9]{0,9})$/.test(v.text) || Number(v.text) > 0xffffffff) {
    throw new MalformedEvidence('aproxy.field.value', `${field}: not a u32 (${v.text.slice(0, 32)})`);
  }
  return Number(v.text);
}

/** A string of bounded length (UTF-16 code units are an upper bound on characters; bytes checked by callers). */
export function expectBoundedString(
  v: JsonValue | undefined,
  field: string,
  min: number,
  max: number,
): string {
  const s = expectString(v, field);
  const n = Buffer.byteLength(s, 'utf8');
  if (n < min || n > max) {
    throw new MalformedEvidence('aproxy.field.length', `${field}: ${n} bytes, allowed ${min}..${max}`);
  }
  return s;
}
