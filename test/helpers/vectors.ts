import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT } from './paths.js';

/**
 * Real-hardware vectors are read in place from ../shared/vectors (or $VOUCHSAFE_VECTORS), never copied.
 * In CI they must be present: a missing directory fails there instead of skipping.
 */
export const VECTORS = resolve(process.env.VOUCHSAFE_VECTORS ?? join(ROOT, '..', 'shared', 'vectors'));
export const haveVectors = existsSync(join(VECTORS, 'README.md'));

if (!haveVectors && process.env.CI) {
  throw new Error(`real-hardware vectors not found at ${VECTORS}; CI requires them (set VOUCHSAFE_VECTORS)`);
}

/**
 * Options for a test that needs the vectors: when they are absent (outside CI) the test is reported as
 * skipped with the reason, so the summary says the real-vector suite did not run.
 */
export const needsVectors: { skip: string | false } = {
  skip: haveVectors ? false : `real-hardware vectors absent at ${VECTORS} (set VOUCHSAFE_VECTORS)`,
};

export function vectorPath(...parts: string[]): string {
  return join(VECTORS, ...parts);
}

export function readVector(...parts: string[]): Uint8Array {
  return new Uint8Array(readFileSync(vectorPath(...parts)));
}

export function readVectorText(...parts: string[]): string {
  return readFileSync(vectorPath(...parts), 'utf8');
}

// biome-ignore lint/suspicious/noExplicitAny: vector JSON is read as untyped oracle data
export function readVectorJson<T = any>(...parts: string[]): T {
  return JSON.parse(readVectorText(...parts)) as T;
}

export function vectorCases(...parts: string[]): string[] {
  if (!haveVectors) return [];
  return readdirSync(vectorPath(...parts), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}
