import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AesGcmKek, openFileKek } from '../../src/broker/kek.js';
import { createSealingKey, openSealingKey, sealingKeyAad } from '../../src/broker/sealing-key.js';
import { ErrorCode } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-kek-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `case-${++n}`, 'kek');

const invalid = (reason: string) => (e: unknown) => {
  assert.equal((e as { code: string }).code, ErrorCode.InvalidArgument);
  assert.equal((e as { reason: string }).reason, reason);
  return true;
};

describe('KEK file', () => {
  it('is created on first run with mode 0600 (even under umask 000), 32 bytes, in a 0700 directory', () => {
    const path = fresh();
    const old = process.umask(0);
    try {
      openFileKek(path);
    } finally {
      process.umask(old);
    }
    const st = statSync(path);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.size, 32);
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
  });

  it('opens the same key again: same id, decrypts what the first instance encrypted', async () => {
    const path = fresh();
    const a = openFileKek(path);
    const ct = await a.encrypt(new Uint8Array([1, 2, 3]), new Uint8Array([9]));
    const b = openFileKek(path, { create: false });
    assert.equal(b.id, a.id);
    assert.deepEqual(await b.decrypt(ct, new Uint8Array([9])), new Uint8Array([1, 2, 3]));
  });

  for (const mode of [0o640, 0o604, 0o660, 0o644]) {
    it(`refuses a KEK file with mode ${mode.toString(8)} (group/other access)`, () => {
      const path = fresh();
      openFileKek(path);
      chmodSync(path, mode);
      assert.throws(() => openFileKek(path), invalid('broker.kek.permissions'));
    });
  }

  it('refuses a KEK file of the wrong size', () => {
    const path = fresh();
    openFileKek(path);
    writeFileSync(path, randomBytes(31), { mode: 0o600 });
    assert.throws(() => openFileKek(path), invalid('broker.kek.size'));
  });

  it('refuses a symbolic link', () => {
    const path = fresh();
    const target = `${path}.real`;
    openFileKek(target);
    symlinkSync(target, path);
    assert.throws(() => openFileKek(path), invalid('broker.kek.not_file'));
  });

  it('refuses a missing file when creation is off', () => {
    assert.throws(() => openFileKek(fresh(), { create: false }), invalid('broker.kek.missing'));
  });

  it('refuses a KEK file owned by another user', {
    skip: process.getuid?.() === 0 ? false : 'needs root to chown the file to another user',
  }, () => {
    const path = fresh();
    openFileKek(path);
    chownSync(path, 65534, 65534);
    assert.throws(() => openFileKek(path), invalid('broker.kek.owner'));
  });

  it('leaves no temporary copy of the key behind', () => {
    const path = fresh();
    openFileKek(path);
    assert.equal(readFileSync(path).length, 32);
    const siblings = readdirSync(join(path, '..')).sort();
    assert.deepEqual(siblings, ['kek']);
  });
});

describe('AES-256-GCM KEK', () => {
  const aad = new Uint8Array([1, 2, 3]);

  it('a wrong KEK cannot decrypt: typed error, no bytes', async () => {
    const a = new AesGcmKek(randomBytes(32));
    const b = new AesGcmKek(randomBytes(32));
    assert.notEqual(a.id, b.id);
    const ct = await a.encrypt(new Uint8Array(32).fill(7), aad);
    await assert.rejects(b.decrypt(ct, aad), invalid('broker.kek.unwrap_failed'));
  });

  it('a flipped ciphertext, tag or IV bit, another AAD, or a truncated blob does not decrypt', async () => {
    const k = new AesGcmKek(randomBytes(32));
    const ct = await k.encrypt(new Uint8Array(32).fill(7), aad);
    for (const at of [1, 13, 20, ct.length - 1]) {
      const bad = Uint8Array.from(ct);
      bad[at]! ^= 1;
      await assert.rejects(k.decrypt(bad, aad), invalid('broker.kek.unwrap_failed'));
    }
    await assert.rejects(k.decrypt(ct, new Uint8Array([1, 2, 4])), invalid('broker.kek.unwrap_failed'));
    await assert.rejects(k.decrypt(ct.subarray(0, 20), aad), invalid('broker.kek.unwrap_failed'));
    await assert.rejects(
      k.decrypt(Uint8Array.of(2, ...ct.subarray(1)), aad),
      invalid('broker.kek.unwrap_failed'),
    );
  });

  it('uses a fresh IV per encryption', async () => {
    const k = new AesGcmKek(randomBytes(32));
    const p = new Uint8Array(32);
    assert.notDeepEqual(await k.encrypt(p, aad), await k.encrypt(p, aad));
  });

  it('refuses a KEK that is not 32 bytes', () => {
    assert.throws(() => new AesGcmKek(randomBytes(16)), invalid('broker.kek.size'));
  });
});

describe('sealing keys at rest', () => {
  it('round-trip under the KEK, bound to instance id and version', async () => {
    const kek = new AesGcmKek(randomBytes(32));
    const { key, record } = await createSealingKey(kek, 'inst-a', 1, 5);
    assert.equal(key.length, 32);
    assert.deepEqual(await openSealingKey(kek, record), key);
    await assert.rejects(
      openSealingKey(kek, { ...record, instanceId: 'inst-b' }),
      invalid('broker.kek.unwrap_failed'),
    );
    await assert.rejects(openSealingKey(kek, { ...record, version: 2 }), invalid('broker.kek.unwrap_failed'));
  });

  it('name the KEK that wrapped them, and refuse another', async () => {
    const kek = new AesGcmKek(randomBytes(32));
    const { record } = await createSealingKey(kek, 'inst-a', 1, 5);
    await assert.rejects(
      openSealingKey(new AesGcmKek(randomBytes(32)), record),
      invalid('broker.kek.mismatch'),
    );
  });

  it('use an unambiguous AAD', () => {
    assert.notDeepEqual(sealingKeyAad('ab', 1), sealingKeyAad('a', 1));
    assert.notDeepEqual(sealingKeyAad('a', 1), sealingKeyAad('a', 256));
  });
});
