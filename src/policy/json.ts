import { InvalidArgument } from '../errors.js';

/**
 * Small strict validators for policy documents (JSON as parsed by JSON.parse, or the same shapes built in
 * code). Each takes the value and its path (`$.minimumTcb.Turin.fmc`) and throws InvalidArgument with reason
 * `policy.invalid` and a message naming the path; none throws anything else, whatever the input.
 */

export const POLICY_INVALID = 'policy.invalid';

/**
 * A policy document (or policy object) that is not valid: InvalidArgument (`ERR_INVALID_ARGUMENT`) with
 * reason `policy.invalid`, plus the JSON path of the offending value (`$.minimumTcb.Turin.fmc`), which the
 * message also starts with.
 */
export class InvalidPolicy extends InvalidArgument {
  readonly path: string;

  constructor(path: string, what: string) {
    super(POLICY_INVALID, `${path}: ${what}`);
    this.path = path;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), path: this.path };
  }
}

export function policyInvalid(path: string, what: string): InvalidPolicy {
  return new InvalidPolicy(path, what);
}

/** A short, bounded rendering of an offending value for messages (never the whole of a huge input). */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a ${v.length}-character string` : JSON.stringify(v);
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `a ${typeof v}`;
}

/** A plain object (JSON object): not null, not an array, prototype Object.prototype or null. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Checks that `v` is a plain object whose own keys are all in `allowed`; returns it. Unknown keys are
 * rejected so that a misspelt rule (`alowDebug`) cannot silently fall back to its default.
 */
export function expectObject(v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isPlainObject(v)) throw policyInvalid(path, `expected an object, got ${describeValue(v)}`);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) {
      const shown = key.length > 40 ? `${key.slice(0, 40)}...` : key;
      throw policyInvalid(`${path}.${shown}`, `unknown key (allowed: ${allowed.join(', ')})`);
    }
  }
  return v;
}

export function expectBoolean(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw policyInvalid(path, `expected true or false, got ${describeValue(v)}`);
  return v;
}

/** An integer in [min, max]. */
export function expectInt(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw policyInvalid(path, `expected an integer from ${min} to ${max}, got ${describeValue(v)}`);
  }
  return v;
}

const HEX = /^(?:0x)?([0-9a-fA-F]*)$/;

/**
 * Hex of exactly `bytes` bytes (one of `bytes` when an array is given), optional `0x` prefix, any case;
 * returns it normalized to lower case without the prefix.
 */
export function expectHex(v: unknown, path: string, bytes: number | readonly number[]): string {
  const sizes = typeof bytes === 'number' ? [bytes] : bytes;
  const want = sizes.map((n) => `${n}`).join(' or ');
  if (typeof v !== 'string')
    throw policyInvalid(path, `expected ${want} bytes of hex, got ${describeValue(v)}`);
  const m = HEX.exec(v);
  if (!m) throw policyInvalid(path, `expected hex digits, got ${describeValue(v)}`);
  const digits = m[1]!;
  if (!sizes.some((n) => digits.length === 2 * n)) {
    throw policyInvalid(path, `expected ${want} bytes of hex, got ${digits.length / 2} bytes`);
  }
  return digits.toLowerCase();
}

/** A non-empty array; each element validated by `item` with path `path[i]`. */
export function expectNonEmptyArray<T>(v: unknown, path: string, item: (x: unknown, path: string) => T): T[] {
  if (!Array.isArray(v)) throw policyInvalid(path, `expected an array, got ${describeValue(v)}`);
  if (v.length === 0) {
    throw policyInvalid(path, "an empty list accepts nothing; leave the key out or use 'any'");
  }
  // Array.from visits holes as undefined (map would skip them), so a sparse array cannot slip through.
  return Array.from({ length: v.length }, (_, i) => item(v[i], `${path}[${i}]`));
}
