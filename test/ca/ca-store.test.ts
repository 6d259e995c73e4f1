import assert from 'node:assert/strict';
import { createHash, verify } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import {
  CA_FILES,
  defaultCaConfig,
  FileKeyStore,
  nameFromString,
  nameFromTemplate,
  PlatformCa,
  parseCaConfig,
  serializeCaConfig,
} from '../../src/ca/index.js';
import { ecdsaP1363ToDer, integer, oid, time } from '../../src/formats/der/writer.js';
import { errorWith } from '../helpers/assert-error.js';
import { identity, softEk, testCa } from './fixtures.js';

/** The CA's key store, configuration, directory and repository, and the DER writer under them. */

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-store-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const invalid = (reason: string) => errorWith('ERR_INVALID_ARGUMENT', reason);

describe('FileKeyStore', () => {
  it('writes a PKCS#8 key with mode 0600 and signs (ECDSA as P1363, RSA PKCS#1 v1.5)', async () => {
    const d = tmp();
    const p384 = await FileKeyStore.create(join(d, 'p384.pem'), 'p384');
    assert.equal(statSync(join(d, 'p384.pem')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(d, 'p384.pem'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    const data = new TextEncoder().encode('tbs');
    const sig = await p384.sign(data, 'ecdsa-sha384');
    assert.equal(sig.length, 96, 'r || s');
    assert.ok(verify('sha384', data, { key: p384.publicKey, dsaEncoding: 'ieee-p1363' }, sig));
    assert.ok(verify('sha384', data, p384.publicKey, ecdsaP1363ToDer(sig)), 'DER conversion verifies too');

    const rsa = await FileKeyStore.create(join(d, 'rsa.pem'), 'rsa2048');
    assert.ok(verify('sha256', data, rsa.publicKey, await rsa.sign(data, 'rsa-pkcs1-sha256')));
    await assert.rejects(rsa.sign(data, 'ecdsa-sha256'), invalid('ca.key_store.algorithm'));
  });

  it('never overwrites a key, and refuses a key file others can read', async () => {
    const d = tmp();
    await FileKeyStore.create(join(d, 'k.pem'), 'p256');
    await assert.rejects(FileKeyStore.create(join(d, 'k.pem'), 'p256'), invalid('ca.key_store.exists'));
    chmodSync(join(d, 'k.pem'), 0o644);
    assert.throws(() => FileKeyStore.open(join(d, 'k.pem')), invalid('ca.key_store.permissions'));
    assert.throws(() => FileKeyStore.open(join(d, 'missing.pem')), invalid('ca.key_store.missing'));
  });

  it('encrypts the key under a passphrase and needs it to open', async () => {
    const d = tmp();
    const created = await FileKeyStore.create(join(d, 'k.pem'), 'p384', { passphrase: 'correct horse' });
    assert.match(readFileSync(join(d, 'k.pem'), 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    assert.throws(() => FileKeyStore.open(join(d, 'k.pem')), invalid('ca.key_store.key'));
    assert.throws(
      () => FileKeyStore.open(join(d, 'k.pem'), { passphrase: 'wrong' }),
      invalid('ca.key_store.key'),
    );
    const opened = FileKeyStore.open(join(d, 'k.pem'), { passphrase: 'correct horse' });
    assert.ok(opened.publicKey.equals(created.publicKey));
  });
});

describe('CA directory', () => {
  it('holds ca.json, the key (0600), the certificate, the chain and the database (0600); reopens', async () => {
    const t = await testCa();
    try {
      for (const f of Object.values(CA_FILES)) assert.ok(statSync(join(t.dir, f)).isFile(), f);
      assert.equal(statSync(join(t.dir, CA_FILES.key)).mode & 0o777, 0o600);
      assert.equal(statSync(join(t.dir, CA_FILES.database)).mode & 0o777, 0o600);
      assert.equal(statSync(t.dir).mode & 0o777, 0o700);
      const config = JSON.parse(readFileSync(join(t.dir, CA_FILES.config), 'utf8'));
      assert.deepEqual(config.lifetimes, { caDays: 7300, ekDays: 3650, akDays: 365, crlDays: 7 });
      assert.equal(config.keyType, 'p384');
      assert.equal(config.signatureAlgorithm, 'ecdsa-sha384');

      const ek = await t.ca.issueEk({ ekPublic: softEk('ecc').parsed.raw, identity: identity(70) });
      const nonce = await t.ca.createNonce(identity(70).instanceId);
      await t.ca.close();
      const again = await PlatformCa.open(t.dir);
      try {
        assert.deepEqual(again.certificate, t.ca.certificate);
        assert.equal((await again.repository.getCertificate(ek.serial))!.kind, 'ek');
        // the nonce survives a restart (and is still single use)
        assert.ok(await again.repository.consumeNonce(createHash('sha256').update(nonce).digest()));
        assert.equal((await again.verifyLog()).ok, true);
      } finally {
        await again.close();
      }
    } finally {
      rmSync(t.dir, { recursive: true, force: true });
    }
  });

  it('refuses to init over an existing CA and to open a directory without one', async () => {
    const t = await testCa();
    try {
      await assert.rejects(PlatformCa.init({ dir: t.dir }), invalid('ca.init.exists'));
      await assert.rejects(PlatformCa.open(tmp()), invalid('ca.open'));
    } finally {
      await t.cleanup();
    }
  });

  it('reads ca-chain.pem strictly: text around the blocks, or a block that is no certificate, is refused', async () => {
    const t = await testCa();
    try {
      const path = join(t.dir, CA_FILES.chain);
      const good = readFileSync(path, 'utf8');
      const key = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
      for (const bad of [`issued by ops\n${good}`, `${good}${key}`]) {
        writeFileSync(path, bad);
        await assert.rejects(PlatformCa.open(t.dir), errorWith('ERR_MALFORMED', 'ca.chain.pem'));
      }
      writeFileSync(path, good);
      await (await PlatformCa.open(t.dir)).close();
    } finally {
      await t.cleanup();
    }
  });

  it('refuses a key that does not match the certificate', async () => {
    const a = await testCa();
    const b = await testCa();
    try {
      await assert.rejects(PlatformCa.open(a.dir, { keyStore: b.ca.keyStore }), invalid('ca.open'));
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });
});

describe('CA configuration', () => {
  it('defaults validate and round-trip through ca.json', () => {
    const c = defaultCaConfig('rsa2048');
    assert.equal(c.signatureAlgorithm, 'rsa-pkcs1-sha256');
    assert.deepEqual(parseCaConfig(JSON.parse(serializeCaConfig(c))), c);
  });

  it('names the field that is wrong', () => {
    const base = JSON.parse(serializeCaConfig(defaultCaConfig()));
    const bad = (patch: Record<string, unknown>, reason = 'ca.config') =>
      assert.throws(() => parseCaConfig({ ...base, ...patch }), invalid(reason));
    bad({ version: 2 });
    bad({ keyType: 'ed25519' });
    bad({ signatureAlgorithm: 'rsa-pkcs1-sha256' }); // does not fit a P-384 key
    bad({ lifetimes: { ...base.lifetimes, akDays: 0 } });
    bad({ crlDistributionPoints: ['not a uri'] });
    bad({ identityOid: '1.3.x' });
    bad({ akSubject: [{ CN: 'a', O: 'b' }] });
    bad({ snp: { trustedRoots: [{ product: 'Naples', sha256: '00'.repeat(32) }], policy: {} } });
    bad({ csr: { subject: 'template', allowedSan: ['x400'] } });
    bad({ identitySecurityProperties: { isProduction: 'yes' } });
    bad({ snp: { trustedRoots: [], policy: { allowDebug: 'sometimes' } } }, 'policy.invalid');
  });
});

describe('names', () => {
  it('encodes RFC 4514 text and templates with UTF8String values; placeholders cannot inject attributes', () => {
    const der = nameFromString('CN=Vouchsafe Root, O=Example, C=DE');
    const rdns = (asn1js.fromBER(der).result as asn1js.Sequence).valueBlock.value;
    const tags = rdns.map(
      (r) =>
        ((r as asn1js.Set).valueBlock.value[0] as asn1js.Sequence).valueBlock.value[1]!.idBlock.tagNumber,
    );
    assert.deepEqual(tags, [12, 12, 19], 'UTF8String, UTF8String, PrintableString (countryName)');
    const id = { ...identity(71), instanceName: 'evil, CN=Vouchsafe Root' };
    const t = nameFromTemplate([{ CN: '{instanceName}' }], id);
    const cn = (asn1js.fromBER(t).result as asn1js.Sequence).valueBlock.value;
    assert.equal(cn.length, 1, 'one RDN');
    assert.deepEqual(nameFromTemplate([], id), Uint8Array.of(0x30, 0x00));
    assert.throws(() => nameFromTemplate([{ CN: '{nope}' }], id), invalid('ca.name'));
    assert.throws(() => nameFromString('NOTANATTRIBUTE=x'), invalid('ca.name'));
  });
});

describe('DER writer (src/formats/der/writer.ts, as the CA uses it)', () => {
  it('encodes INTEGERs minimally, OIDs, and RFC 5280 times', () => {
    const dec = (d: Uint8Array) => asn1js.fromBER(d).result;
    for (const v of [0n, 1n, 127n, 128n, 255n, 256n, -1n, -128n, -129n, 2n ** 64n]) {
      const d = integer(v);
      assert.equal((dec(d) as asn1js.Integer).toBigInt(), v, `INTEGER ${v}`);
    }
    assert.equal(Buffer.from(integer(128)).toString('hex'), '02020080');
    assert.equal(Buffer.from(integer(-128)).toString('hex'), '020180');
    assert.equal(Buffer.from(oid('2.23.133.8.1')).toString('hex'), '060567810508 01'.replace(' ', ''));
    assert.equal(
      (dec(oid('1.3.6.1.4.1.11129.2.1.21')) as asn1js.ObjectIdentifier).getValue(),
      '1.3.6.1.4.1.11129.2.1.21',
    );
    assert.equal(
      Buffer.from(time(new Date('2049-12-31T23:59:59Z')))
        .toString('latin1')
        .slice(2),
      '491231235959Z',
    );
    assert.equal(
      Buffer.from(time(new Date('2050-01-01T00:00:00Z')))
        .toString('latin1')
        .slice(2),
      '20500101000000Z',
    );
    assert.throws(() => oid('3.1'), invalid('der.oid'));
  });
});
