import assert from 'node:assert/strict';

import { test } from 'node:test';
import { agreementOnThisThread } from '../../src/native/ecdh-threads.js';
import { EphemeralKeyPool } from '../../src/native/ephemeral-pool.js';
import { unwrapSecret, wrapSecret } from '../../src/native/jwe-ecdh-es.js';
import { toHex } from '../../src/util/bytes.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';

test('the pool never hands out the same ephemeral key twice, and works from empty', async () => {
  const pool = new EphemeralKeyPool(4);
  const seen = new Set<string>();
  // More takes than the pool holds, some at once (empty pool), some after refills.
  for (let round = 0; round < 3; round++) {
    const keys = await Promise.all(Array.from({ length: 6 }, () => pool.take()));
    for (const k of keys) {
      const id = toHex(k.point.x) + toHex(k.point.y);
      assert.equal(seen.has(id), false, 'an ephemeral key was handed out twice');
      seen.add(id);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(seen.size, 18);
});

test('pooled ephemeral keys seal to the guest: a new epk each time, and the guest unwraps', async () => {
  const guest = newKeyPairSync('ec', { namedCurve: 'P-521' });
  const agree = agreementOnThisThread(new EphemeralKeyPool(1));
  const epks = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const sealed = await wrapSecret(guest.publicKey, new Uint8Array([i, 2, 3]), agree);
    epks.add(toHex(sealed.decryption.epk.x) + toHex(sealed.decryption.epk.y));
    assert.deepEqual(unwrapSecret(guest.privateKey, sealed), new Uint8Array([i, 2, 3]));
  }
  assert.equal(epks.size, 3, 'an ephemeral key sealed twice');
});

test('wrapSecret still refuses a recipient key that is not P-521', async () => {
  const p384 = newKeyPairSync('ec', { namedCurve: 'P-384' });
  await assert.rejects(wrapSecret(p384.publicKey, new Uint8Array([1])), { reason: 'crypto.p521.key_type' });
});

test('unwrapSecret refuses a private key that is not P-521 (or not private) before any ECDH', async () => {
  const guest = newKeyPairSync('ec', { namedCurve: 'P-521' });
  const sealed = await wrapSecret(guest.publicKey, new Uint8Array([1]));
  const p384 = newKeyPairSync('ec', { namedCurve: 'P-384' });
  assert.throws(() => unwrapSecret(p384.privateKey, sealed), { reason: 'crypto.p521.key_type' });
  assert.throws(() => unwrapSecret(guest.publicKey, sealed), { reason: 'crypto.p521.key_type' });
  assert.deepEqual(unwrapSecret(guest.privateKey, sealed), new Uint8Array([1]));
});
