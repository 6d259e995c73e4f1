import assert from 'node:assert/strict';
import { AttestationError } from '../../src/errors.js';

/** Asserts that `fn` throws an AttestationError with this code and reason. */
export function throwsCode(fn: () => unknown, code: string, reason: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    assert.equal(e.code, code, `code (reason was ${e.reason})`);
    assert.equal(e.reason, reason);
    return true;
  });
}

/** Async version of {@link throwsCode}. */
export async function rejectsCode(p: Promise<unknown>, code: string, reason: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    assert.equal(e.code, code, `code (reason was ${e.reason}: ${e.message})`);
    assert.equal(e.reason, reason);
    return true;
  });
}

/** True if `e` is an AttestationError (for property tests: nothing else may escape a parser). */
export function isTyped(e: unknown): boolean {
  return e instanceof AttestationError;
}

/** True for a MalformedEvidence-coded AttestationError. */
export function isMalformed(e: unknown): boolean {
  return e instanceof AttestationError && e.code === 'ERR_MALFORMED';
}
