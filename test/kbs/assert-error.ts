import assert from 'node:assert/strict';
import { AttestationError } from '../../src/errors.js';

/** Asserts that `fn` throws an AttestationError with this code and reason. */
export function throwsReason(fn: () => unknown, code: string, reason: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    assert.equal(e.code, code, `code (reason was ${e.reason}: ${e.message})`);
    assert.equal(e.reason, reason);
    return true;
  });
}

export async function rejectsReason(p: Promise<unknown>, code: string, reason: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    assert.equal(e.code, code, `code (reason was ${e.reason}: ${e.message})`);
    assert.equal(e.reason, reason);
    return true;
  });
}

/** For property tests: only typed errors may escape a parser. */
export function onlyTyped(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof AttestationError)) throw e;
  }
}
