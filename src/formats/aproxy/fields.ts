import { InvalidArgument, MalformedEvidence } from '../../errors.js';
import { decodeBase64 } from '../../util/base64.js';
import {
  expectArray,
  expectBoundedString,
  expectObject,
  expectString,
  expectU32,
  JsonNumber,
  type JsonValue,
} from './json.js';
import { type EcPublicKey, P521_COORD_SIZE, STATE_COUNTER_NONE, type VersionTuple } from './types.js';

/** Size bounds for byte fields, checked on decode (MalformedEvidence) and encode (InvalidArgument). */
export const LIMITS = {
  challenge: [1, 1024],
  report: [1, 32 * 1024],
  certsBuf: [0, 256 * 1024],
  aad: [1, 4096],
  secret: [1, 512 * 1024],
  token: [0, 64 * 1024],
  identityField: [1, 256],
  bootId: [1, 128],
  commitToken: [16, 64],
  nonce: [16, 64],
  errorReason: [1, 128],
  errorMessage: [0, 1024],
  params: [0, 16],
} as const satisfies Record<string, readonly [number, number]>;

/** Decodes a base64 byte field and checks its length (`aproxy.field.length`). */
export function bytesField(v: JsonValue | undefined, field: string, min: number, max: number): Uint8Array {
  const b = decodeBase64(expectString(v, field), 'aproxy.base64', field);
  if (b.length < min || b.length > max) {
    throw new MalformedEvidence('aproxy.field.length', `${field}: ${b.length} bytes, allowed ${min}..${max}`);
  }
  return b;
}

/** Checks a byte value against bounds before encoding it (our own API input, so InvalidArgument). */
export function checkLength(b: Uint8Array, field: string, min: number, max: number): void {
  if (!(b instanceof Uint8Array) || b.length < min || b.length > max) {
    throw new InvalidArgument('aproxy.encode.length', `${field}: must be ${min}..${max} bytes`);
  }
}

export function parseVersionTuple(v: JsonValue | undefined, field: string): VersionTuple {
  const a = expectArray(v, field);
  if (a.length !== 3) {
    throw new MalformedEvidence('aproxy.field.value', `${field}: expected 3 elements, got ${a.length}`);
  }
  return [expectU32(a[0], `${field}[0]`), expectU32(a[1], `${field}[1]`), expectU32(a[2], `${field}[2]`)];
}

/** `{x, y}` with 66-byte P-521 coordinates (other keys go to `unknown` when given, else are refused). */
export function parseEcKey(v: JsonValue | undefined, field: string, unknown?: string[]): EcPublicKey {
  const o = expectObject(v, field, ['x', 'y'], [], unknown);
  return {
    x: bytesField(o.get('x'), `${field}.x`, P521_COORD_SIZE, P521_COORD_SIZE),
    y: bytesField(o.get('y'), `${field}.y`, P521_COORD_SIZE, P521_COORD_SIZE),
  };
}

export function checkEcKey(k: EcPublicKey, field: string): void {
  checkLength(k.x, `${field}.x`, P521_COORD_SIZE, P521_COORD_SIZE);
  checkLength(k.y, `${field}.y`, P521_COORD_SIZE, P521_COORD_SIZE);
}

const COUNTER_TEXT = /^(?:0|[1-9][0-9]{0,19})$/;

/**
 * A 0.2.0 counter travels as a decimal string (a JSON number cannot carry every u64 exactly in JavaScript).
 * The value 2^64-1 is reserved for "no state" and never valid as a counter. Throws `aproxy.counter`.
 */
export function parseCounter(v: JsonValue | undefined, field: string): bigint {
  const s = expectString(v, field);
  if (!COUNTER_TEXT.test(s)) throw new MalformedEvidence('aproxy.counter', `${field}: not a decimal u64`);
  const n = BigInt(s);
  if (n >= STATE_COUNTER_NONE) throw new MalformedEvidence('aproxy.counter', `${field}: out of range`);
  return n;
}

export function formatCounter(n: bigint, field: string): string {
  if (typeof n !== 'bigint' || n < 0n || n >= STATE_COUNTER_NONE) {
    throw new InvalidArgument('aproxy.counter', `${field}: must be a bigint in 0..2^64-2`);
  }
  return n.toString(10);
}

/** A sealing-key version (u32, 1..2^32-1) as a JSON integer. Throws `aproxy.field.type` / `.value`. */
export function parseKeyVersion(v: JsonValue | undefined, field: string): number {
  const n = expectU32(v, field);
  if (n < 1) throw new MalformedEvidence('aproxy.field.value', `${field}: key versions start at 1`);
  return n;
}

export function checkKeyVersion(n: number, field: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 0xffff_ffff) {
    throw new InvalidArgument('aproxy.encode.key_version', `${field}: must be an integer in 1..2^32-1`);
  }
  return n;
}

/** Milliseconds since the Unix epoch as a JSON integer (0..2^53-1). Throws `aproxy.field.type` / `.value`. */
export function parseTimestamp(v: JsonValue | undefined, field: string): number {
  if (!(v instanceof JsonNumber)) {
    throw new MalformedEvidence('aproxy.field.type', `${field}: expected an integer`);
  }
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(v.text) || !Number.isSafeInteger(Number(v.text))) {
    throw new MalformedEvidence('aproxy.field.value', `${field}: not a timestamp (${v.text.slice(0, 32)})`);
  }
  return Number(v.text);
}

export function checkTimestamp(n: number, field: string): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgument('aproxy.encode.timestamp', `${field}: must be an integer in 0..2^53-1`);
  }
  return n;
}

export { expectBoundedString };
