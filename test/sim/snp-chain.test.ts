import 'reflect-metadata';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPair, webcrypto, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as x509 from '@peculiar/x509';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { ErrorCode } from '../../src/errors.js';
import type { SnpProduct } from '../../src/formats/snp/product.js';
import { productFromName } from '../../src/formats/snp/product.js';
import {
  AmdOid,
  createSimChain,
  DEFAULT_CSP_ID,
  DEFAULT_SIM_TCB,
  type SimChain,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import { needsVectors, readVectorText } from '../helpers/vectors.js';
import {
  derShape,
  extensionEncoding,
  extensionsOf,
  publicKeyOf,
  splitSigned,
  verifyPss,
} from './der-helpers.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
pkijs.setEngine(
  'node',
  new pkijs.CryptoEngine({
    name: 'node',
    crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'],
  }),
);

const PRODUCTS: SnpProduct[] = ['Milan', 'Genoa', 'Turin'];
const pemToDer = (pem: string) => new Uint8Array(new X509Certificate(pem).raw);
const realCert = (...parts: string[]) => pemToDer(readVectorText(...parts));
const realVcek: Record<SnpProduct, () => Uint8Array> = {
  Milan: () => realCert('snp', 'microsoft-tav-milan', 'vcek.pem'),
  Genoa: () => realCert('snp', 'microsoft-tav-genoa', 'vcek.pem'),
  Turin: () => realCert('snp', 'microsoft-tav-turin', 'vcek.pem'),
};
const amd = (product: SnpProduct, which: 'ark' | 'ask' | 'asvk') =>
  realCert('amd', `${product.toLowerCase()}_${which}.pem`);

/** Integer value of an AMD INTEGER extension. */
function intExt(der: Uint8Array, oid: string): number | undefined {
  const e = extensionsOf(der).find((x) => x.oid === oid);
  if (!e) return undefined;
  return (asn1js.fromBER(e.value).result as asn1js.Integer).valueBlock.valueDec;
}

function ia5Ext(der: Uint8Array, oid: string): string | undefined {
  const e = extensionsOf(der).find((x) => x.oid === oid);
  return e ? (asn1js.fromBER(e.value).result as asn1js.IA5String).getValue() : undefined;
}

describe('simulated AMD chain: signatures with plain node:crypto', () => {
  for (const product of PRODUCTS) {
    it(`${product}: ARK self-signed, ASK/ASVK by ARK, VCEK by ASK, VLEK by ASVK (RSA-PSS salt 48)`, async () => {
      const c = await sharedSimChain(product);
      const ark = publicKeyOf(c.ark.der);
      assert.ok(verifyPss(c.ark.der, ark));
      assert.ok(verifyPss(c.ask.der, ark));
      assert.ok(verifyPss(c.asvk.der, ark));
      assert.ok(verifyPss(c.vcek.der, publicKeyOf(c.ask.der)));
      assert.ok(verifyPss(c.vlek.der, publicKeyOf(c.asvk.der)));
      // Rejecting: the VCEK does not verify under the ARK or the ASVK, the ASK not under itself.
      assert.equal(verifyPss(c.vcek.der, ark), false);
      assert.equal(verifyPss(c.vcek.der, publicKeyOf(c.asvk.der)), false);
      assert.equal(verifyPss(c.ask.der, publicKeyOf(c.ask.der)), false);
      // A flipped TBS byte breaks the signature.
      const tampered = c.vcek.der.slice();
      tampered[splitSigned(tampered).tbs.byteOffset + 200]! ^= 1;
      assert.equal(verifyPss(tampered, publicKeyOf(c.ask.der)), false);
    });
  }

  it('the returned key objects are the certified keys; rootSha256 is SHA-256 of the ARK DER', async () => {
    const c = await sharedSimChain('Milan');
    for (const k of ['ark', 'ask', 'asvk', 'vcek', 'vlek'] as const) {
      const certified = publicKeyOf(c[k].der).export({ type: 'spki', format: 'der' });
      assert.deepEqual(c[k].publicKey.export({ type: 'spki', format: 'der' }), certified, k);
    }
    assert.equal(c.rootSha256, createHash('sha256').update(c.ark.der).digest('hex'));
    assert.equal(c.ark.publicKey.asymmetricKeyDetails?.modulusLength, 4096);
    assert.equal(c.vcek.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  });
});

describe('simulated AMD chain: parsed by @peculiar/x509 and pkijs', () => {
  it('@peculiar/x509 parses every certificate and verifies the chain and signatures', async () => {
    const c = await sharedSimChain('Milan');
    const [ark, ask, asvk, vcek, vlek] = [c.ark, c.ask, c.asvk, c.vcek, c.vlek].map(
      (k) => new x509.X509Certificate(k.der),
    ) as [x509.X509Certificate, ...x509.X509Certificate[]];
    assert.equal(vcek!.serialNumber, '00');
    assert.equal(vlek!.serialNumber, '00');
    assert.equal(ark.serialNumber, '010000');
    assert.match(vcek!.subject, /CN=SEV-VCEK/);
    assert.match(vcek!.issuer, /CN=SEV-Milan/);
    assert.match(vlek!.issuer, /CN=SEV-VLEK-Milan/);
    assert.equal(ark.subject, ark.issuer);
    assert.ok(await ark.verify({ signatureOnly: true }));
    assert.ok(await ask!.verify({ publicKey: ark.publicKey, signatureOnly: true }));
    assert.ok(await vcek!.verify({ publicKey: ask!.publicKey, signatureOnly: true }));
    assert.ok(await vlek!.verify({ publicKey: asvk!.publicKey, signatureOnly: true }));
    assert.equal(await vcek!.verify({ publicKey: asvk!.publicKey, signatureOnly: true }), false);
    const built = await new x509.X509ChainBuilder({ certificates: [ask!, ark] }).build(vcek!);
    assert.deepEqual(
      Array.from(built, (b) => b.subject.match(/CN=([^,]+)/)![1]),
      ['SEV-VCEK', 'SEV-Milan', 'ARK-Milan'],
    );
    const bc = ask!.getExtension(x509.BasicConstraintsExtension)!;
    assert.equal(bc.ca, true);
    assert.equal(bc.pathLength, 0);
    assert.equal(vcek!.getExtension(x509.AuthorityKeyIdentifierExtension), null);
    assert.equal(vcek!.getExtension(x509.KeyUsagesExtension), null);
    assert.equal(vcek!.getExtension(x509.BasicConstraintsExtension), null);
  });

  it('pkijs parses every certificate and verifies ARK -> ASK -> VCEK', async () => {
    const c = await sharedSimChain('Turin');
    const [ark, ask, vcek] = [c.ark, c.ask, c.vcek].map((k) => pkijs.Certificate.fromBER(k.der)) as [
      pkijs.Certificate,
      pkijs.Certificate,
      pkijs.Certificate,
    ];
    assert.equal(vcek.version, 2);
    assert.equal(vcek.signatureAlgorithm.algorithmId, '1.2.840.113549.1.1.10');
    assert.ok(await ark.verify());
    assert.ok(await ask.verify(ark));
    assert.ok(await vcek.verify(ask));
    const engine = new pkijs.CertificateChainValidationEngine({
      trustedCerts: [ark],
      certs: [ask, vcek],
      checkDate: new Date(),
    });
    const result = await engine.verify();
    assert.equal(result.result, true, result.resultMessage);
  });

  it('openssl verify builds VCEK -> ASK -> ARK (Debian package openssl)', async (t) => {
    const c = await sharedSimChain('Genoa');
    const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-sim-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const pem = (der: Uint8Array) => new X509Certificate(der).toString();
    writeFileSync(join(dir, 'ark.pem'), pem(c.ark.der));
    writeFileSync(join(dir, 'ask.pem'), pem(c.ask.der));
    writeFileSync(join(dir, 'asvk.pem'), pem(c.asvk.der));
    writeFileSync(join(dir, 'vcek.pem'), pem(c.vcek.der));
    const run = (untrusted: string) => {
      try {
        return execFileSync(
          'openssl',
          [
            'verify',
            '-CAfile',
            join(dir, 'ark.pem'),
            '-untrusted',
            join(dir, untrusted),
            join(dir, 'vcek.pem'),
          ],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
        );
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
        if (err.code === 'ENOENT') assert.fail('openssl not found: install the Debian package openssl');
        return `${err.stdout ?? ''}${err.stderr ?? ''}`;
      }
    };
    assert.match(run('ask.pem'), /vcek\.pem: OK/);
    // Rejecting: with the ASVK as the only intermediate there is no path.
    assert.doesNotMatch(run('asvk.pem'), /vcek\.pem: OK/);
  });
});

describe('simulated certificates have the shape of AMD real ones', needsVectors, () => {
  for (const product of PRODUCTS) {
    it(`${product} VCEK: same DER tree, extension OIDs, order and encodings as AMD's VCEK`, async () => {
      const c = await sharedSimChain(product);
      const real = realVcek[product]();
      assert.deepEqual(derShape(c.vcek.der), derShape(real));
      const ours = extensionsOf(c.vcek.der);
      const theirs = extensionsOf(real);
      assert.deepEqual(
        ours.map((e) => [e.oid, e.critical, extensionEncoding(e)]),
        theirs.map((e) => [e.oid, e.critical, extensionEncoding(e)]),
      );
      // Same signature AlgorithmIdentifier bytes (RSA-PSS params, trailer omitted like 2026 VCEKs).
      assert.deepEqual(splitSigned(c.vcek.der).algorithm, splitSigned(real).algorithm);
      // Names: exactly AMD's issuer and subject.
      const name = (der: Uint8Array) => new X509Certificate(der);
      assert.equal(name(c.vcek.der).subject, name(real).subject);
      assert.equal(name(c.vcek.der).issuer, name(real).issuer);
      assert.equal(ia5Ext(c.vcek.der, AmdOid.productName), ia5Ext(real, AmdOid.productName));
      assert.equal(intExt(c.vcek.der, AmdOid.structVersion), intExt(real, AmdOid.structVersion));
    });

    for (const which of ['ark', 'ask', 'asvk'] as const) {
      it(`${product} ${which.toUpperCase()}: same DER tree, names, serial and extensions as AMD's`, async () => {
        const c = await sharedSimChain(product);
        const real = amd(product, which);
        assert.deepEqual(derShape(c[which].der), derShape(real));
        assert.deepEqual(
          extensionsOf(c[which].der).map((e) => [e.oid, e.critical, extensionEncoding(e)]),
          extensionsOf(real).map((e) => [e.oid, e.critical, extensionEncoding(e)]),
        );
        const ours = new X509Certificate(c[which].der);
        const theirs = new X509Certificate(real);
        assert.equal(ours.subject, theirs.subject);
        assert.equal(ours.issuer, theirs.issuer);
        assert.equal(ours.serialNumber, theirs.serialNumber);
        assert.deepEqual(splitSigned(c[which].der).algorithm, splitSigned(real).algorithm);
        // A verifier that pins AMD's root sees a different key: this chain is a forgery to it.
        assert.notDeepEqual(
          ours.publicKey.export({ type: 'spki', format: 'der' }),
          theirs.publicKey.export({ type: 'spki', format: 'der' }),
        );
      });
    }
  }

  it('Milan VLEK: same DER tree and extensions as the AWS VLEK (cspID, no hwID, productName "Milan")', async () => {
    const c = await sharedSimChain('Milan');
    const real = realCert('snp', 'constellation-aws-milan-vlek-2024', 'vlek.pem');
    assert.deepEqual(derShape(c.vlek.der), derShape(real));
    assert.deepEqual(
      extensionsOf(c.vlek.der).map((e) => [e.oid, e.critical, extensionEncoding(e)]),
      extensionsOf(real).map((e) => [e.oid, e.critical, extensionEncoding(e)]),
    );
    assert.equal(ia5Ext(c.vlek.der, AmdOid.productName), 'Milan');
    assert.equal(ia5Ext(c.vlek.der, AmdOid.cspID), DEFAULT_CSP_ID);
    assert.equal(new X509Certificate(c.vlek.der).subject, new X509Certificate(real).subject);
    assert.equal(new X509Certificate(c.vlek.der).issuer, new X509Certificate(real).issuer);
  });

  it('the real Milan VCEK carries a 64-byte untagged hwID, which the simulator reproduces', async () => {
    const real = extensionsOf(realVcek.Milan());
    const hw = real.find((e) => e.oid === AmdOid.hwID)!;
    assert.equal(hw.value.length, 64);
    const c = await sharedSimChain('Milan');
    const ours = extensionsOf(c.vcek.der).find((e) => e.oid === AmdOid.hwID)!;
    assert.deepEqual(ours.value, c.chipId);
  });
});

describe('leaf contents follow the chain TCB and chip ID', () => {
  const splValues = (der: Uint8Array) => ({
    bl: intExt(der, AmdOid.blSPL),
    tee: intExt(der, AmdOid.teeSPL),
    snp: intExt(der, AmdOid.snpSPL),
    spl4: intExt(der, AmdOid.spl4),
    spl5: intExt(der, AmdOid.spl5),
    ucode: intExt(der, AmdOid.ucodeSPL),
    fmc: intExt(der, AmdOid.fmcSPL),
  });

  it('Milan: SPLs equal the TCB, spl_4..7 zero, no fmcSPL, 64-byte hwID = chipId', async () => {
    const c = await sharedSimChain('Milan');
    assert.deepEqual(c.tcb, DEFAULT_SIM_TCB.Milan);
    for (const der of [c.vcek.der, c.vlek.der]) {
      assert.deepEqual(splValues(der), {
        bl: c.tcb.bootloader,
        tee: c.tcb.tee,
        snp: c.tcb.snp,
        spl4: 0,
        spl5: 0,
        ucode: c.tcb.microcode,
        fmc: undefined,
      });
    }
    assert.equal(ia5Ext(c.vcek.der, AmdOid.productName), 'Milan-B0');
    assert.equal(productFromName(ia5Ext(c.vcek.der, AmdOid.productName)!)?.product, 'Milan');
    assert.equal(c.chipId.length, 64);
    assert.equal(
      extensionsOf(c.vlek.der).some((e) => e.oid === AmdOid.hwID),
      false,
    );
    assert.equal(
      extensionsOf(c.vcek.der).some((e) => e.oid === AmdOid.cspID),
      false,
    );
  });

  it('Turin: structVersion 1, fmcSPL present, no spl_4, 8-byte hwID, CHIP_ID bytes 8-63 zero', async () => {
    const c = await sharedSimChain('Turin');
    const ext = extensionsOf(c.vcek.der);
    assert.equal(intExt(c.vcek.der, AmdOid.structVersion), 1);
    assert.equal(ia5Ext(c.vcek.der, AmdOid.productName), 'Turin');
    assert.equal(intExt(c.vcek.der, AmdOid.fmcSPL), c.tcb.fmc);
    assert.equal(
      ext.some((e) => e.oid === AmdOid.spl4),
      false,
    );
    const hw = ext.find((e) => e.oid === AmdOid.hwID)!;
    assert.equal(hw.value.length, 8);
    assert.deepEqual(hw.value, c.chipId.subarray(0, 8));
    assert.ok(c.chipId.subarray(8).every((b) => b === 0));
    assert.ok(c.chipId.subarray(0, 8).some((b) => b !== 0));
    assert.deepEqual(splValues(c.vcek.der), {
      bl: 1,
      tee: 1,
      snp: 4,
      spl4: undefined,
      spl5: 0,
      ucode: 81,
      fmc: 1,
    });
  });

  it('validity: ARK/ASK 25 years, VCEK 7 years, VLEK 1 year from now', async () => {
    const now = new Date('2026-03-04T05:06:07.890Z');
    const base = await sharedSimChain('Milan');
    const c = await createSimChain({ now, keys: keysOf(base) });
    const v = (der: Uint8Array) => {
      const cert = new X509Certificate(der);
      return [new Date(cert.validFrom).toISOString(), new Date(cert.validTo).toISOString()];
    };
    assert.deepEqual(v(c.ark.der), ['2026-03-04T05:06:07.000Z', '2051-03-04T05:06:07.000Z']);
    assert.deepEqual(v(c.ask.der), ['2026-03-04T05:06:07.000Z', '2051-03-04T05:06:07.000Z']);
    assert.deepEqual(v(c.vcek.der), ['2026-03-04T05:06:07.000Z', '2033-03-04T05:06:07.000Z']);
    assert.deepEqual(v(c.vlek.der), ['2026-03-04T05:06:07.000Z', '2027-03-04T05:06:07.000Z']);
  });
});

function keysOf(c: SimChain) {
  const pair = (k: SimChain['ark']) => ({ privateKey: k.privateKey, publicKey: k.publicKey });
  return { ark: pair(c.ark), ask: pair(c.ask), asvk: pair(c.asvk), vcek: pair(c.vcek), vlek: pair(c.vlek) };
}

describe('createSimChain options', () => {
  it('honours chipId, tcb, VCEK dates and cspId, and reuses given keys', async () => {
    const base = await sharedSimChain('Genoa');
    const chipId = new Uint8Array(64).map((_, i) => i + 1);
    const c = await createSimChain({
      product: 'Genoa',
      chipId,
      tcb: { bootloader: 9, tee: 1, snp: 22, microcode: 80 },
      vcekNotBefore: new Date('2020-01-01T00:00:00Z'),
      vcekNotAfter: new Date('2021-01-01T00:00:00Z'),
      cspId: 'CN=example-csp.test',
      keys: keysOf(base),
    });
    assert.deepEqual(c.chipId, chipId);
    assert.deepEqual(extensionsOf(c.vcek.der).find((e) => e.oid === AmdOid.hwID)!.value, chipId);
    assert.equal(intExt(c.vcek.der, AmdOid.snpSPL), 22);
    assert.equal(intExt(c.vcek.der, AmdOid.ucodeSPL), 80);
    assert.equal(ia5Ext(c.vcek.der, AmdOid.productName), 'Genoa');
    assert.equal(ia5Ext(c.vlek.der, AmdOid.cspID), 'CN=example-csp.test');
    const vcek = new X509Certificate(c.vcek.der);
    assert.equal(new Date(vcek.validTo).toISOString(), '2021-01-01T00:00:00.000Z');
    assert.equal(new Date(vcek.validFrom).toISOString(), '2020-01-01T00:00:00.000Z');
    // Same keys as the base chain, so the same root key, but a new ARK certificate (new validity).
    assert.equal(c.rootSha256 === base.rootSha256, false);
    assert.ok(verifyPss(c.ask.der, publicKeyOf(base.ark.der)));
  });

  it('Turin keeps only bytes 0-7 of a given chipId', async () => {
    const base = await sharedSimChain('Turin');
    const chipId = new Uint8Array(64).fill(0xab);
    const c = await createSimChain({ product: 'Turin', chipId, keys: keysOf(base) });
    assert.equal(toHex(c.chipId), `${'ab'.repeat(8)}${'00'.repeat(56)}`);
    assert.equal(toHex(extensionsOf(c.vcek.der).find((e) => e.oid === AmdOid.hwID)!.value), 'ab'.repeat(8));
  });

  it('rejects a chipId of the wrong size, a TCB component over 255, a wrong key type, an unknown product', async () => {
    const keys = keysOf(await sharedSimChain('Milan'));
    const invalid = (reason: string) => (e: unknown) => {
      assert.equal((e as { code: string }).code, ErrorCode.InvalidArgument);
      assert.equal((e as { reason: string }).reason, reason);
      return true;
    };
    await assert.rejects(createSimChain({ chipId: new Uint8Array(8), keys }), invalid('sim.snp.chip_id'));
    await assert.rejects(
      createSimChain({ tcb: { bootloader: 256, tee: 0, snp: 0, microcode: 0 }, keys }),
      invalid('sim.snp.tcb'),
    );
    const ec = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' });
    await assert.rejects(createSimChain({ keys: { ...keys, vcek: ec } }), invalid('sim.snp.key'));
    await assert.rejects(createSimChain({ keys: { ...keys, ark: ec } }), invalid('sim.snp.key'));
    await assert.rejects(
      createSimChain({ product: 'Venice' as SnpProduct, keys }),
      invalid('sim.snp.product'),
    );
  });

  it('sharedSimChain memoizes one chain per product', async () => {
    const [a, b] = await Promise.all([sharedSimChain('Milan'), sharedSimChain('Milan')]);
    assert.equal(a, b);
    assert.notEqual(a, await sharedSimChain('Turin'));
    assert.equal((await sharedSimChain()).product, 'Milan');
  });
});
