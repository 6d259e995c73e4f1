/**
 * Waits for a condition that an event will make true (a proxy counting an outcome, a log line written after
 * the reply went out). The bound is a count of polls, there only to turn a hang into a failure that names
 * what never happened; a busy machine just polls longer.
 */
import assert from 'node:assert/strict';

export async function waitFor(cond: () => boolean, what: string, attempts = 3000): Promise<void> {
  for (let i = 0; i < attempts && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `never happened: ${what}`);
}
