import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { CompactEncrypt, compactDecrypt, FlattenedEncrypt, flattenedDecrypt } from 'jose';
import {
  aesKeyUnwrap,
  aesKeyWrap,
  concatKdfSha256,
  fromCompactJwe,
  generateAad,
  type JweSealed,
  protectedHeaderJson,
  toCompactJwe,
  toFlattenedJwe,
  unwrapSecret,
  wrapSecret,
} from '../../../src/native/jwe-ecdh-es.js';
import { generateP521KeyPair, p521PointOf, p521PublicKeyFromPoint } from '../../../src/native/p521.js';
import { newKeyPairSync } from '../../../src/util/key-pair.js';
import { throwsCode } from '../../helpers/assert-error.js';

describe('JWE ECDH-ES+A256KW / A256GCM primitives', () => {
  it('AES key wrap matches RFC 3394 §4.6 (256-bit KEK, 256-bit key) and unwraps', () => {
    const kek = Buffer.from('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F', 'hex');
    const key = Buffer.from('00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F', 'hex');
    const wrapped = aesKeyWrap(kek, key);
    assert.equal(
      wrapped.toString('hex'),
      '28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21',
    );
    assert.deepEqual(aesKeyUnwrap(kek, wrapped), key);
  });

  it('Concat KDF is one SHA-256 round over counter, Z, AlgorithmID, empty PartyU/V, keydatalen', () => {
    const z = Buffer.alloc(66, 0x5a);
    const alg = Buffer.from('ECDH-ES+A256KW');
    const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
    // Built independently of the implementation, from RFC 7518 §4.6.2 / NIST SP 800-56A §5.8.1.
    const expected = createHash('sha256')
      .update(Buffer.concat([u32(1), z, u32(14), alg, u32(0), u32(0), u32(256)]))
      .digest();
    assert.deepEqual(concatKdfSha256(z, 'ECDH-ES+A256KW', 256), expected);
  });

  it('the protected header is byte-identical to kbs_types ProtectedHeader serialization', () => {
    const epk = { x: new Uint8Array(66).fill(1), y: new Uint8Array(66).fill(2) };
    const x = Buffer.from(epk.x).toString('base64url');
    const y = Buffer.from(epk.y).toString('base64url');
    // serde: struct fields alg, enc, then the flattened serde_json::Map (BTreeMap: sorted keys).
    const expected = `{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-521","kty":"EC","x":"${x}","y":"${y}"}}`;
    assert.equal(protectedHeaderJson(epk), expected);
    assert.equal(
      Buffer.from(generateAad(epk)).toString('ascii'),
      Buffer.from(expected).toString('base64url'),
    );
  });

  it('wrap then unwrap round-trips; a different private key fails with a typed error', async () => {
    const guest = await generateP521KeyPair();
    const other = await generateP521KeyPair();
    const secret = new Uint8Array(32).map((_, i) => i);
    const sealed = await wrapSecret(p521PointOf(guest.publicKey), secret);
    assert.equal(sealed.decryption.wrappedCek.length, 40);
    assert.equal(sealed.decryption.epk.x.length, 66);
    assert.deepEqual(unwrapSecret(guest.privateKey, sealed), secret);
    throwsCode(() => unwrapSecret(other.privateKey, sealed), 'ERR_SIGNATURE_INVALID', 'jwe.cek_unwrap');
  });

  it('rejects an epk that is not on the curve', async () => {
    const guest = await generateP521KeyPair();
    const sealed = await wrapSecret(guest.publicKey, new Uint8Array([1, 2, 3]));
    const y = Uint8Array.from(sealed.decryption.epk.y);
    y[65]! ^= 1;
    const bad: JweSealed = {
      ...sealed,
      decryption: { ...sealed.decryption, epk: { x: sealed.decryption.epk.x, y } },
    };
    throwsCode(() => unwrapSecret(guest.privateKey, bad), 'ERR_MALFORMED', 'crypto.p521.point');
    throwsCode(
      () => p521PublicKeyFromPoint({ x: new Uint8Array(65), y }),
      'ERR_MALFORMED',
      'crypto.p521.point',
    );
  });
});

describe('JWE interop with jose', () => {
  it('a JWE we produce decrypts with jose flattenedDecrypt and compactDecrypt', async () => {
    const guest = await generateP521KeyPair();
    const secret = new TextEncoder().encode('vTPM sealing secret: 0123456789abcdef');
    const sealed = await wrapSecret(p521PointOf(guest.publicKey), secret);
    const flat = await flattenedDecrypt(toFlattenedJwe(sealed), guest.privateKey);
    assert.deepEqual(new Uint8Array(flat.plaintext), secret);
    assert.equal(flat.protectedHeader?.alg, 'ECDH-ES+A256KW');
    assert.equal(flat.protectedHeader?.enc, 'A256GCM');
    const compact = await compactDecrypt(toCompactJwe(sealed), guest.privateKey);
    assert.deepEqual(new Uint8Array(compact.plaintext), secret);
  });

  it('a JWE jose produces (ECDH-ES+A256KW, A256GCM, P-521) unwraps with ours', async () => {
    const guest = await generateP521KeyPair();
    const secret = new Uint8Array(64).map((_, i) => (i * 7) & 0xff);
    const compact = await new CompactEncrypt(secret)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(guest.publicKey);
    const sealed = fromCompactJwe(compact);
    assert.deepEqual(unwrapSecret(guest.privateKey, sealed), secret);

    const flat = await new FlattenedEncrypt(secret)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(guest.publicKey);
    const fromFlat = fromCompactJwe(
      [flat.protected, flat.encrypted_key, flat.iv, flat.ciphertext, flat.tag].join('.'),
    );
    assert.deepEqual(unwrapSecret(guest.privateKey, fromFlat), secret);
  });

  it('refuses JWEs with another algorithm or curve', async () => {
    const p256 = newKeyPairSync('ec', { namedCurve: 'P-256' });
    const compact = await new CompactEncrypt(new Uint8Array([1]))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(p256.publicKey);
    throwsCode(() => fromCompactJwe(compact), 'ERR_MALFORMED', 'jwe.header');
    const guest = await generateP521KeyPair();
    const a128 = await new CompactEncrypt(new Uint8Array([1]))
      .setProtectedHeader({ alg: 'ECDH-ES+A128KW', enc: 'A256GCM' })
      .encrypt(guest.publicKey);
    throwsCode(() => fromCompactJwe(a128), 'ERR_MALFORMED', 'jwe.header');
  });
});

describe('JWE tamper resistance', () => {
  it('every flipped byte of wrapped_cek, iv, tag, ciphertext and aad gives a typed error, never plaintext', async () => {
    const guest = await generateP521KeyPair();
    const secret = new Uint8Array(48).fill(0x42);
    const sealed = await wrapSecret(guest.publicKey, secret);
    const fields = ['wrappedCek', 'iv', 'tag', 'aad'] as const;
    let attempts = 0;
    for (const f of fields) {
      const orig = sealed.decryption[f];
      for (let i = 0; i < orig.length; i++) {
        const copy = Uint8Array.from(orig);
        copy[i]! ^= 1 << (i % 8);
        const t: JweSealed = { ...sealed, decryption: { ...sealed.decryption, [f]: copy } };
        const expectedReason = f === 'wrappedCek' ? 'jwe.cek_unwrap' : 'jwe.decrypt';
        throwsCode(() => unwrapSecret(guest.privateKey, t), 'ERR_SIGNATURE_INVALID', expectedReason);
        attempts++;
      }
    }
    for (let i = 0; i < sealed.ciphertext.length; i++) {
      const ct = Uint8Array.from(sealed.ciphertext);
      ct[i]! ^= 0x80;
      throwsCode(
        () => unwrapSecret(guest.privateKey, { ...sealed, ciphertext: ct }),
        'ERR_SIGNATURE_INVALID',
        'jwe.decrypt',
      );
      attempts++;
    }
    assert.equal(attempts, 40 + 12 + 16 + sealed.decryption.aad.length + 48);
    // Truncations are typed errors too.
    throwsCode(
      () => unwrapSecret(guest.privateKey, { ...sealed, ciphertext: sealed.ciphertext.subarray(1) }),
      'ERR_SIGNATURE_INVALID',
      'jwe.decrypt',
    );
    throwsCode(
      () =>
        unwrapSecret(guest.privateKey, {
          ...sealed,
          decryption: { ...sealed.decryption, tag: sealed.decryption.tag.subarray(0, 12) },
        }),
      'ERR_MALFORMED',
      'jwe.length',
    );
  });
});
