/**
 * The broker's keys in a real SoftHSM2 token, used for what they are for and checked by the ordinary
 * verifiers: a release through the proxy with the KEK and the response-signing key in the token (the guest
 * pins the broker key and verifies the signed response), a CA issuance signed in the token (node:crypto's
 * X509Certificate and `openssl verify`), an EAR token signed in the token (jose against the JWKS) whose ring
 * rotates to a key generated in the token and is recorded in the token key file by URI, never as a key.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { SignerKeyStore } from '../../src/ca/key-store.js';
import { encodeTpm2bPublic } from '../../src/formats/tpm/index.js';
import { decodeTokenKeys, encodeTokenKeys } from '../../src/kbs/token-keys.js';
import { EarTokens, type SnpEarInput, TokenKeyRing } from '../../src/kbs/tokens/index.js';
import { pkcs11Keys } from '../../src/keys/index.js';
import { identity, openssl, softEk, testCa } from '../ca/fixtures.js';
import { addProxy, startBrokerStack } from '../helpers/broker.js';
import { startTestToken, type TestToken } from '../helpers/softhsm.js';

let token: TestToken;
before(() => {
  token = startTestToken();
});
after(() => token?.stop());

describe('a release with the KEK and the response-signing key in SoftHSM2', () => {
  it('the guest boots, verifies the signed response with the pinned key; the sealing key is wrapped in the token', async () => {
    const stack = await startBrokerStack({
      broker: { kekPath: token.uri('broker-kek'), signingKeyPath: token.uri('broker-signing') },
    });
    try {
      const p = await addProxy(stack);
      const inst = await stack.register();
      const fw = stack.firmware(inst.hostData);
      // 0.2.0 with the broker's public key pinned: the guest library refuses an unsigned or wrongly signed
      // response (aproxy.signature), so a boot that succeeds verified the token's signature.
      const first = await p.boot(fw, p.statePath('vm'));
      assert.equal(first.firstBoot, true);
      const again = await p.boot(fw, p.statePath('vm'));
      assert.equal(again.firstBoot, false);
      assert.deepEqual(again.state, first.state);
      // No key files: both keys are in the token.
      assert.equal(existsSync(join(stack.b.dataDir, 'kek')), false);
      assert.equal(existsSync(join(stack.b.dataDir, 'broker-signing-key.pem')), false);
      assert.ok(stack.b.publicKey.equals(pkcs11Keys.signer(token.uri('broker-signing')).publicKey));
      const recs = await stack.b.store.listKeys(inst.id);
      assert.ok(recs.length >= 1);
      for (const r of recs) assert.match(r.kekId, /^pkcs11:token=vouchsafe-test;object=broker-kek;/);
      // The broker key served for pinning is the token's.
      const served = await stack.call('GET', '/v1/broker-key');
      assert.equal(served.status, 200);
    } finally {
      await stack.close();
    }
  });
});

describe('a CA issuance signed in SoftHSM2', () => {
  it('EK certificate and CA certificate verify with node:crypto and openssl', async () => {
    const keyStore = SignerKeyStore.open(token.uri('ca-key'), 'p384');
    const t = await testCa({ keyStore, keyType: 'p384' });
    try {
      assert.equal(existsSync(join(t.dir, 'ca-key.pem')), false, 'no key file');
      const issued = await t.ca.issueEk({
        ekPublic: encodeTpm2bPublic(softEk('ecc').pub),
        identity: identity(1),
      });
      const ca = new X509Certificate(Buffer.from(t.ca.certificate));
      const ek = new X509Certificate(Buffer.from(issued.der));
      assert.ok(ca.verify(keyStore.publicKey), 'self-signed by the token key');
      assert.ok(ek.verify(ca.publicKey), 'EK certificate signed by the token key');
      assert.ok(ek.checkIssued(ca));
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(t.dir, 'root.pem'), ca.toString());
      writeFileSync(join(t.dir, 'ek.pem'), ek.toString());
      assert.match(
        openssl(['verify', '-CAfile', join(t.dir, 'root.pem'), '-purpose', 'any', join(t.dir, 'ek.pem')]),
        /OK/,
      );
      // An RSA algorithm does not fit the token's EC key.
      await assert.rejects(
        keyStore.sign(new Uint8Array(1), 'rsa-pkcs1-sha256'),
        (e: { reason?: string }) => e.reason === 'ca.key_store.algorithm',
      );
    } finally {
      await t.cleanup();
    }
  });
});

const input = (): Omit<SnpEarInput, 'issuer' | 'verifierId' | 'issuedAt' | 'lifetimeMs'> => ({
  jti: 'grant-1',
  nonce: 'bm9uY2U=',
  identity: {
    brokerInstanceId: 'i-1',
    project: 'p',
    zone: 'z',
    instanceId: '42',
    instanceName: 'vm',
    source: 'registry',
  },
  snp: { measurement: 'aa'.repeat(48), tee: 'snp' },
  reportData: '00'.repeat(64),
  runtimeData: { nonce: 'bm9uY2U=', 'tee-pubkey': { kty: 'EC' } },
  binding: 'trustee-jcs-sha384',
  policyId: 'vouchsafe:instance-policy/i-1',
  appraisal: { measurementChecked: true, debugAllowed: false },
});

describe('EAR tokens signed in SoftHSM2', () => {
  it('an EAR token verifies with jose against the JWKS; rotation generates the next key in the token', async () => {
    let n = 0;
    const options = {
      maxTokenLifetimeMs: 60_000,
      generate: async (alg: 'ES256' | 'ES384') =>
        pkcs11Keys.signer(token.uri(`ear-${++n}`), alg === 'ES256' ? 'P-256' : 'P-384'),
    };
    const ring = await TokenKeyRing.generate({ ...options, alg: 'ES384' });
    assert.equal(ring.current.privateKey, undefined, 'the key is not in memory');
    const tokens = new EarTokens({ keys: ring, issuer: 'https://broker.test', lifetimeMs: 60_000 });
    const { token: ear } = tokens.issueSnp(input());
    const { payload, protectedHeader } = await jwtVerify(ear, createLocalJWKSet(ring.jwks()), {
      issuer: 'https://broker.test',
    });
    assert.equal(protectedHeader.alg, 'ES384');
    assert.equal(protectedHeader.kid, ring.current.kid);
    assert.equal(payload.jti, 'grant-1');
    assert.equal(tokens.verify(ear).iss, 'https://broker.test');

    const old = ring.current.kid;
    await ring.rotate();
    assert.notEqual(ring.current.kid, old);
    const second = tokens.issueSnp(input()).token;
    await jwtVerify(second, createLocalJWKSet(ring.jwks()));
    await jwtVerify(ear, createLocalJWKSet(ring.jwks()));

    // The token key file records the keys by URI (module and PIN file path; no key, no PIN) and opens again.
    const file = encodeTokenKeys(ring);
    const text = Buffer.from(file).toString();
    assert.doesNotMatch(text, /PRIVATE KEY/);
    assert.ok(!text.includes(token.pin));
    assert.match(text, /"pkcs11": "pkcs11:token=vouchsafe-test;object=ear-2;id=/);
    const back = decodeTokenKeys(file, 'test', options);
    assert.deepEqual(back.jwks(), ring.jwks());
    const third = new EarTokens({ keys: back, issuer: 'https://broker.test', lifetimeMs: 60_000 }).issueSnp(
      input(),
    ).token;
    await jwtVerify(third, createLocalJWKSet(ring.jwks()));
    assert.ok(readFileSync(token.pinFile).length > 0);
  });
});

describe('the KBS with its token keys generated in SoftHSM2', () => {
  it('the JWKS key is the token key; a rotation makes the next one in the token and is audited with its URI', async () => {
    const stack = await startBrokerStack({
      broker: { kbs: { tokenKeysPkcs11: token.uri('kbs-ear'), tokenAlg: 'ES384' } },
    });
    try {
      const first = (await stack.call('GET', '/kbs/v0/.well-known/jwks')).body.keys;
      assert.equal(first.length, 1);
      assert.equal(first[0].crv, 'P-384');
      const kbs = stack.b.kbs;
      assert.ok(kbs);
      assert.equal(kbs.keys.current.privateKey, undefined, 'not in memory');
      assert.match(kbs.keys.current.signer.id, /^pkcs11:token=vouchsafe-test;object=kbs-ear-/);
      const r = await stack.admin('POST', '/v1/admin/token-keys/rotate');
      assert.equal(r.status, 200);
      assert.notEqual(r.body.kid, first[0].kid);
      assert.match(kbs.keys.current.signer.id, /^pkcs11:token=vouchsafe-test;object=kbs-ear-/);
      const audit = await stack.admin('GET', '/v1/admin/audit?limit=1000');
      const rot = audit.body.entries.find((e: { kind: string }) => e.kind === 'token_key_rotate');
      assert.equal(rot.details.oldKid, first[0].kid);
      assert.equal(rot.details.newKid, r.body.kid);
      assert.equal(rot.details.newKey, kbs.keys.current.signer.id);
      // A token signed in the token verifies against the JWKS (jose).
      const ear = kbs.tokens.issueSnp(input()).token;
      const jwks = (await stack.call('GET', '/kbs/v0/.well-known/jwks')).body;
      await jwtVerify(ear, createLocalJWKSet(jwks));
      // After a restart the ring, read back from the store, still signs in the token.
      await stack.restart();
      const again = stack.b.kbs!.tokens.issueSnp(input()).token;
      await jwtVerify(again, createLocalJWKSet((await stack.call('GET', '/kbs/v0/.well-known/jwks')).body));
    } finally {
      await stack.close();
    }
  });
});

describe('a CA directory whose key is in SoftHSM2 (ca-key.uri)', () => {
  it('init with keyUri writes no key file; open reads the URI; an issuance verifies', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { PlatformCa } = await import('../../src/ca/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-pkcs11-'));
    try {
      const created = await PlatformCa.init({ dir, keyType: 'p256', keyUri: token.uri('ca-dir-key') });
      await created.close();
      assert.equal(existsSync(join(dir, 'ca-key.pem')), false);
      assert.match(
        readFileSync(join(dir, 'ca-key.uri'), 'utf8'),
        /^pkcs11:token=vouchsafe-test;object=ca-dir-key/,
      );
      const ca = await PlatformCa.open(dir);
      try {
        const issued = await ca.issueEk({
          ekPublic: encodeTpm2bPublic(softEk('rsa').pub),
          identity: identity(2),
        });
        const root = new X509Certificate(Buffer.from(ca.certificate));
        assert.ok(new X509Certificate(Buffer.from(issued.der)).verify(root.publicKey));
      } finally {
        await ca.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
