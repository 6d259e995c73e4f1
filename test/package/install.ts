import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/dist.js';

const run = promisify(execFile);

/**
 * The environment for npm and for the installed command: no loader or module path inherited from the test
 * runner (NODE_OPTIONS, NODE_PATH), no npm_* variables from an enclosing `npm test` (npm_config_prefix and
 * the like would redirect the install), but the user's npm cache and config, and this node first on PATH.
 */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'NODE_PATH') continue;
    if (/^npm_/i.test(k) && !/^npm_config_(cache|userconfig|globalconfig|registry)$/i.test(k)) continue;
    env[k] = v;
  }
  env.PATH = [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter);
  return env;
}

export interface Packed {
  /** The tarball's file name, in `dir`. */
  filename: string;
  /** Every path in the tarball. */
  files: string[];
}

/**
 * `npm pack` of the working tree into `dir`. Lifecycle scripts are skipped: `prepack` deletes dist/ and
 * `prepare` rebuilds it, which would pull dist/ from under CLI tests running in parallel. The tarball holds
 * the dist/ that scripts/test.sh (or `npm run build`) just built.
 */
export async function pack(dir: string): Promise<Packed> {
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: ROOT,
    env: cleanEnv(),
    maxBuffer: 16 << 20,
  });
  const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  if (!info) throw new Error(`npm pack printed no package: ${stdout}`);
  return { filename: info.filename, files: info.files.map((f) => f.path) };
}

interface LockEntry {
  dev?: boolean;
  [k: string]: unknown;
}

/**
 * Installs the tarball `dir/filename` into the empty prefix `dir/prefix`, offline, and returns the prefix.
 *
 * Offline from the npm cache that `npm ci` filled: that cache holds the locked tarballs but not every
 * registry document a fresh resolution of `vouchsafe@file:…` would ask for, so the prefix gets a lockfile
 * made of the repository's own non-dev entries (the versions the tests ran against) plus the tarball, and
 * `npm ci --offline` installs exactly that. better-sqlite3 has no prebuilt binary in its package: its
 * install script downloads one or compiles with node-gyp (minutes, a compiler). Scripts are skipped and the
 * addon `npm ci` already produced for this node is copied in, after checking it is the same version.
 */
export async function installOffline(dir: string, filename: string): Promise<string> {
  const prefix = join(dir, 'prefix');
  mkdirSync(prefix);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const spec = `file:../${filename}`;
  const packages: Record<string, unknown> = {
    '': { name: 'vouchsafe-pack-test', dependencies: { vouchsafe: spec } },
    'node_modules/vouchsafe': {
      version: pkg.version,
      resolved: spec,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path !== '' && !entry.dev) packages[path] = entry;
  }
  writeFileSync(
    join(prefix, 'package.json'),
    JSON.stringify({ name: 'vouchsafe-pack-test', private: true, dependencies: { vouchsafe: spec } }),
  );
  writeFileSync(
    join(prefix, 'package-lock.json'),
    JSON.stringify({ name: 'vouchsafe-pack-test', lockfileVersion: 3, requires: true, packages }),
  );
  await run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: prefix,
    env: cleanEnv(),
    maxBuffer: 16 << 20,
  });

  const from = join(ROOT, 'node_modules', 'better-sqlite3');
  const to = join(prefix, 'node_modules', 'better-sqlite3');
  const version = (d: string) => JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')).version;
  if (version(from) !== version(to)) {
    throw new Error(`better-sqlite3 ${version(to)} installed, ${version(from)} built here: run npm ci`);
  }
  const addon = join('build', 'Release', 'better_sqlite3.node');
  if (!existsSync(join(from, addon))) throw new Error(`no ${addon} in ${from}: run npm ci`);
  mkdirSync(join(to, 'build', 'Release'), { recursive: true });
  cpSync(join(from, addon), join(to, addon));
  return prefix;
}
