import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgument } from '../errors.js';

/** One built file, held in memory (the bundle is a few hundred KiB). */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
};

/**
 * Where `npm run build` writes the dashboard (scripts/build-web.mjs): `dist/web-assets/`, beside the
 * compiled `dist/web/`. Run from the sources (tsx), this file is `src/web/assets.ts` and the same
 * `dist/web-assets/` of the checkout is used.
 */
export function defaultAssetsDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const beside = resolve(here, '../web-assets');
  if (existsSync(join(beside, 'index.html'))) return beside;
  return resolve(here, '../../dist/web-assets');
}

/**
 * Reads every built file of `dir` (flat: index.html, app.js, app.css). Throws InvalidArgument
 * `web.assets` naming the directory and the build command when the dashboard was not built.
 */
export function loadAssets(dir: string): Map<string, Asset> {
  if (!existsSync(join(dir, 'index.html'))) {
    throw new InvalidArgument(
      'web.assets',
      `the dashboard is not built (no ${join(dir, 'index.html')}): run npm run build, or serve with --dashboard off`,
    );
  }
  const out = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type || !/^[A-Za-z0-9._-]+$/.test(name)) continue;
    out.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  return out;
}
