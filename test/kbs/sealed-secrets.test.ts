/**
 * Operator secrets encrypted at rest under the KEK (src/kbs/sealed-secret.ts, file-secrets.ts): a plaintext
 * file is sealed in place when first read and at broker start; what is on disk afterwards — the secrets
 * directory, the data directory, the SQLite database and its WAL — holds no byte string of the secret. A
 * sealed file moved to another path, altered, truncated or sealed under another KEK is refused with a
 * typed reason, never served.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileSecretSource } from '../../src/kbs/file-secrets.js';
import { isSealed, sealSecret, unsealSecret } from '../../src/kbs/sealed-secret.js';
import { AesGcmKek } from '../../src/keys/file-kek.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { startBrokerStack } from '../helpers/broker.js';

const root = mkdtempSync(join(tmpdir(), 'vouchsafe-sealed-secrets-'));
after(() => rmSync(root, { recursive: true, force: true }));
const ANY = { instances: 'any', projects: 'any', measurements: 'any' };
let seq = 0;

function secretsDir(secrets: Record<string, string>): string {
  const dir = join(root, `case-${++seq}`, 'secrets');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(dir, 'resource-policy.json'),
    JSON.stringify(Object.fromEntries(Object.keys(secrets).map((p) => [p, ANY]))),
  );
  for (const [path, value] of Object.entries(secrets)) {
    mkdirSync(join(dir, path, '..'), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, path), value, { mode: 0o600 });
  }
  return dir;
}

/** Every regular file under `dir`. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : [],
  );
}

const kek = () => new AesGcmKek(randomBytes(32));
const text = (v: { value: Uint8Array } | undefined) => (v ? Buffer.from(v.value).toString() : undefined);

describe('operator secrets sealed under the KEK', () => {
  it('a plaintext file is sealed in place when first read, then served from the sealed file', async () => {
    const secret = `pw-${randomBytes(8).toString('hex')}`;
    const dir = secretsDir({ 'apps/db/password': secret });
    const src = new FileSecretSource({ dir, kek: kek() });
    assert.equal(text(await src.get('apps/db/password')), secret);
    const onDisk = readFileSync(join(dir, 'apps/db/password'));
    assert.ok(isSealed(onDisk));
    assert.ok(!onDisk.includes(Buffer.from(secret)));
    assert.equal(statSync(join(dir, 'apps/db/password')).mode & 0o777, 0o600);
    assert.equal(text(await src.get('apps/db/password')), secret);
    // No temporary file left behind.
    assert.deepEqual(readdirSync(join(dir, 'apps/db')), ['password']);
  });

  it('sealAll seals every plaintext secret the policy names, once', async () => {
    const dir = secretsDir({ 'a/b/c': 'one-secret-value', 'a/b/d': 'two-secret-value' });
    const src = new FileSecretSource({ dir, kek: kek() });
    assert.deepEqual((await src.sealAll()).sort(), ['a/b/c', 'a/b/d']);
    assert.deepEqual(await src.sealAll(), []);
    for (const f of files(dir)) assert.ok(!readFileSync(f).includes(Buffer.from('secret-value')), f);
  });

  it('refuses a sealed file moved to another path, altered, truncated, or sealed under another KEK', async () => {
    const k = kek();
    const dir = secretsDir({ 'x/y/one': 'first-secret', 'x/y/two': 'second-secret' });
    const src = new FileSecretSource({ dir, kek: k });
    await src.sealAll();
    // The operator's path binding: the sealed "one" copied over "two" does not open as "two".
    copyFileSync(join(dir, 'x/y/one'), join(dir, 'x/y/two'));
    await rejectsCode(src.get('x/y/two'), 'ERR_INVALID_ARGUMENT', 'broker.kek.unwrap_failed');
    const sealed = await sealSecret(k, 'x/y/one', Buffer.from('v'));
    const altered = Uint8Array.from(sealed);
    altered[altered.length - 1]! ^= 1;
    await rejectsCode(
      unsealSecret(k, 'x/y/one', altered),
      'ERR_INVALID_ARGUMENT',
      'broker.kek.unwrap_failed',
    );
    await rejectsCode(
      unsealSecret(k, 'x/y/one', sealed.subarray(0, 8)),
      'ERR_INVALID_ARGUMENT',
      'kbs.secrets.sealed',
    );
    await rejectsCode(unsealSecret(kek(), 'x/y/one', sealed), 'ERR_INVALID_ARGUMENT', 'broker.kek.mismatch');
    await rejectsCode(
      unsealSecret(k, 'x/y/one', Buffer.from('plain')),
      'ERR_INVALID_ARGUMENT',
      'kbs.secrets.sealed',
    );
    assert.equal(Buffer.from(await unsealSecret(k, 'x/y/one', sealed)).toString(), 'v');
  });

  it('a broker seals the secrets at start; no file it keeps (database, WAL, secrets) holds the plaintext', async () => {
    const secret = `op-secret-${randomBytes(12).toString('hex')}`;
    const dir = secretsDir({ 'apps/db/password': secret });
    const stack = await startBrokerStack({ broker: { kbs: { secretsDir: dir } } });
    try {
      const got = await stack.b.kbs?.secrets?.get('apps/db/password');
      assert.equal(text(got), secret);
      // Use the store a little so the database and its WAL exist with content.
      await stack.register();
      const needle = Buffer.from(secret);
      const kept = [...files(dir), ...files(stack.b.dataDir)];
      assert.ok(kept.some((f) => f.endsWith('vouchsafe.db')));
      for (const f of kept) assert.ok(!readFileSync(f).includes(needle), `${f} holds the plaintext secret`);
    } finally {
      await stack.close();
    }
  });
});
