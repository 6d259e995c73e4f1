#!/usr/bin/env node
// Runs the compiled CLI in dist/ (built by `npm run build`, and by `npm ci` through the `prepare` script).
// Plain node, no TypeScript loader: the installed package needs neither tsx nor typescript at run time.
// `npm run vouchsafe -- ARGS` runs the TypeScript sources instead, for development.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'vouchsafe: dist/ is not built; run `npm run build` (or `npm ci`) in the package first\n',
  );
  process.exit(2);
}
await import(main.href);
