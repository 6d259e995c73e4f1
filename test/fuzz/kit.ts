/**
 * Shared pieces of the fuzz suites (test/fuzz): input generators that start from valid seeds and break them
 * the way hostile peers do (byte flips, truncation, extension, splices, length fields set to extremes, JSON
 * members replaced, removed or retyped), the "typed error or a value" oracle, and the bounds every property
 * runs under. Each property stops at `numRuns` or at its time budget, whichever comes first, so a busy CI
 * machine runs fewer cases instead of timing out; the budget never turns into a failure by itself
 * (fast-check `interruptAfterTimeLimit` with `markInterruptAsFailure: false`).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AttestationError, ErrorCode } from '../../src/errors.js';

/** Bounds for one property. FUZZ_SCALE (e.g. 10 for a nightly run) multiplies both. */
export interface FuzzBudget {
  readonly numRuns: number;
  readonly timeMs: number;
}

const SCALE = Math.max(1, Number(process.env.FUZZ_SCALE ?? '1') || 1);

/** The options fast-check gets for one property: run count and time budget, and a fixed seed when asked. */
export function fcOptions(b: FuzzBudget): fc.Parameters<unknown> {
  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
  return {
    numRuns: b.numRuns * SCALE,
    interruptAfterTimeLimit: b.timeMs * SCALE,
    markInterruptAsFailure: false,
    ...(seed === undefined ? {} : { seed }),
  };
}

/** Every stable error code (src/errors.ts). */
export const CODES = new Set<string>(Object.values(ErrorCode));
/** The shape of a stable reason: dotted lower-case words. */
export const REASON = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;

/** True when `e` is an AttestationError with a known code and a dotted lower-case reason. */
export function isTypedError(e: unknown): e is AttestationError {
  return (
    e instanceof AttestationError &&
    CODES.has(e.code) &&
    typeof e.reason === 'string' &&
    REASON.test(e.reason)
  );
}

/** Runs a decoder: a value or a typed error pass; anything else fails with the input in hex. */
export async function valueOrTyped(name: string, input: unknown, f: () => unknown): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (isTypedError(e)) return;
    assert.fail(
      `${name}: untyped error ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\ninput: ${show(input)}`,
    );
  }
}

function show(v: unknown): string {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex').slice(0, 4096);
  try {
    return JSON.stringify(v)?.slice(0, 4096) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Values a length or count field is most likely to mishandle. */
const EXTREMES = [0x00, 0x01, 0x7f, 0x80, 0xff];

type Mutation = (b: Uint8Array) => Uint8Array;

const flip = fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(
  ([at, x]): Mutation =>
    (b) => {
      if (b.length === 0) return b;
      const out = Uint8Array.from(b);
      out[at % b.length]! ^= x;
      return out;
    },
);

const setExtreme = fc.tuple(fc.nat(), fc.constantFrom(...EXTREMES), fc.integer({ min: 1, max: 8 })).map(
  ([at, v, run]): Mutation =>
    (b) => {
      if (b.length === 0) return b;
      const out = Uint8Array.from(b);
      const start = at % b.length;
      out.fill(v, start, Math.min(b.length, start + run));
      return out;
    },
);

const truncate = fc.nat().map(
  (n): Mutation =>
    (b) =>
      b.slice(0, b.length === 0 ? 0 : n % b.length),
);

const extend = fc.uint8Array({ minLength: 1, maxLength: 64 }).map(
  (tail): Mutation =>
    (b) => {
      const out = new Uint8Array(b.length + tail.length);
      out.set(b);
      out.set(tail, b.length);
      return out;
    },
);

const cut = fc.tuple(fc.nat(), fc.integer({ min: 1, max: 64 })).map(
  ([at, n]): Mutation =>
    (b) => {
      if (b.length === 0) return b;
      const s = at % b.length;
      return Uint8Array.from([...b.subarray(0, s), ...b.subarray(Math.min(b.length, s + n))]);
    },
);

const insert = fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 32 })).map(
  ([at, ins]): Mutation =>
    (b) => {
      const s = b.length === 0 ? 0 : at % (b.length + 1);
      return Uint8Array.from([...b.subarray(0, s), ...ins, ...b.subarray(s)]);
    },
);

const mutation = fc.oneof(flip, flip, setExtreme, truncate, extend, cut, insert);

/**
 * Bytes: random, a seed with one to four mutations, or the head of one seed spliced to the tail of another.
 * With no seeds, random bytes only.
 */
export function bytesFrom(seeds: readonly Uint8Array[], maxRandom = 512): fc.Arbitrary<Uint8Array> {
  const random = fc.uint8Array({ maxLength: maxRandom });
  if (seeds.length === 0) return random;
  const seed = fc.constantFrom(...seeds);
  const mutated = fc
    .tuple(seed, fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([s, ms]) => ms.reduce((b, m) => m(b), s));
  const spliced = fc.tuple(seed, seed, fc.nat(), fc.nat()).map(([a, b, i, j]) => {
    const x = a.subarray(0, a.length === 0 ? 0 : i % a.length);
    const y = b.subarray(b.length === 0 ? 0 : j % b.length);
    return Uint8Array.from([...x, ...y]);
  });
  return fc.oneof(
    { arbitrary: mutated, weight: 6 },
    { arbitrary: random, weight: 2 },
    { arbitrary: spliced, weight: 1 },
    { arbitrary: seed, weight: 1 },
  );
}

/** Text: random strings (including non-ASCII), or seeds with characters flipped, cut or appended. */
export function textFrom(seeds: readonly string[]): fc.Arbitrary<string> {
  const random = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 40 }));
  if (seeds.length === 0) return random;
  const enc = seeds.map((s) => new Uint8Array(Buffer.from(s)));
  const fromBytes = bytesFrom(enc, 80).map((b) => Buffer.from(b).toString('utf8'));
  return fc.oneof({ arbitrary: fromBytes, weight: 4 }, { arbitrary: random, weight: 1 });
}

// biome-ignore lint/suspicious/noExplicitAny: JSON trees are walked generically here
type Json = any;

const oddValues: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1.5,
    2 ** 53,
    -(2 ** 63),
    '',
    '0',
    'any',
    [],
    {},
    'A'.repeat(300),
  ),
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ maxLength: 40 }),
  fc.integer(),
);

/** All paths to members and elements of a JSON tree (objects and arrays), root excluded. */
function paths(v: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push([...prefix, i]);
      paths(x, [...prefix, i], out);
    });
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      out.push([...prefix, k]);
      paths(v[k], [...prefix, k], out);
    }
  }
  return out;
}

type JsonEdit = { path: number; op: 'replace' | 'delete' | 'add'; value: Json; key: string };

function applyEdit(seed: Json, e: JsonEdit): Json {
  const copy = structuredClone(seed);
  const all = paths(copy);
  if (all.length === 0) return e.op === 'replace' ? e.value : copy;
  const p = all[e.path % all.length]!;
  let parent = copy;
  for (const k of p.slice(0, -1)) parent = parent[k];
  const last = p[p.length - 1]!;
  if (e.op === 'replace') parent[last] = e.value;
  else if (e.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else if (Array.isArray(parent)) parent.push(e.value);
  else if (typeof parent === 'object' && parent !== null) parent[e.key] = e.value;
  return copy;
}

const jsonEdit: fc.Arbitrary<JsonEdit> = fc.record({
  path: fc.nat(),
  op: fc.constantFrom('replace', 'replace', 'delete', 'add'),
  value: oddValues,
  key: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'toString')),
});

/** JSON values: any JSON, or a seed with one to three members replaced, deleted or added. */
export function jsonFrom(seeds: readonly Json[]): fc.Arbitrary<Json> {
  const random = fc.oneof(fc.jsonValue({ maxDepth: 4 }), oddValues);
  if (seeds.length === 0) return random;
  const edited = fc
    .tuple(fc.constantFrom(...seeds), fc.array(jsonEdit, { minLength: 1, maxLength: 3 }))
    .map(([s, es]) => es.reduce(applyEdit, s));
  return fc.oneof(
    { arbitrary: edited, weight: 6 },
    { arbitrary: random, weight: 2 },
    { arbitrary: fc.constantFrom(...seeds), weight: 1 },
  );
}

/** One HTTP request a route fuzzer sends through fastify's inject. */
export interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/** A hostile URL segment or cookie value: traversal, NUL, long, non-ASCII, or one of `names` the routes serve. */
export function hostileSegment(names: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ minLength: 1, maxLength: 40 }),
    fc.constantFrom('..', '%2e%2e', '%00', 'a%2Fb', '\u00e9', 'x'.repeat(300), ...names),
  );
}

/** A route's path (`/v1/admin/instances/:id`) with each parameter a real value (`real(name)`) or `segment`. */
export function routePath(
  path: string,
  real: (param: string) => string,
  segment: fc.Arbitrary<string>,
): fc.Arbitrary<string> {
  const params = [...path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  if (params.length === 0) return fc.constant(path);
  return fc.tuple(...params.map((n) => fc.oneof(fc.constant(real(n)), segment))).map((vals) => {
    let i = 0;
    return path.replace(/:(\w+)/g, () => encodeURIComponent(vals[i++]!));
  });
}
