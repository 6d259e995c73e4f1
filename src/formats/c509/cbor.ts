import { encode, rfc8949EncodeOptions, Tagged, Tokenizer, Type } from 'cborg';
import { MalformedEvidence } from '../../errors.js';

/**
 * Deterministically encoded CBOR for C509 (draft-ietf-cose-cbor-encoded-cert-20 §2: "CBOR" always means
 * Deterministically Encoded CBOR, RFC 8949 §4.2.1 and §4.2.2). cborg does the byte work; this module adds the
 * checks cborg leaves to the caller (map key order, nesting depth, UTF-8 validity, a size cap) and turns every
 * failure into a typed {@link MalformedEvidence} with a `c509.cbor.*` reason.
 */

export { Tagged };

/** A decoded CBOR data item. Integers outside the JS safe range are bigints; tags are {@link Tagged}. */
export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | CborValue[]
  | Map<CborValue, CborValue>
  | Tagged;

export interface CborDecodeOptions {
  /** Accept the simple value `undefined` (only C509 request templates use it). Default false. */
  readonly allowUndefined?: boolean;
  /** Largest input accepted, in bytes. Default 256 KiB. */
  readonly maxSize?: number;
  /** Deepest nesting of arrays, maps and tags accepted. Default 32. */
  readonly maxDepth?: number;
}

export const CBOR_MAX_SIZE = 256 * 1024;
export const CBOR_MAX_DEPTH = 32;

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

const tokenizerOptions = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: true,
  allowBigInt: true,
  allowNaN: true,
  allowInfinity: true,
  retainStringBytes: true,
};

type Frame =
  | { kind: 'array'; items: CborValue[]; left: number }
  | {
      kind: 'map';
      map: Map<CborValue, CborValue>;
      left: number;
      expectKey: boolean;
      key: CborValue;
      keyStart: number;
      prevKey: Uint8Array | undefined;
    }
  | { kind: 'tag'; tag: number };

/** Maps a cborg error to a stable reason; cborg's messages are the only signal it gives. */
function cborgReason(e: unknown): string {
  const m = e instanceof Error ? e.message : '';
  if (/more bytes than necessary/.test(m)) return 'c509.cbor.non_shortest';
  if (/indefinite length/.test(m)) return 'c509.cbor.indefinite_length';
  if (/not enough data/.test(m)) return 'c509.cbor.truncated';
  if (/64-bit integer .* lengths/.test(m)) return 'c509.cbor.too_large';
  return 'c509.cbor.malformed';
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/**
 * Decodes exactly one deterministically encoded CBOR data item.
 *
 * Rejects (MalformedEvidence): `c509.cbor.too_large` (input over the cap or a 64-bit length),
 * `c509.cbor.truncated`, `c509.cbor.indefinite_length`, `c509.cbor.non_shortest` (an integer, length or tag
 * not in its shortest form), `c509.cbor.map_key_order` (keys not in bytewise lexicographic order of their
 * encodings, RFC 8949 §4.2.1), `c509.cbor.duplicate_map_key`, `c509.cbor.too_deep`, `c509.cbor.invalid_utf8`,
 * `c509.cbor.map_key_type` (a container as a map key), `c509.cbor.undefined` (when not allowed), `c509.cbor.float` (C509 defines no floating-point fields),
 * `c509.cbor.trailing_bytes`, `c509.cbor.malformed` (reserved or unassigned encodings),
 * `c509.cbor.not_deterministic` (any residual difference from the deterministic re-encoding).
 */
export function decodeCbor(bytes: Uint8Array, options: CborDecodeOptions = {}): CborValue {
  const maxSize = options.maxSize ?? CBOR_MAX_SIZE;
  const maxDepth = options.maxDepth ?? CBOR_MAX_DEPTH;
  if (!(bytes instanceof Uint8Array))
    throw new MalformedEvidence('c509.cbor.malformed', 'CBOR input is not bytes');
  if (bytes.length > maxSize) {
    throw new MalformedEvidence(
      'c509.cbor.too_large',
      `CBOR input of ${bytes.length} bytes exceeds ${maxSize}`,
    );
  }
  if (bytes.length === 0) throw new MalformedEvidence('c509.cbor.truncated', 'empty CBOR input');
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tok = new Tokenizer(data, tokenizerOptions);
  const stack: Frame[] = [];
  let result: { value: CborValue } | undefined;

  const complete = (value: CborValue): void => {
    let v = value;
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        result = { value: v };
        return;
      }
      if (top.kind === 'tag') {
        stack.pop();
        v = new Tagged(top.tag, v);
        continue;
      }
      if (top.kind === 'array') {
        top.items.push(v);
        top.left--;
        if (top.left > 0) return;
        stack.pop();
        v = top.items;
        continue;
      }
      // map: a completed key is checked against the previous key's encoding (RFC 8949 §4.2.1)
      if (top.expectKey) {
        // cborg's RFC 8949 key sorter handles scalar keys only; C509 itself has no maps at all
        if (Array.isArray(v) || v instanceof Map || v instanceof Tagged) {
          throw new MalformedEvidence('c509.cbor.map_key_type', 'only scalar CBOR map keys are supported');
        }
        const keyBytes = data.subarray(top.keyStart, tok.pos());
        if (top.prevKey !== undefined) {
          const c = compareBytes(top.prevKey, keyBytes);
          if (c === 0) throw new MalformedEvidence('c509.cbor.duplicate_map_key', 'duplicate CBOR map key');
          if (c > 0) throw new MalformedEvidence('c509.cbor.map_key_order', 'CBOR map keys are not sorted');
        }
        top.prevKey = keyBytes;
        top.key = v;
        top.expectKey = false;
        return;
      }
      top.map.set(top.key, v);
      top.left--;
      top.expectKey = true;
      top.keyStart = tok.pos();
      if (top.left > 0) return;
      stack.pop();
      v = top.map;
    }
  };

  while (result === undefined) {
    if (tok.done()) throw new MalformedEvidence('c509.cbor.truncated', 'CBOR input ends inside a data item');
    let t: ReturnType<typeof tok.next>;
    try {
      t = tok.next();
    } catch (e) {
      throw new MalformedEvidence(cborgReason(e), 'CBOR input is malformed', { cause: e });
    }
    const remaining = data.length - tok.pos();
    const type = t.type;
    if (Type.equals(type, Type.uint) || Type.equals(type, Type.negint)) {
      complete(t.value as number | bigint);
    } else if (Type.equals(type, Type.bytes)) {
      complete(new Uint8Array(t.value as Uint8Array));
    } else if (Type.equals(type, Type.string)) {
      const raw = t.byteValue ?? new Uint8Array(0);
      try {
        complete(fatalUtf8.decode(raw));
      } catch (e) {
        if (e instanceof MalformedEvidence) throw e;
        throw new MalformedEvidence('c509.cbor.invalid_utf8', 'CBOR text string is not valid UTF-8');
      }
    } else if (Type.equals(type, Type.true) || Type.equals(type, Type.false)) {
      complete(t.value as boolean);
    } else if (Type.equals(type, Type.null)) {
      complete(null);
    } else if (Type.equals(type, Type.undefined)) {
      if (options.allowUndefined !== true) {
        throw new MalformedEvidence('c509.cbor.undefined', 'CBOR undefined is not allowed here');
      }
      complete(undefined);
    } else if (Type.equals(type, Type.float)) {
      throw new MalformedEvidence('c509.cbor.float', 'C509 has no floating-point fields');
    } else if (Type.equals(type, Type.array) || Type.equals(type, Type.map) || Type.equals(type, Type.tag)) {
      if (stack.length >= maxDepth)
        throw new MalformedEvidence('c509.cbor.too_deep', `CBOR nesting exceeds ${maxDepth}`);
      if (Type.equals(type, Type.tag)) {
        if (typeof t.value !== 'number')
          throw new MalformedEvidence('c509.cbor.malformed', 'CBOR tag number too large');
        stack.push({ kind: 'tag', tag: t.value });
        continue;
      }
      const n = t.value as number;
      const isMap = Type.equals(type, Type.map);
      // Every element takes at least one byte: a count beyond what is left cannot be satisfied.
      if (n * (isMap ? 2 : 1) > remaining) {
        throw new MalformedEvidence(
          'c509.cbor.truncated',
          'CBOR container announces more items than the input holds',
        );
      }
      if (n === 0) {
        complete(isMap ? new Map() : []);
        continue;
      }
      if (isMap) {
        stack.push({
          kind: 'map',
          map: new Map(),
          left: n,
          expectKey: true,
          key: undefined,
          keyStart: tok.pos(),
          prevKey: undefined,
        });
      } else stack.push({ kind: 'array', items: [], left: n });
    } else {
      throw new MalformedEvidence('c509.cbor.malformed', `unexpected CBOR token ${type.name}`);
    }
  }
  if (!tok.done()) throw new MalformedEvidence('c509.cbor.trailing_bytes', 'bytes follow the CBOR data item');
  // Catch-all: the deterministic re-encoding must reproduce the input exactly.
  const again = encodeCbor(result.value);
  if (compareBytes(again, data) !== 0) {
    throw new MalformedEvidence('c509.cbor.not_deterministic', 'CBOR input is not deterministically encoded');
  }
  return result.value;
}

/**
 * Encodes a value as deterministic CBOR (RFC 8949 §4.2.1: shortest arguments, definite lengths, map keys
 * sorted bytewise). Throws MalformedEvidence `c509.cbor.encode` for values CBOR cannot carry (non-integer
 * numbers, integers beyond ±2^64).
 */
export function encodeCbor(value: CborValue): Uint8Array {
  try {
    checkEncodable(value, 0);
    return encode(value, rfc8949EncodeOptions);
  } catch (e) {
    if (e instanceof MalformedEvidence) throw e;
    throw new MalformedEvidence('c509.cbor.encode', 'value cannot be encoded as CBOR', { cause: e });
  }
}

const U64_MAX = (1n << 64n) - 1n;

function checkEncodable(v: CborValue, depth: number): void {
  if (depth > 64) throw new MalformedEvidence('c509.cbor.encode', 'value nests too deeply');
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw new MalformedEvidence('c509.cbor.encode', 'only safe integers are encodable');
  } else if (typeof v === 'bigint') {
    if (v > U64_MAX || v < -U64_MAX - 1n)
      throw new MalformedEvidence('c509.cbor.encode', 'integer beyond 64 bits');
  } else if (Array.isArray(v)) {
    for (const x of v) checkEncodable(x, depth + 1);
  } else if (v instanceof Map) {
    for (const [k, x] of v) {
      checkEncodable(k, depth + 1);
      checkEncodable(x, depth + 1);
    }
  } else if (v instanceof Tagged) {
    checkEncodable(v.value as CborValue, depth + 1);
  }
}

/** Encodes items as a CBOR sequence (RFC 8742): the concatenation of their encodings, no array header. */
export function encodeCborSequence(items: readonly CborValue[]): Uint8Array {
  const parts = items.map((x) => encodeCbor(x));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

// ---- small type guards used by every C509 structure parser ----

export function isBytes(v: CborValue): v is Uint8Array {
  return v instanceof Uint8Array;
}

export function isInt(v: CborValue): v is number | bigint {
  return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
}

export function isUint(v: CborValue): v is number | bigint {
  return isInt(v) && v >= 0;
}

export function isTag(v: CborValue, tag?: number): v is Tagged {
  return v instanceof Tagged && (tag === undefined || v.tag === tag);
}

export function isArray(v: CborValue): v is CborValue[] {
  return Array.isArray(v);
}
