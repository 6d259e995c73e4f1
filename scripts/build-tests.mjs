// Compiles src/ and test/ to JavaScript under .build/ (.build/src/…, .build/test/…: the same layout, so the
// tests' relative imports hold) for `npm test` (scripts/test.sh). Each test file is a node process of its
// own; run through tsx, every one of them (and every child process a test starts) pays about 0.6 s of CPU
// for the loader, which on two cores was a minute of the suite's wall time.
//
// esbuild, the transform tsx itself applies, file by file (tsconfig.json has isolatedModules and
// verbatimModuleSyntax, so no file needs another to compile): the tests run the same JavaScript they run
// under tsx. Types are checked by `npm run typecheck` and by the dist/ build in scripts/test.sh, not here.
// The folder is rebuilt whole (about a second), so a deleted source leaves no stale module behind.
// Source maps (.js.map) let `node --enable-source-maps` report .ts lines.
import { readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, '.build');

/** Every .ts file under `dir` (declaration files excluded). */
function sources(dir) {
  const found = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
      found.push(join(e.parentPath ?? e.path, e.name));
  }
  return found;
}

rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [...sources(join(root, 'src')), ...sources(join(root, 'test'))].map((f) => relative(root, f)),
  absWorkingDir: root,
  outbase: '.',
  outdir: out,
  bundle: false,
  format: 'esm',
  platform: 'node',
  target: ['node20'],
  tsconfig: join(root, 'tsconfig.json'),
  sourcemap: true,
  logLevel: 'warning',
});
