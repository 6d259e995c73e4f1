import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the checkout is, and how a test starts one of its modules as a child process, whether the test runs
 * from the sources (`node --import tsx --test test/….test.ts`) or compiled: `npm test` (scripts/test.sh)
 * runs the JavaScript scripts/build-tests.mjs writes to .build/ (.build/src/…, .build/test/…), with no
 * TypeScript loader in the test processes or their children. A path computed from a module's own
 * location therefore goes through here instead of counting `..` from import.meta.url.
 */
const HERE = fileURLToPath(import.meta.url);

/** This process runs the compiled .build/ tree (the module is .js), not the .ts sources. */
export const COMPILED = HERE.endsWith('.js');

/** The checkout's root (package.json, src/, test/, dist/, docs/); its parent holds ../shared. */
export const ROOT = resolve(dirname(HERE), COMPILED ? '../../..' : '../..');

/** Where scripts/build-tests.mjs writes the compiled sources and tests. */
export const BUILD = join(ROOT, '.build');

/**
 * The file to run for the module `source` (a root-relative .ts path, e.g. `src/cli/main.ts`): the source
 * itself, or its compiled .js under .build/ when this process runs compiled.
 */
export function runnable(source: string): string {
  return COMPILED ? join(BUILD, source.replace(/\.ts$/, '.js')) : join(ROOT, source);
}

/**
 * The file to run for the module `name` (`child.ts`) beside the module at `base` (its import.meta.url): the
 * .ts when `base` is a source, the .js when it is compiled.
 */
export function sibling(base: string, name: string): string {
  return fileURLToPath(new URL(base.endsWith('.js') ? name.replace(/\.ts$/, '.js') : name, base));
}

/** The node flags that run `script`: the tsx loader for a .ts source, none for compiled JavaScript. */
export function loaderFor(script: string): string[] {
  return script.endsWith('.ts') ? ['--import', 'tsx'] : [];
}

/** The source a module file came from (for messages): `.build/test/x.test.js` is `test/x.test.ts`. */
export function sourceOf(file: string): string {
  const rel = relative(BUILD, file);
  return rel.startsWith('..') ? file : join(ROOT, rel.replace(/\.js$/, '.ts'));
}
