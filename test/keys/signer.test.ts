import assert from 'node:assert/strict';
import { verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { keyObjectSigner } from '../../src/keys/signer.js';
import { signBytesAsync } from '../../src/native/broker-signature.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';

describe('keys/signer: a KeyObject signer', () => {
  for (const [curve, hash, size] of [
    ['P-256', 'sha256', 64],
    ['P-384', 'sha384', 96],
  ] as const) {
    it(`${curve}: signs on and off the event loop alike (IEEE P1363, verifies, only for its data)`, async () => {
      const { privateKey, publicKey } = newKeyPairSync('ec', { namedCurve: curve });
      const signer = keyObjectSigner(privateKey);
      const data = Buffer.from('to be signed');
      assert.ok(signer.signAsync);
      for (const sig of [signer.sign(hash, data), await signer.signAsync(hash, data)]) {
        assert.equal(sig.length, size);
        assert.ok(verify(hash, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig));
        assert.ok(!verify(hash, Buffer.from('other'), { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig));
      }
    });
  }

  it("signBytesAsync uses the signer's asynchronous signing, or its synchronous one when it has none", async () => {
    const { privateKey, publicKey } = newKeyPairSync('ec', { namedCurve: 'P-384' });
    const signer = keyObjectSigner(privateKey);
    const calls: string[] = [];
    const data = Buffer.from('response');
    const withAsync = {
      ...signer,
      signAsync: (h: 'sha384', d: Uint8Array) => {
        calls.push('async');
        return signer.signAsync!(h, d);
      },
    };
    const syncOnly = {
      ...signer,
      signAsync: undefined,
      sign: (h: 'sha384', d: Uint8Array) => {
        calls.push('sync');
        return signer.sign(h, d);
      },
    };
    for (const s of [withAsync, syncOnly]) {
      const sig = await signBytesAsync(s, data);
      assert.ok(verify('sha384', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig));
    }
    assert.deepEqual(calls, ['async', 'sync']);
  });
});
