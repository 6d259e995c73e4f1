import assert from 'node:assert/strict';
import { AttestationError } from '../../src/errors.js';

/**
 * The one set of error assertions for tests: an AttestationError with this `code` and `reason` (a string, or
 * a RegExp for a family of reasons), never its message text. rejectsCode, assertError and caughtError
 * return the error, so a test can check more (e.g. `failures`, `path`).
 */

/** Asserts `e` is an AttestationError with `code` and, when given, `reason`; returns it. */
export function assertError(e: unknown, code: string, reason?: string | RegExp): AttestationError {
  assert.ok(
    e instanceof AttestationError,
    `expected an AttestationError, got ${e instanceof Error ? e.stack : String(e)}`,
  );
  assert.equal(e.code, code, `code (reason was ${e.reason}: ${e.message})`);
  if (typeof reason === 'string') assert.equal(e.reason, reason, `reason (message: ${e.message})`);
  else if (reason !== undefined) assert.match(e.reason, reason, `reason (message: ${e.message})`);
  return e;
}

/**
 * Asserts that `fn` throws an AttestationError with this code (and reason). Returns nothing, so it can be a
 * test body; {@link caughtError} + {@link assertError} give the error itself.
 */
export function throwsCode(fn: () => unknown, code: string, reason?: string | RegExp): void {
  try {
    fn();
  } catch (e) {
    assertError(e, code, reason);
    return;
  }
  assert.fail(`expected ${code} ${String(reason ?? '')}, nothing was thrown`);
}

/** Asserts that `p` (or what `p()` returns or throws) rejects with an AttestationError with this code (and reason). */
export async function rejectsCode(
  p: Promise<unknown> | (() => unknown),
  code: string,
  reason?: string | RegExp,
): Promise<AttestationError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return assertError(e, code, reason);
  }
  assert.fail(`expected ${code} ${String(reason ?? '')}, it resolved`);
}

/** A validator for `assert.throws` / `assert.rejects`: an AttestationError with this code (and reason). */
export function errorWith(code: string, reason?: string | RegExp): (e: unknown) => true {
  return (e: unknown) => {
    assertError(e, code, reason);
    return true;
  };
}

/** Whatever `fn` throws, which must be an AttestationError (any code). */
export function caughtError(fn: () => unknown): AttestationError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AttestationError, `untyped: ${e instanceof Error ? e.stack : String(e)}`);
    return e;
  }
  assert.fail('expected an AttestationError, nothing was thrown');
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

/** True if `e` is an AttestationError (for property tests: nothing else may escape a parser). */
export function isTyped(e: unknown): boolean {
  return e instanceof AttestationError;
}

/** True for a MalformedEvidence-coded AttestationError. */
export function isMalformed(e: unknown): boolean {
  return e instanceof AttestationError && e.code === 'ERR_MALFORMED';
}
