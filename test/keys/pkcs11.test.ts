/**
 * Keys in a real SoftHSM2 token (src/keys): ECDSA P-256/P-384 signatures from CKM_ECDSA verify with
 * node:crypto, the KEK's CKM_AES_GCM output opens with Node's AES-256-GCM under the same key value, a wrong
 * AAD or a changed byte is refused, and a wrong PIN, a missing object or a PIN on the command line are typed
 * errors with stable reasons. The PIN never appears in an error message.
 */
import assert from 'node:assert/strict';
import { createDecipheriv, verify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import {
  formatPkcs11Uri,
  type KeyProvider,
  keyProviderFor,
  parsePkcs11Uri,
  pkcs11Keys,
} from '../../src/keys/index.js';
import { tokenSession } from '../../src/keys/pkcs11-module.js';
import { caughtError, rejectsCode, throwsCode } from '../helpers/assert-error.js';
import { startTestToken, type TestToken } from '../helpers/softhsm.js';

let token: TestToken;
before(() => {
  token = startTestToken();
  token.addToken('second', '9999-right');
  token.addToken('third', '9999-right');
});
after(() => token?.stop());

describe('pkcs11: URIs (RFC 7512)', () => {
  it('reads token, object, id, module-path and pin-source, percent-decoded', () => {
    const u = parsePkcs11Uri(
      'pkcs11:token=my%20hsm;object=kek;id=%01%ff?module-path=/usr/lib/x.so&pin-source=file:/etc/pin',
    );
    assert.equal(u.token, 'my hsm');
    assert.equal(u.object, 'kek');
    assert.deepEqual([...(u.id ?? [])], [1, 255]);
    assert.equal(u.modulePath, '/usr/lib/x.so');
    assert.equal(u.pinSource, '/etc/pin');
    assert.deepEqual(parsePkcs11Uri(formatPkcs11Uri(u)), u);
  });

  it('refuses pin-value, unknown and repeated attributes, and a URI naming no object', () => {
    for (const bad of [
      'pkcs11:token=t;object=k?pin-value=1234',
      'pkcs11:token=t;object=k;colour=red',
      'pkcs11:token=t;token=u;object=k',
      'pkcs11:token=t',
      'pkcs11:token=t;object=k%zz',
      'file:/x',
    ]) {
      const e = caughtError(() => parsePkcs11Uri(bad));
      assert.equal(e.reason, 'keys.pkcs11.uri', bad);
      assert.ok(!e.message.includes('1234'), 'the PIN is not echoed');
    }
  });
});

describe('signing keys in SoftHSM2 (CKM_ECDSA)', () => {
  for (const [curve, hash] of [
    ['P-256', 'sha256'],
    ['P-384', 'sha384'],
  ] as const) {
    it(`${curve}: a generated key signs; the IEEE P1363 signature verifies with node:crypto`, () => {
      const signer = pkcs11Keys.signer(token.uri(`sig-${curve}`), curve);
      assert.equal(signer.curve, curve);
      assert.match(signer.id, /^pkcs11:token=vouchsafe-test;object=sig-P-/);
      const data = Buffer.from('to be signed');
      const sig = signer.sign(hash, data);
      assert.equal(sig.length, curve === 'P-256' ? 64 : 96);
      assert.ok(verify(hash, data, { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, sig));
      assert.ok(
        !verify(hash, Buffer.from('other'), { key: signer.publicKey, dsaEncoding: 'ieee-p1363' }, sig),
      );
      // No asynchronous signing: two operations must not interleave on the token's session.
      assert.equal(signer.signAsync, undefined);
      // Opened again by URI (no create): the same key.
      const again = pkcs11Keys.signer(token.uri(`sig-${curve}`));
      assert.ok(again.publicKey.equals(signer.publicKey));
    });
  }

  it('the private half is sensitive and not extractable', () => {
    pkcs11Keys.signer(token.uri('sig-attrs'), 'P-256');
    const s = tokenSession(parsePkcs11Uri(token.uri('sig-attrs')));
    s.p11.C_FindObjectsInit(s.session, [
      { type: s.lib.CKA_CLASS, value: s.lib.CKO_PRIVATE_KEY },
      { type: s.lib.CKA_LABEL, value: 'sig-attrs' },
    ]);
    const [h] = s.p11.C_FindObjects(s.session, 1);
    s.p11.C_FindObjectsFinal(s.session);
    const [sens, extr] = s.p11.C_GetAttributeValue(s.session, h!, [
      { type: s.lib.CKA_SENSITIVE },
      { type: s.lib.CKA_EXTRACTABLE },
    ]);
    assert.equal((sens!.value as Buffer)[0], 1);
    assert.equal((extr!.value as Buffer)[0], 0);
  });

  it('a missing object is keys.pkcs11.object_missing; a KEK URI is not a signing key', () => {
    throwsCode(
      () => pkcs11Keys.signer(token.uri('no-such-key')),
      ErrorCode.InvalidArgument,
      'keys.pkcs11.object_missing',
    );
    throwsCode(
      () => pkcs11Keys.signer(token.uri('k', ';type=secret-key')),
      ErrorCode.InvalidArgument,
      'keys.pkcs11.uri',
    );
  });

  it('an unknown token is keys.pkcs11.token_missing; a module that does not load is keys.pkcs11.module', () => {
    throwsCode(
      () => pkcs11Keys.signer(token.uri('x').replace('token=vouchsafe-test', 'token=absent')),
      ErrorCode.InvalidArgument,
      'keys.pkcs11.token_missing',
    );
    throwsCode(
      () =>
        pkcs11Keys.signer(`pkcs11:object=x?module-path=${token.dir}/nothing.so&pin-source=${token.pinFile}`),
      ErrorCode.InvalidArgument,
      'keys.pkcs11.module',
    );
  });
});

describe('the KEK in SoftHSM2 (CKM_AES_GCM)', () => {
  it('encrypts and decrypts with AAD; a wrong AAD, another byte or another format is broker.kek.unwrap_failed', async () => {
    const kek = pkcs11Keys.kek(token.uri('kek'), true);
    assert.match(kek.id, /^pkcs11:token=vouchsafe-test;object=kek;id=.*;type=secret-key$/);
    const secret = new Uint8Array(32).fill(7);
    const aad = Buffer.from('instance 42');
    const wrapped = await kek.encrypt(secret, aad);
    assert.equal(wrapped[0], 0x02);
    assert.equal(wrapped.length, 1 + 12 + 32 + 16);
    assert.ok(!Buffer.from(wrapped).includes(Buffer.from(secret)));
    assert.deepEqual(await kek.decrypt(wrapped, aad), secret);
    // Two encryptions never share an IV.
    const again = await kek.encrypt(secret, aad);
    assert.notDeepEqual(again.subarray(1, 13), wrapped.subarray(1, 13));
    await rejectsCode(
      kek.decrypt(wrapped, Buffer.from('instance 43')),
      ErrorCode.InvalidArgument,
      'broker.kek.unwrap_failed',
    );
    const flipped = Uint8Array.from(wrapped);
    flipped[20]! ^= 1;
    await rejectsCode(kek.decrypt(flipped, aad), ErrorCode.InvalidArgument, 'broker.kek.unwrap_failed');
    const fileFormat = Uint8Array.from(wrapped);
    fileFormat[0] = 0x01;
    await rejectsCode(kek.decrypt(fileFormat, aad), ErrorCode.InvalidArgument, 'broker.kek.unwrap_failed');
  });

  it('is standard AES-256-GCM: a key of known value in the token, its output opens with node:crypto', async () => {
    const s = tokenSession(parsePkcs11Uri(token.uri('kek-known')));
    const value = Buffer.alloc(32, 0x5a);
    s.p11.C_CreateObject(s.session, [
      { type: s.lib.CKA_CLASS, value: s.lib.CKO_SECRET_KEY },
      { type: s.lib.CKA_KEY_TYPE, value: s.lib.CKK_AES },
      { type: s.lib.CKA_TOKEN, value: false },
      { type: s.lib.CKA_ENCRYPT, value: true },
      { type: s.lib.CKA_DECRYPT, value: true },
      { type: s.lib.CKA_LABEL, value: 'kek-known' },
      { type: s.lib.CKA_VALUE, value },
    ]);
    const kek = pkcs11Keys.kek(token.uri('kek-known'));
    const aad = Buffer.from('aad');
    const wrapped = await kek.encrypt(Buffer.from('hello sealing key'), aad);
    const d = createDecipheriv('aes-256-gcm', value, wrapped.subarray(1, 13));
    d.setAAD(aad);
    d.setAuthTag(wrapped.subarray(wrapped.length - 16));
    const pt = Buffer.concat([d.update(wrapped.subarray(13, wrapped.length - 16)), d.final()]);
    assert.equal(pt.toString(), 'hello sealing key');
  });

  it('a file path is the file provider; a pkcs11: URI the token', () => {
    const p: KeyProvider = keyProviderFor(token.uri('kek'));
    assert.equal(p.kind, 'pkcs11');
    assert.equal(keyProviderFor(`${token.dir}/kek`).kind, 'file');
  });
});

describe('PIN handling', () => {
  it('a wrong PIN is keys.pkcs11.pin_incorrect and the PIN is not in the message', async () => {
    // Another token: the first one's session is already logged in.
    const { writeFileSync } = await import('node:fs');
    const wrong = `${token.dir}/wrong-pin`;
    writeFileSync(wrong, '1111-wrong\n', { mode: 0o600 });
    const uri = `pkcs11:token=second;object=k?module-path=${token.modulePath}&pin-source=${wrong}`;
    const e = caughtError(() => pkcs11Keys.signer(uri, 'P-256'));
    assert.equal(e.code, ErrorCode.InvalidArgument);
    assert.equal(e.reason, 'keys.pkcs11.pin_incorrect');
    assert.ok(!e.message.includes('1111'));
  });

  it('no pin-source and no VOUCHSAFE_PKCS11_PIN is keys.pkcs11.pin_missing; a PIN file others can read is refused', async () => {
    const saved = process.env.VOUCHSAFE_PKCS11_PIN;
    delete process.env.VOUCHSAFE_PKCS11_PIN;
    try {
      throwsCode(
        () => pkcs11Keys.signer(`pkcs11:token=third;object=k?module-path=${token.modulePath}`),
        ErrorCode.InvalidArgument,
        'keys.pkcs11.pin_missing',
      );
      const { writeFileSync } = await import('node:fs');
      const open = `${token.dir}/open-pin`;
      writeFileSync(open, '9999-right\n', { mode: 0o644 });
      throwsCode(
        () =>
          pkcs11Keys.signer(`pkcs11:token=third;object=k?module-path=${token.modulePath}&pin-source=${open}`),
        ErrorCode.InvalidArgument,
        'keys.pkcs11.pin_file.permissions',
      );
      // From the environment: logs in.
      process.env.VOUCHSAFE_PKCS11_PIN = '9999-right';
      const k = pkcs11Keys.signer(`pkcs11:token=third;object=k?module-path=${token.modulePath}`, 'P-384');
      assert.equal(k.curve, 'P-384');
    } finally {
      if (saved === undefined) delete process.env.VOUCHSAFE_PKCS11_PIN;
      else process.env.VOUCHSAFE_PKCS11_PIN = saved;
    }
  });
});
