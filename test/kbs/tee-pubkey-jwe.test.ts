import assert from 'node:assert/strict';
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { flattenedDecrypt } from 'jose';
import { sealToTeeKey } from '../../src/kbs/jwe.js';
import { parseTeePubkey } from '../../src/kbs/tee-pubkey.js';
import { unwrapSecret } from '../../src/native/jwe-ecdh-es.js';
import { jweToAesGcm } from '../../src/proxy/backends/kbs/backend.js';
import { onlyTyped, throwsCode } from '../helpers/assert-error.js';

type Kind = 'P-256' | 'P-384' | 'P-521' | 'RSA';

function keyPair(kind: Kind, bits = 2048): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return new Promise((resolve, reject) => {
    const cb = (e: Error | null, publicKey: KeyObject, privateKey: KeyObject) =>
      e ? reject(e) : resolve({ publicKey, privateKey });
    if (kind === 'RSA') generateKeyPair('rsa', { modulusLength: bits }, cb);
    else generateKeyPair('ec', { namedCurve: kind }, cb);
  });
}

async function jwkOf(kind: Kind, bits?: number) {
  const kp = await keyPair(kind, bits);
  const j = kp.publicKey.export({ format: 'jwk' }) as Record<string, string>;
  const jwk =
    kind === 'RSA'
      ? { kty: 'RSA', alg: 'RSA-OAEP-256', n: j.n, e: j.e }
      : { kty: 'EC', crv: kind, alg: 'ECDH-ES+A256KW', x: j.x, y: j.y };
  return { ...kp, jwk };
}

const INVALID = 'ERR_INVALID_ARGUMENT';

describe('tee-pubkey', () => {
  for (const kind of ['P-256', 'P-384', 'P-521', 'RSA'] as const) {
    it(`accepts ${kind} and keeps only the kbs_types members`, async () => {
      const { jwk } = await jwkOf(kind);
      const t = parseTeePubkey({ ...jwk, kid: 'extra', use: 'enc' });
      assert.deepEqual(t.jwk, jwk);
      assert.equal(t.point !== undefined, kind !== 'RSA');
    });
  }

  it('refuses wrong curves, wrong algorithms and malformed keys, each with its reason', async () => {
    const p256 = (await jwkOf('P-256')).jwk;
    throwsCode(() => parseTeePubkey({ ...p256, crv: 'secp256k1' }), INVALID, 'kbs.tee_pubkey.curve');
    throwsCode(() => parseTeePubkey({ ...p256, crv: 'P-384' }), INVALID, 'kbs.tee_pubkey.coordinates');
    throwsCode(() => parseTeePubkey({ ...p256, alg: 'ECDH-ES' }), INVALID, 'kbs.tee_pubkey.alg');
    throwsCode(() => parseTeePubkey({ ...p256, alg: undefined }), INVALID, 'kbs.tee_pubkey.alg');
    throwsCode(
      () => parseTeePubkey({ ...p256, x: `${p256.x}=` }),
      'ERR_MALFORMED',
      'kbs.tee_pubkey.encoding',
    );
    // A point not on P-256 (the invalid-curve attack): y off by one.
    const y = Buffer.from(p256.y!, 'base64url');
    y[31] = y[31]! ^ 1;
    throwsCode(
      () => parseTeePubkey({ ...p256, y: y.toString('base64url') }),
      INVALID,
      'kbs.tee_pubkey.point',
    );
    throwsCode(() => parseTeePubkey({ ...p256, kty: 'OKP' }), INVALID, 'kbs.tee_pubkey.kty');
    throwsCode(() => parseTeePubkey('jwk'), INVALID, 'kbs.tee_pubkey.format');
    const rsa = (await jwkOf('RSA')).jwk;
    throwsCode(() => parseTeePubkey({ ...rsa, alg: 'RSA1_5' }), 'ERR_NOT_SUPPORTED', 'kbs.tee_pubkey.alg');
    throwsCode(() => parseTeePubkey({ ...rsa, alg: 'RSA-OAEP' }), INVALID, 'kbs.tee_pubkey.alg');
    throwsCode(() => parseTeePubkey({ ...rsa, e: 'AAE' }), INVALID, 'kbs.tee_pubkey.exponent');
    throwsCode(() => parseTeePubkey({ ...rsa, e: 'Ag' }), INVALID, 'kbs.tee_pubkey.exponent');
    const small = (await jwkOf('RSA', 1024)).jwk;
    throwsCode(() => parseTeePubkey(small), INVALID, 'kbs.tee_pubkey.modulus');
    const padded = Buffer.concat([Buffer.alloc(1), Buffer.from(rsa.n!, 'base64url')]).toString('base64url');
    throwsCode(() => parseTeePubkey({ ...rsa, n: padded }), INVALID, 'kbs.tee_pubkey.modulus');
  });

  for (const kind of ['P-256', 'P-384', 'P-521'] as const) {
    it(`${kind}: keeps the point as 04 || x || y; refuses a point off the curve or a coordinate >= p`, async () => {
      const { jwk } = await jwkOf(kind);
      const t = parseTeePubkey(jwk);
      const x = Buffer.from(jwk.x!, 'base64url');
      const y = Buffer.from(jwk.y!, 'base64url');
      assert.deepEqual(t.uncompressed, Buffer.concat([Buffer.from([4]), x, y]));
      assert.equal(t.key, undefined);
      const offCurve = Buffer.from(y);
      offCurve[offCurve.length - 1]! ^= 1;
      throwsCode(
        () => parseTeePubkey({ ...jwk, y: offCurve.toString('base64url') }),
        INVALID,
        'kbs.tee_pubkey.point',
      );
      // x = 2^bits - 1 (all ones, P-521: its 521 bits) is not a field element: at least p.
      const big = Buffer.alloc(x.length, 0xff);
      if (kind === 'P-521') big[0] = 0x01;
      throwsCode(
        () => parseTeePubkey({ ...jwk, x: big.toString('base64url') }),
        INVALID,
        'kbs.tee_pubkey.point',
      );
      // (0, 0) is not on the curve (the point at infinity has no uncompressed form).
      const zero = Buffer.alloc(x.length).toString('base64url');
      throwsCode(() => parseTeePubkey({ ...jwk, x: zero, y: zero }), INVALID, 'kbs.tee_pubkey.point');
    });
  }

  it('a kty, crv or alg that is an object without a prototype is a typed refusal (fuzz seed 880988390)', () => {
    const odd = Object.create(null) as object;
    const ec = { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: 'AA', y: 'AA' };
    throwsCode(() => parseTeePubkey({ ...ec, kty: odd }), 'ERR_INVALID_ARGUMENT', 'kbs.tee_pubkey.kty');
    onlyTyped(() => parseTeePubkey({ ...ec, crv: odd }));
    onlyTyped(() => parseTeePubkey({ ...ec, alg: odd }));
    onlyTyped(() => parseTeePubkey({ kty: 'RSA', alg: odd, n: 'AQAB', e: 'AQAB' }));
  });

  it('never throws anything but an AttestationError on hostile input', () => {
    fc.assert(
      fc.property(
        fc.record({
          kty: fc.constantFrom('EC', 'RSA', 'oct', 1),
          crv: fc.constantFrom('P-256', 'P-384', 'P-521', 'X25519', null),
          alg: fc.constantFrom('ECDH-ES+A256KW', 'RSA-OAEP-256', 'RSA1_5', 7),
          x: fc.oneof(fc.string(), fc.base64String(), fc.constant(undefined)),
          y: fc.oneof(fc.string(), fc.base64String(), fc.constant(undefined)),
          n: fc.oneof(fc.string(), fc.base64String()),
          e: fc.oneof(fc.string(), fc.constant('AQAB')),
        }),
        (v) => onlyTyped(() => parseTeePubkey(v)),
      ),
      { numRuns: 500 },
    );
  });
});

describe('resource JWE', () => {
  for (const kind of ['P-256', 'P-384', 'P-521', 'RSA'] as const) {
    it(`${kind}: jose opens it; members and header are exactly Trustee's`, async () => {
      const { privateKey, jwk } = await jwkOf(kind);
      const plaintext = new Uint8Array(Buffer.from(`secret for ${kind}`));
      const jwe = await sealToTeeKey(parseTeePubkey(jwk), plaintext);
      assert.deepEqual(Object.keys(jwe), ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag']);
      const header = Buffer.from(jwe.protected, 'base64url').toString();
      if (kind === 'RSA') {
        assert.equal(header, '{"alg":"RSA-OAEP-256","enc":"A256GCM"}');
      } else {
        // kbs_types ProtectedHeader: alg, enc, then the flattened sorted map: epk {crv, kty, x, y}.
        assert.match(
          header,
          new RegExp(
            `^\\{"alg":"ECDH-ES\\+A256KW","enc":"A256GCM","epk":\\{"crv":"${kind}","kty":"EC","x":"[A-Za-z0-9_-]+","y":"[A-Za-z0-9_-]+"\\}\\}$`,
          ),
        );
        assert.equal(Buffer.from(jwe.encrypted_key, 'base64url').length, 40);
      }
      assert.equal(Buffer.from(jwe.iv, 'base64url').length, 12);
      assert.equal(Buffer.from(jwe.tag, 'base64url').length, 16);
      const { plaintext: out } = await flattenedDecrypt(jwe, privateKey);
      assert.deepEqual(out, plaintext);
      // A flipped ciphertext bit fails authentication.
      const ct = Buffer.from(jwe.ciphertext, 'base64url');
      ct[0] = ct[0]! ^ 1;
      await assert.rejects(flattenedDecrypt({ ...jwe, ciphertext: ct.toString('base64url') }, privateKey));
    });
  }

  it('refuses to seal to a point off the curve even when it was not parsed (the ECDH checks it again)', async () => {
    const { jwk } = await jwkOf('P-256');
    const t = parseTeePubkey(jwk);
    if (!t.point) throw new Error('expected an EC key');
    const forged = Buffer.from(t.uncompressed);
    forged[64] = forged[64]! ^ 1;
    await assert.rejects(sealToTeeKey({ ...t, uncompressed: forged }, new Uint8Array(32)));
  });

  it('P-521: the SVSM-side unwrap (src/native) opens it after the proxy mapping', async () => {
    const { privateKey, jwk } = await jwkOf('P-521');
    const secret = new Uint8Array(32).fill(0x7e);
    const jwe = await sealToTeeKey(parseTeePubkey(jwk), secret);
    assert.deepEqual(unwrapSecret(privateKey, jweToAesGcm(jwe)), secret);
  });
});
