import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './paths.js';

/**
 * The CLI tests run the compiled CLI (bin/vouchsafe.js imports dist/cli/main.js), not the sources: that is
 * what users run. `npm test` builds first (scripts/test.sh); a test file run on its own needs `npm run build`
 * after a source edit, and this check says so instead of letting the tests exercise yesterday's code.
 */
export { ROOT };
export const DIST = join(ROOT, 'dist');
/** Written by every `tsc -p tsconfig.build.json` run, so its mtime is the time of the last build. */
const BUILD_INFO = join(DIST, '.tsbuildinfo');

function newestSource(dir: string, best: { path: string; mtimeMs: number }): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newestSource(p, best);
    else if (e.name.endsWith('.ts')) {
      const m = statSync(p).mtimeMs;
      if (m > best.mtimeMs) {
        best.path = p;
        best.mtimeMs = m;
      }
    }
  }
}

const NOT_BUILT = 'dist/ is not built: run `npm run build` (the CLI tests run the compiled CLI)';
const isBuilt = () => existsSync(join(DIST, 'cli', 'main.js')) && existsSync(BUILD_INFO);

/** Throws when dist/ has never been built. */
export function assertDistBuilt(): void {
  if (!isBuilt()) throw new Error(NOT_BUILT);
}

/** Why dist/ cannot stand for the current sources (missing, or older than a file in src/), or undefined. */
export function distProblem(): string | undefined {
  if (!isBuilt()) return NOT_BUILT;
  const built = statSync(BUILD_INFO).mtimeMs;
  const newest = { path: '', mtimeMs: 0 };
  newestSource(join(ROOT, 'src'), newest);
  if (newest.mtimeMs > built) {
    const rel = newest.path.slice(ROOT.length + 1);
    return `dist/ is older than ${rel}: run \`npm run build\` (the CLI tests run the compiled CLI)`;
  }
  return undefined;
}

/** Throws when dist/ is missing or stale; called once by every module that spawns the CLI. */
export function assertDistCurrent(): void {
  const problem = distProblem();
  if (problem) throw new Error(problem);
}
