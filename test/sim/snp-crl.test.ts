import 'reflect-metadata';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import * as pkijs from 'pkijs';
import { ErrorCode } from '../../src/errors.js';
import { createCrl, sharedSimChain } from '../../src/sim/snp/index.js';
import { derShape, publicKeyOf, splitSigned, verifyPss } from './der-helpers.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
pkijs.setEngine(
  'node',
  new pkijs.CryptoEngine({
    name: 'node',
    crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'],
  }),
);

describe('createCrl: an ARK-signed X.509 v2 CRL', () => {
  it('verifies with the ARK key (node:crypto RSA-PSS) and lists exactly the given serials', async () => {
    const chain = await sharedSimChain('Milan');
    const thisUpdate = new Date('2026-06-01T00:00:00Z');
    const nextUpdate = new Date('2026-06-08T00:00:00Z');
    const serials = [0x10001n, 0x80n, 0n, 0xffff_ffff_ffff_ffffn];
    const crl = await createCrl(chain, { revokedSerials: serials, thisUpdate, nextUpdate });
    assert.ok(verifyPss(crl, publicKeyOf(chain.ark.der)));
    // Rejecting: not by the ASK, and not after a flipped byte.
    assert.equal(verifyPss(crl, publicKeyOf(chain.ask.der)), false);
    const tampered = crl.slice();
    tampered[splitSigned(tampered).tbs.byteOffset + 40]! ^= 1;
    assert.equal(verifyPss(tampered, publicKeyOf(chain.ark.der)), false);

    const parsed = new x509.X509Crl(crl);
    assert.equal(parsed.issuer, new x509.X509Certificate(chain.ark.der).subject);
    assert.equal(parsed.thisUpdate.toISOString(), thisUpdate.toISOString());
    assert.equal(parsed.nextUpdate?.toISOString(), nextUpdate.toISOString());
    assert.deepEqual(
      parsed.entries.map((e) => BigInt(`0x${e.serialNumber}`)),
      serials,
    );
    assert.ok(await parsed.verify({ publicKey: new x509.X509Certificate(chain.ark.der).publicKey }));
  });

  it('pkijs parses it as v2 and verifies it against the ARK certificate', async () => {
    const chain = await sharedSimChain('Milan');
    const crl = pkijs.CertificateRevocationList.fromBER(
      await createCrl(chain, { revokedSerials: [0x10001n], kind: 'vlek' }),
    );
    assert.equal(crl.version, 1);
    assert.equal(crl.signature.algorithmId, '1.2.840.113549.1.1.10');
    assert.ok(await crl.verify({ issuerCertificate: pkijs.Certificate.fromBER(chain.ark.der) }));
    assert.equal(crl.revokedCertificates?.length, 1);
    const ids = crl.crlExtensions?.extensions.map((e) => e.extnID);
    assert.deepEqual(ids, ['2.5.29.35', '2.5.29.20']);
  });

  it('an empty list omits revokedCertificates (RFC 5280 5.1.2.6) and still verifies', async () => {
    const chain = await sharedSimChain('Milan');
    const crl = await createCrl(chain, { revokedSerials: [] });
    assert.ok(verifyPss(crl, publicKeyOf(chain.ark.der)));
    assert.equal(new x509.X509Crl(crl).entries.length, 0);
    const withOne = await createCrl(chain, { revokedSerials: [1n] });
    assert.equal(derShape(withOne).length - derShape(crl).length, 4); // SEQ { SEQ { INTEGER, Time } }
  });

  it('defaults thisUpdate to now and nextUpdate to a week later', async () => {
    const chain = await sharedSimChain('Milan');
    const before = Math.floor(Date.now() / 1000) * 1000;
    const parsed = new x509.X509Crl(await createCrl(chain, { revokedSerials: [] }));
    assert.ok(parsed.thisUpdate.getTime() >= before && parsed.thisUpdate.getTime() <= Date.now());
    assert.equal(parsed.nextUpdate!.getTime() - parsed.thisUpdate.getTime(), 7 * 24 * 3600 * 1000);
  });

  it('rejects nextUpdate before thisUpdate and negative serials', async () => {
    const chain = await sharedSimChain('Milan');
    const invalid = (e: unknown) =>
      (e as { code: string }).code === ErrorCode.InvalidArgument &&
      (e as { reason: string }).reason === 'sim.snp.crl';
    await assert.rejects(
      createCrl(chain, {
        revokedSerials: [],
        thisUpdate: new Date('2026-02-01T00:00:00Z'),
        nextUpdate: new Date('2026-01-01T00:00:00Z'),
      }),
      invalid,
    );
    await assert.rejects(createCrl(chain, { revokedSerials: [-1n] }), invalid);
  });
});
