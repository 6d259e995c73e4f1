import assert from 'node:assert/strict';
import { AttestationError } from '../../src/errors.js';

/** Asserts that `fn` throws an AttestationError with this code and reason. */
export function throwsCode(fn: () => unknown, code: string, reason: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(
      e instanceof AttestationError,
      `expected AttestationError, got ${e instanceof Error ? e.stack : String(e)}`,
    );
    assert.equal(e.code, code, `code (reason was ${e.reason}: ${e.message})`);
    assert.equal(e.reason, reason, `reason (message: ${e.message})`);
    return true;
  });
}

/** Runs `fn`; anything thrown must be an AttestationError (property tests: nothing untyped may escape). */
export function onlyTyped(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof AttestationError)) {
      throw new Error(`untyped error escaped: ${e instanceof Error ? e.stack : String(e)}`);
    }
  }
}

export function flipByte(b: Uint8Array, index: number): Uint8Array {
  const c = Uint8Array.from(b);
  c[index] = c[index]! ^ 0x01;
  return c;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
