/**
 * Operator secrets from a directory (src/kbs/file-secrets.ts): the directory and every directory on the way
 * to a secret must be real (no symbolic link), owned by the broker's user and not writable by others, so a
 * planted link cannot serve a file from elsewhere (the broker's KEK) as an operator secret.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileSecretSource } from '../../src/kbs/file-secrets.js';
import { rejectsCode, throwsCode } from '../helpers/assert-error.js';

const root = mkdtempSync(join(tmpdir(), 'vouchsafe-file-secrets-'));
after(() => rmSync(root, { recursive: true, force: true }));
const ANY = { instances: 'any', projects: 'any', measurements: 'any' };
let seq = 0;

/** A fresh secrets directory (0700) whose policy file names `paths`, plus a "KEK" file beside it. */
function setup(paths: string[]): { dir: string; outside: string } {
  const base = join(root, `case-${++seq}`);
  const dir = join(base, 'secrets');
  const outside = join(base, 'data');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(outside, { mode: 0o700 });
  writeFileSync(join(outside, 'kek'), 'the broker KEK', { mode: 0o600 });
  writeFileSync(
    join(dir, 'resource-policy.json'),
    JSON.stringify(Object.fromEntries(paths.map((p) => [p, ANY]))),
    {
      mode: 0o644,
    },
  );
  return { dir, outside };
}

function writeSecret(dir: string, path: string, value: string): void {
  const file = join(dir, path);
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(file, value, { mode: 0o600 });
}

const text = (v: { value: Uint8Array } | undefined) => (v ? Buffer.from(v.value).toString() : undefined);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

describe('FileSecretSource: confinement to the secrets directory', () => {
  it('serves a secret under real directories', async () => {
    const { dir } = setup(['apps/db/password']);
    writeSecret(dir, 'apps/db/password', 'hunter2');
    assert.equal(text(await new FileSecretSource({ dir }).get('apps/db/password')), 'hunter2');
  });

  it('refuses a symlinked <type> directory that leads to the KEK', async () => {
    const { dir, outside } = setup(['leak/data/kek']);
    mkdirSync(join(dir, 'leak'), { mode: 0o700 });
    symlinkSync(outside, join(dir, 'leak', 'data'));
    const src = new FileSecretSource({ dir });
    await rejectsCode(src.get('leak/data/kek'), 'ERR_INVALID_ARGUMENT', 'kbs.secrets.file.symlink');
  });

  it('refuses a symlinked <repository> directory', async () => {
    const { dir } = setup(['up/data/kek']);
    symlinkSync(join(dir, '..'), join(dir, 'up'));
    const src = new FileSecretSource({ dir });
    await rejectsCode(src.get('up/data/kek'), 'ERR_INVALID_ARGUMENT', 'kbs.secrets.file.symlink');
  });

  it('refuses a symlinked secret file (the last component)', async () => {
    const { dir, outside } = setup(['apps/db/kek']);
    mkdirSync(join(dir, 'apps', 'db'), { recursive: true, mode: 0o700 });
    symlinkSync(join(outside, 'kek'), join(dir, 'apps', 'db', 'kek'));
    const src = new FileSecretSource({ dir });
    await rejectsCode(src.get('apps/db/kek'), 'ERR_INVALID_ARGUMENT', 'kbs.secrets.file.not_file');
  });

  it('accepts a secrets directory reached through a link: resolved once, at start', async () => {
    const { dir } = setup(['apps/db/password']);
    writeSecret(dir, 'apps/db/password', 'hunter2');
    const link = join(dir, '..', 'secrets-link');
    symlinkSync(dir, link);
    const src = new FileSecretSource({ dir: link });
    assert.equal(src.dir, dir);
    assert.equal(text(await src.get('apps/db/password')), 'hunter2');
  });

  it('a missing directory on the way is a missing secret', async () => {
    const { dir } = setup(['apps/none/x']);
    assert.equal(await new FileSecretSource({ dir }).get('apps/none/x'), undefined);
  });
});

describe('FileSecretSource: mode and owner of the directories', () => {
  it('refuses to start on a secrets directory writable by group or others', () => {
    for (const mode of [0o770, 0o707, 0o777]) {
      const { dir } = setup([]);
      chmodSync(dir, mode);
      throwsCode(() => new FileSecretSource({ dir }), 'ERR_INVALID_ARGUMENT', 'kbs.secrets.dir.permissions');
    }
  });

  it('refuses to serve once the directory became writable by others after start', async () => {
    const { dir } = setup(['apps/db/password']);
    writeSecret(dir, 'apps/db/password', 'hunter2');
    const src = new FileSecretSource({ dir });
    chmodSync(dir, 0o777);
    await rejectsCode(src.get('apps/db/password'), 'ERR_INVALID_ARGUMENT', 'kbs.secrets.dir.permissions');
  });

  it('refuses a directory below it that group or others can write (they could plant a link)', async () => {
    const { dir } = setup(['apps/db/password']);
    writeSecret(dir, 'apps/db/password', 'hunter2');
    chmodSync(join(dir, 'apps'), 0o777);
    const src = new FileSecretSource({ dir });
    await rejectsCode(src.get('apps/db/password'), 'ERR_INVALID_ARGUMENT', 'kbs.secrets.dir.permissions');
  });

  it('refuses a secrets directory, or one below it, owned by another user', {
    skip: !isRoot && 'needs root to chown',
  }, async () => {
    const { dir } = setup(['apps/db/password']);
    writeSecret(dir, 'apps/db/password', 'hunter2');
    chownSync(join(dir, 'apps', 'db'), 65534, 65534);
    const src = new FileSecretSource({ dir });
    await rejectsCode(src.get('apps/db/password'), 'ERR_INVALID_ARGUMENT', 'kbs.secrets.dir.owner');
    chownSync(dir, 65534, 65534);
    throwsCode(() => new FileSecretSource({ dir }), 'ERR_INVALID_ARGUMENT', 'kbs.secrets.dir.owner');
  });

  it('refuses to start on a path that is missing or not a directory', () => {
    const { dir } = setup([]);
    throwsCode(
      () => new FileSecretSource({ dir: join(dir, 'nowhere') }),
      'ERR_INVALID_ARGUMENT',
      'kbs.secrets.dir',
    );
    throwsCode(
      () => new FileSecretSource({ dir: join(dir, 'resource-policy.json') }),
      'ERR_INVALID_ARGUMENT',
      'kbs.secrets.dir',
    );
  });
});
