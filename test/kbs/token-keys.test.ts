import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  decodeTokenKeys,
  encodeTokenKeys,
  openTokenKeyFile,
  saveTokenKeyFile,
  TOKEN_KEYS_FORMAT,
} from '../../src/kbs/token-keys.js';
import { rejectsCode, throwsCode } from '../helpers/assert-error.js';

const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-token-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const opts = { maxTokenLifetimeMs: 300_000 };

describe('token key file', () => {
  it('is created 0600 on first run and opened again with the same keys and history', async () => {
    const path = join(dir, 'first.json');
    const ring = await openTokenKeyFile(path, { ...opts, alg: 'ES384' });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(ring.current.alg, 'ES384');
    const again = await openTokenKeyFile(path, opts);
    assert.equal(again.current.kid, ring.current.kid);
    assert.equal(again.current.activatedAt, ring.current.activatedAt);

    const rotated = await again.rotate(undefined, (next) => saveTokenKeyFile(path, next));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const third = await openTokenKeyFile(path, opts);
    assert.deepEqual(
      third.jwks().keys.map((k) => k.kid),
      [rotated.kid, ring.current.kid],
    );
    const retired = third.published().find((k) => k.kid === ring.current.kid);
    assert.equal(retired?.retiredAt, rotated.activatedAt);
  });

  it('round-trips through its encoding', async () => {
    const ring = await openTokenKeyFile(join(dir, 'rt.json'), opts);
    const back = decodeTokenKeys(encodeTokenKeys(ring), 'x', opts);
    assert.deepEqual(back.jwks(), ring.jwks());
    const doc = JSON.parse(Buffer.from(encodeTokenKeys(ring)).toString());
    assert.equal(doc.format, TOKEN_KEYS_FORMAT);
    assert.match(doc.keys[0].privateKey, /^-----BEGIN PRIVATE KEY-----/);
  });

  it('refuses content that is not a token key file', () => {
    const enc = (v: unknown) => new Uint8Array(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)));
    const reason = 'kbs.token_keys.format';
    throwsCode(() => decodeTokenKeys(enc('not json'), 'x', opts), 'ERR_INVALID_ARGUMENT', reason);
    throwsCode(() => decodeTokenKeys(enc({ keys: [] }), 'x', opts), 'ERR_INVALID_ARGUMENT', reason);
    throwsCode(
      () => decodeTokenKeys(enc({ format: TOKEN_KEYS_FORMAT, keys: [{ activatedAt: 0 }] }), 'x', opts),
      'ERR_INVALID_ARGUMENT',
      reason,
    );
    throwsCode(
      () =>
        decodeTokenKeys(
          enc({ format: TOKEN_KEYS_FORMAT, keys: [{ activatedAt: 0, retiredAt: null, privateKey: 'PEM?' }] }),
          'x',
          opts,
        ),
      'ERR_INVALID_ARGUMENT',
      reason,
    );
    throwsCode(
      () => decodeTokenKeys(enc({ format: TOKEN_KEYS_FORMAT, keys: [] }), 'x', opts),
      'ERR_INVALID_ARGUMENT',
      'token.key',
    );
  });

  it('refuses a file others can read, a symlink, or garbage on disk', async () => {
    const path = join(dir, 'loose.json');
    await openTokenKeyFile(path, opts);
    chmodSync(path, 0o644);
    await rejectsCode(openTokenKeyFile(path, opts), 'ERR_INVALID_ARGUMENT', 'kbs.token_keys.permissions');
    chmodSync(path, 0o600);
    const link = join(dir, 'link.json');
    symlinkSync(path, link);
    await rejectsCode(openTokenKeyFile(link, opts), 'ERR_INVALID_ARGUMENT', 'kbs.token_keys.not_file');
    const junk = join(dir, 'junk.json');
    writeFileSync(junk, '{"format":"something else"}', { mode: 0o600 });
    await rejectsCode(openTokenKeyFile(junk, opts), 'ERR_INVALID_ARGUMENT', 'kbs.token_keys.format');
    assert.equal(readFileSync(junk, 'utf8'), '{"format":"something else"}', 'never overwritten');
  });

  it('a rotation whose file cannot be written does not take effect', async () => {
    const path = join(dir, 'unwritable.json');
    const ring = await openTokenKeyFile(path, opts);
    const kid = ring.current.kid;
    await assert.rejects(
      ring.rotate(undefined, (next) => saveTokenKeyFile(join(dir, 'no/such/dir.json'), next)),
    );
    assert.equal(ring.current.kid, kid);
    assert.equal((await openTokenKeyFile(path, opts)).current.kid, kid);
  });
});
