// Builds the operator dashboard (web/, docs/dashboard.md) into dist/web-assets/: one ES module bundle
// (Preact, htm, uPlot and the pages), one stylesheet, and index.html, minified, without source maps. The
// broker serves them under a CSP that allows only its own scripts and styles: no inline code, no eval,
// nothing from another origin (src/web/headers.ts).
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web-assets');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(root, 'web', 'src', 'main.js') },
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  outdir: out,
  logLevel: 'warning',
  // Build-time constant: Preact's development checks are dropped.
  define: { 'process.env.NODE_ENV': '"production"' },
});
copyFileSync(join(root, 'web', 'index.html'), join(out, 'index.html'));
