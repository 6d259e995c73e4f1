import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { test } from 'node:test';
import { newKeyPair, newKeyPairSync } from '../../src/util/key-pair.js';

const data = Buffer.from('vouchsafe');

test('newKeyPairSync gives a matching pair of the type and curve asked for', () => {
  for (const curve of ['P-256', 'P-384', 'P-521']) {
    const { privateKey, publicKey } = newKeyPairSync('ec', { namedCurve: curve });
    assert.equal(privateKey.type, 'private');
    assert.equal(publicKey.type, 'public');
    assert.equal(
      publicKey.asymmetricKeyDetails?.namedCurve,
      { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[curve],
    );
    assert.ok(verify('sha256', data, publicKey, sign('sha256', data, privateKey)));
    assert.equal(publicKey.export({ format: 'jwk' }).crv, curve);
  }
  const rsa = newKeyPairSync('rsa', { modulusLength: 2048 });
  assert.equal(rsa.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  assert.ok(verify('sha256', data, rsa.publicKey, sign('sha256', data, rsa.privateKey)));
  const ed = newKeyPairSync('ed25519');
  assert.equal(ed.publicKey.asymmetricKeyType, 'ed25519');
  assert.ok(verify(null, data, ed.publicKey, sign(null, data, ed.privateKey)));
});

test('two calls give two different keys; newKeyPair gives a pair too', async () => {
  const a = newKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
  const b = newKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
  assert.notDeepEqual(a, b);
  const { privateKey, publicKey } = await newKeyPair('ec', { namedCurve: 'P-384' });
  assert.ok(verify('sha384', data, publicKey, sign('sha384', data, privateKey)));
});
