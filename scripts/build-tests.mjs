// Compiles src/ and test/ to JavaScript under .build/ (.build/src/…, .build/test/…: the same layout, so the
// tests' relative imports hold) for `npm test` (scripts/test.sh). Each test file is a node process of its
// own; run through tsx, every one of them (and every child process a test starts) paid about 0.6 s of CPU
// for the loader, which on two cores was a minute of the suite's wall time.
//
// esbuild, the transform tsx itself applies, file by file (tsconfig.json has isolatedModules and
// verbatimModuleSyntax, so no file needs another to compile): the tests run the same JavaScript they run
// under tsx. Types are checked by `npm run typecheck` and by the dist/ build in scripts/test.sh, not here.
// Every file is compiled each time (about a second), but only a changed output is written (to a temporary
// name, then renamed, so that a test process running meanwhile never reads half a file), and an output whose
// source is gone is deleted: no stale module is left to import or to run as a test.
// Source maps (.js.map) let `NODE_OPTIONS=--enable-source-maps` report .ts lines.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, '.build');

/** Every file under `dir` whose name passes `keep`. */
function files(dir, keep) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && keep(e.name))
    .map((e) => join(e.parentPath ?? e.path, e.name));
}

const isSource = (name) => name.endsWith('.ts') && !name.endsWith('.d.ts');
const result = await build({
  entryPoints: [...files(join(root, 'src'), isSource), ...files(join(root, 'test'), isSource)].map((f) =>
    relative(root, f),
  ),
  absWorkingDir: root,
  outbase: '.',
  outdir: out,
  bundle: false,
  format: 'esm',
  platform: 'node',
  target: ['node20'],
  tsconfig: join(root, 'tsconfig.json'),
  sourcemap: true,
  write: false,
  logLevel: 'warning',
});

const wanted = new Set();
const dirs = new Set();
for (const f of result.outputFiles) {
  wanted.add(f.path);
  dirs.add(dirname(f.path));
}
await Promise.all([...dirs].map((d) => mkdir(d, { recursive: true })));
for (const f of result.outputFiles) {
  if (existsSync(f.path) && readFileSync(f.path).equals(f.contents)) continue;
  const tmp = `${f.path}.${process.pid}.tmp`;
  writeFileSync(tmp, f.contents);
  renameSync(tmp, f.path);
}
for (const f of files(out, () => true)) if (!wanted.has(f)) rmSync(f);
