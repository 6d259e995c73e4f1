import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as asn1js from 'asn1js';
import { certificatePem, PlatformCa } from '../../src/ca/index.js';
import { x509 } from '../../src/ca/x509-lib.js';
import { encodePublic, encodeTpm2bPublic, publicToKeyObject } from '../../src/formats/tpm/index.js';
import { findExtension, parseCertificate } from '../../src/formats/x509/certificate.js';
import {
  GCE_INSTANCE_IDENTITY_OID,
  parseInstanceIdentity,
  readInstanceIdentity,
} from '../../src/formats/x509/instance-identity.js';
import { toHex } from '../../src/util/bytes.js';
import { needsVectors, readVectorText } from '../helpers/vectors.js';
import { identity, openssl, refused, softAk, softEk, type TestCa, testCa } from './fixtures.js';

/**
 * EK certificates against the TCG EK Credential Profile (v2.5 §3.2), field by field, read back three
 * ways: @peculiar/x509, the project's strict DER reader (src/formats/x509) and `openssl x509 -text`.
 */

function opensslText(t: TestCa, der: Uint8Array, name: string): string {
  const f = join(t.dir, `${name}.pem`);
  writeFileSync(f, certificatePem(der));
  return openssl(['x509', '-in', f, '-noout', '-text']);
}

function opensslVerify(t: TestCa, der: Uint8Array, chain: readonly Uint8Array[]): string {
  const leaf = join(t.dir, 'leaf.pem');
  const root = join(t.dir, 'root.pem');
  const untrusted = join(t.dir, 'untrusted.pem');
  writeFileSync(leaf, certificatePem(der));
  writeFileSync(root, certificatePem(chain[chain.length - 1]!));
  writeFileSync(untrusted, chain.slice(0, -1).map(certificatePem).join('') || certificatePem(chain[0]!));
  // -partial_chain is not used: the chain must lead to the self-signed root. purpose any: EKU is TCG's.
  return openssl(['verify', '-CAfile', root, '-untrusted', untrusted, '-purpose', 'any', leaf]);
}

/** Decodes an extension value with asn1js (a second, independent reader). */
function asn1(value: Uint8Array): asn1js.AsnType {
  const r = asn1js.fromBER(Uint8Array.from(value));
  assert.equal(r.offset, value.length);
  return r.result;
}

const seqItems = (n: asn1js.AsnType) => (n as asn1js.Sequence).valueBlock.value;

const TCG_SAN_DN = (id: string) =>
  `/2.23.133.2.1=${id}/2.23.133.2.2=COCONUT-SVSM vTPM/2.23.133.2.3=id:00000000`;

describe('EK certificate (TCG EK Credential Profile)', () => {
  let t: TestCa;
  const id = identity(1);
  const rsaEk = softEk('rsa');
  const eccEk = softEk('ecc');
  before(async () => {
    t = await testCa({
      config: {
        crlDistributionPoints: ['http://ca.example.test/platform.crl'],
        caIssuersUrl: 'http://ca.example.test/ca.crt',
      },
    });
  });
  after(async () => t.cleanup());

  it('RSA EK: every field, read with @peculiar/x509', async () => {
    t.clock.now = new Date('2026-03-01T12:00:00.750Z');
    const issued = await t.ca.issueEk({ ekPublic: encodeTpm2bPublic(rsaEk.pub), identity: id });
    const cert = new x509.X509Certificate(Uint8Array.from(issued.der).buffer);
    const caCert = new x509.X509Certificate(Uint8Array.from(t.ca.certificate).buffer);

    // TBSCertificate fields
    assert.equal(cert.serialNumber.toLowerCase(), issued.serial);
    assert.equal(issued.serial.length, 32, '16-byte serial, top bit clear');
    assert.ok(Number.parseInt(issued.serial.slice(0, 2), 16) < 0x80);
    assert.equal(cert.subject, '', 'EK certificates have an empty subject (§3.2.9)');
    assert.equal(cert.issuer, caCert.subject);
    assert.equal(cert.notBefore.toISOString(), '2026-03-01T12:00:00.000Z');
    assert.equal(
      cert.notAfter.getTime() - cert.notBefore.getTime(),
      3650 * 86_400_000,
      'EK lifetime 10 years',
    );
    assert.equal((cert.signatureAlgorithm as unknown as { name: string }).name, 'ECDSA');
    assert.equal((cert.signatureAlgorithm as unknown as { hash?: { name: string } }).hash?.name, 'SHA-384');
    const ekKey = publicToKeyObject(rsaEk.pub).export({ type: 'spki', format: 'der' });
    assert.equal(toHex(new Uint8Array(cert.publicKey.rawData)), toHex(ekKey));
    assert.ok(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }), 'signed by the CA');

    // extensions, in order, with their criticality
    assert.deepEqual(
      [...cert.extensions].map((e) => [e.type, e.critical]),
      [
        ['2.5.29.19', true],
        ['2.5.29.14', false],
        ['2.5.29.35', false],
        ['1.3.6.1.5.5.7.1.1', false],
        ['2.5.29.31', false],
        ['2.5.29.15', true],
        ['2.5.29.37', false],
        ['2.5.29.9', false],
        ['2.5.29.17', true],
        [GCE_INSTANCE_IDENTITY_OID, false],
      ],
    );
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    assert.equal(bc.ca, false);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    assert.equal(ku.usages, x509.KeyUsageFlags.keyEncipherment, 'RSA EK: keyEncipherment only (§3.2.6)');
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)!;
    assert.deepEqual([...eku.usages], ['2.23.133.8.1'], 'tcg-kp-EKCertificate');
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!;
    const bits = seqItems(asn1(new Uint8Array(ekKey)))[1] as asn1js.BitString;
    const expectSki = createHash('sha1').update(bits.valueBlock.valueHexView).digest('hex');
    assert.equal(ski.keyId, expectSki, 'SKI = SHA-1 of the subjectPublicKey bits (RFC 5280 method 1)');
    const caSki = caCert.getExtension(x509.SubjectKeyIdentifierExtension)!;
    assert.equal(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId, caSki.keyId, 'AKI = CA SKI');
    const crldp = cert.getExtension(x509.CRLDistributionPointsExtension)!;
    const dpName = crldp.distributionPoints[0]!.distributionPoint!.fullName![0]!;
    assert.equal(dpName.uniformResourceIdentifier, 'http://ca.example.test/platform.crl');
    const aia = cert.getExtension(x509.AuthorityInfoAccessExtension)!;
    assert.equal(aia.caIssuers[0]!.value, 'http://ca.example.test/ca.crt');

    // subjectAltName: one directoryName {tpmManufacturer, tpmModel, tpmVersion}, UTF8String values
    const sanExt = cert.extensions.find((e) => e.type === '2.5.29.17')!;
    const names = seqItems(asn1(new Uint8Array(sanExt.value)));
    assert.equal(names.length, 1);
    assert.equal(names[0]!.idBlock.tagClass, 3);
    assert.equal(names[0]!.idBlock.tagNumber, 4, 'GeneralName directoryName [4]');
    const rdns = seqItems((names[0] as asn1js.Constructed).valueBlock.value[0]!);
    assert.deepEqual(
      rdns.map((rdn) => {
        const atv = seqItems((rdn as asn1js.Set).valueBlock.value[0]!);
        assert.ok(atv[1] instanceof asn1js.Utf8String);
        return [(atv[0] as asn1js.ObjectIdentifier).getValue(), (atv[1] as asn1js.Utf8String).getValue()];
      }),
      [
        ['2.23.133.2.1', 'id:4D534654'],
        ['2.23.133.2.2', 'COCONUT-SVSM vTPM'],
        ['2.23.133.2.3', 'id:00000000'],
      ],
    );

    // subjectDirectoryAttributes: tcg-at-tpmSpecification {"2.0", level 0, revision 159}
    const sda = seqItems(asn1(new Uint8Array(cert.extensions.find((e) => e.type === '2.5.29.9')!.value)));
    assert.equal(sda.length, 1);
    const [attrType, attrValues] = seqItems(sda[0]!);
    assert.equal((attrType as asn1js.ObjectIdentifier).getValue(), '2.23.133.2.16');
    const spec = seqItems((attrValues as asn1js.Set).valueBlock.value[0]!);
    assert.equal((spec[0] as asn1js.Utf8String).getValue(), '2.0');
    assert.equal((spec[1] as asn1js.Integer).valueBlock.valueDec, 0);
    assert.equal((spec[2] as asn1js.Integer).valueBlock.valueDec, 159);

    // the platform identity extension round-trips
    const parsed = parseCertificate(issued.der); // the project's strict DER reader accepts it
    assert.deepEqual(readInstanceIdentity(parsed), id);
  });

  it('RSA EK: openssl shows the critical SAN directoryName, the TCG EKU and keyEncipherment', async () => {
    const issued = await t.ca.issueEk({ ekPublic: encodeTpm2bPublic(rsaEk.pub), identity: id });
    const text = opensslText(t, issued.der, 'ek-rsa');
    assert.match(text, /Subject: *\n/, 'empty subject');
    assert.match(text, /X509v3 Subject Alternative Name: critical\n\s+DirName:(.*)\n/);
    assert.equal(/DirName:(.*)\n/.exec(text)![1], TCG_SAN_DN('id:4D534654'));
    assert.match(text, /X509v3 Extended Key Usage: *\n\s+2\.23\.133\.8\.1\n/);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Key Encipherment\n/);
    assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    assert.match(text, /X509v3 Subject Directory Attributes: *\n/);
    assert.match(text, /1\.3\.6\.1\.4\.1\.11129\.2\.1\.21: *\n/);
    assert.match(text, /Public-Key: \(2048 bit\)/);
    assert.match(opensslVerify(t, issued.der, t.ca.chain), /leaf\.pem: OK/);
  });

  it('ECC EK: keyAgreement, and the same TCG fields', async () => {
    const issued = await t.ca.issueEk({ ekPublic: encodePublic(eccEk.pub), identity: id });
    const cert = new x509.X509Certificate(Uint8Array.from(issued.der).buffer);
    assert.equal(cert.getExtension(x509.KeyUsagesExtension)!.usages, x509.KeyUsageFlags.keyAgreement);
    const text = opensslText(t, issued.der, 'ek-ecc');
    assert.match(text, /X509v3 Key Usage: critical\n\s+Key Agreement\n/);
    assert.match(text, /X509v3 Subject Alternative Name: critical\n/);
    assert.match(text, /ASN1 OID: prime256v1/);
  });

  it('takes the EK as TPM2B_PUBLIC, TPMT_PUBLIC, SPKI DER or PEM and certifies the same key', async () => {
    const spki = publicToKeyObject(eccEk.pub).export({ type: 'spki', format: 'der' });
    const pem = publicToKeyObject(eccEk.pub).export({ type: 'spki', format: 'pem' }) as string;
    const forms = [
      encodeTpm2bPublic(eccEk.pub),
      encodePublic(eccEk.pub),
      new Uint8Array(spki),
      new Uint8Array(Buffer.from(pem)),
    ];
    for (const ekPublic of forms) {
      const issued = await t.ca.issueEk({ ekPublic, identity: id });
      assert.equal(toHex(parseCertificate(issued.der).subjectPublicKeyInfo), toHex(spki));
    }
  });

  it('reads a PEM EK with the strict PEM reader: one PUBLIC KEY block, nothing around it', async () => {
    const pem = publicToKeyObject(eccEk.pub).export({ type: 'spki', format: 'pem' }) as string;
    const bad = [
      `${pem}EK of vm-1\n`, // OpenSSL ignores text after the block; the strict reader does not
      certificatePem(t.ca.certificate), // OpenSSL takes the key out of a certificate
      `${pem}${pem}`,
    ];
    for (const text of bad) {
      await assert.rejects(
        t.ca.issueEk({ ekPublic: new Uint8Array(Buffer.from(text)), identity: id }),
        (e: { code: string; reason: string }) =>
          e.code === 'ERR_MALFORMED' && e.reason === 'ca.public_key.pem',
      );
    }
  });

  it('uses per-request TPM device info for the SAN', async () => {
    const tpm = { manufacturer: 'id:474F4F47', model: 'vTPM', version: 'id:20160511' };
    const issued = await t.ca.issueEk({ ekPublic: encodePublic(rsaEk.pub), identity: id, tpm });
    const text = opensslText(t, issued.der, 'ek-gce-like');
    assert.equal(
      /DirName:(.*)\n/.exec(text)![1],
      '/2.23.133.2.1=id:474F4F47/2.23.133.2.2=vTPM/2.23.133.2.3=id:20160511',
    );
  });

  it('refuses a TPM public area that is not an EK (a signing key) and logs the refusal', async () => {
    const notEk = softAk();
    await assert.rejects(
      t.ca.issueEk({ ekPublic: encodePublic(notEk.pub), identity: id }),
      refused('ca.ek_attributes'),
    );
    const log = await t.ca.readLog();
    const last = log[log.length - 1]!;
    assert.deepEqual(
      [last.kind, last.decision, last.reasons],
      ['ca.issue_ek', 'refuse', ['ca.ek_attributes']],
    );
  });

  it('refuses unusable input with typed errors', async () => {
    await assert.rejects(
      t.ca.issueEk({ ekPublic: new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]), identity: id }),
      (e: { code: string; reason: string }) => e.code === 'ERR_MALFORMED' && e.reason === 'ca.public_key',
    );
    await assert.rejects(
      t.ca.issueEk({ ekPublic: encodePublic(rsaEk.pub), identity: { ...id, projectNumber: -1n } }),
      (e: { code: string; reason: string }) =>
        e.code === 'ERR_INVALID_ARGUMENT' && e.reason === 'x509.instance_identity.project_number',
    );
    await assert.rejects(
      t.ca.issueEk({ ekPublic: encodePublic(rsaEk.pub), identity: id, format: 'pdf' as never }),
      (e: { code: string; reason: string }) => e.code === 'ERR_INVALID_ARGUMENT' && e.reason === 'ca.format',
    );
  });

  it(
    'has the same TCG extensions, with the same criticality, as a real GCE EK certificate',
    needsVectors,
    async () => {
      const gce = new x509.X509Certificate(
        readVectorText('tpm', 'gce-go-tpm-tools', 'certificates', 'uca_tpm_ecc_enc_cert.pem'),
      );
      const ours = new x509.X509Certificate(
        Uint8Array.from((await t.ca.issueEk({ ekPublic: encodePublic(eccEk.pub), identity: id })).der).buffer,
      );
      const shape = (c: InstanceType<typeof x509.X509Certificate>) =>
        c.extensions
          .filter((e) => e.type !== '2.5.29.14') // GCE omits the SKI; the brief asks for it
          .map((e) => `${e.type}${e.critical ? '!' : ''}`)
          .sort();
      assert.deepEqual(shape(ours), shape(gce));
      assert.equal(ours.subject, gce.subject);
      // and the identity extension reads back the same way from both
      const gceId = parseInstanceIdentity(
        new Uint8Array(gce.extensions.find((e) => e.type === GCE_INSTANCE_IDENTITY_OID)!.value),
      );
      assert.equal(typeof gceId.instanceName, 'string');
    },
  );
});

describe('EK certificate options', () => {
  it('writes the identity under a configured OID, with configured securityProperties', async () => {
    const oid = '1.3.6.1.4.1.99999.1.2';
    const t = await testCa({
      config: { identityOid: oid, identitySecurityProperties: { isProduction: true, securityVersion: 3n } },
    });
    try {
      const id = identity(2);
      const issued = await t.ca.issueEk({ ekPublic: encodePublic(softEk('ecc').pub), identity: id });
      const c = parseCertificate(issued.der);
      assert.equal(findExtension(c, GCE_INSTANCE_IDENTITY_OID), undefined);
      assert.deepEqual(readInstanceIdentity(c, oid), {
        ...id,
        securityProperties: { securityVersion: 3n, isProduction: true },
      });
    } finally {
      await t.cleanup();
    }
  });

  it('an RSA-2048 CA signs with sha256WithRSAEncryption', async () => {
    const t = await testCa({ keyType: 'rsa2048' });
    try {
      const issued = await t.ca.issueEk({ ekPublic: encodePublic(softEk('rsa').pub), identity: identity(3) });
      const cert = new x509.X509Certificate(Uint8Array.from(issued.der).buffer);
      assert.equal((cert.signatureAlgorithm as unknown as { name: string }).name, 'RSASSA-PKCS1-v1_5');
      const caCert = new x509.X509Certificate(Uint8Array.from(t.ca.certificate).buffer);
      assert.ok(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }));
      assert.match(opensslText(t, issued.der, 'ek-rsa-ca'), /Signature Algorithm: sha256WithRSAEncryption/);
    } finally {
      await t.cleanup();
    }
  });

  it('an intermediate CA issued by a root: chain verifies with openssl; nothing outlives the CA', async () => {
    const root = await testCa({
      config: { lifetimes: { caDays: 40, ekDays: 3650, akDays: 365, crlDays: 7 } },
    });
    const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-int-'));
    try {
      const inter = await PlatformCa.init({
        dir,
        issuer: root.ca,
        subject: 'CN=Vouchsafe Issuing CA, O=Test',
        now: () => root.clock.now,
      });
      assert.equal(inter.chain.length, 2);
      const interCert = new x509.X509Certificate(Uint8Array.from(inter.certificate).buffer);
      const bc = interCert.getExtension(x509.BasicConstraintsExtension)!;
      assert.equal(bc.ca, true);
      assert.equal(bc.pathLength, 0);
      assert.equal(interCert.issuer, 'CN=Vouchsafe Platform CA');
      const issued = await inter.issueEk({
        ekPublic: encodePublic(softEk('ecc').pub),
        identity: identity(4),
      });
      assert.match(opensslVerify(root, issued.der, inter.chain), /leaf\.pem: OK/);
      // The root issued the intermediate for 40 days (caDays); the EK (10 years) is cut to the intermediate's end.
      assert.equal(issued.notAfter.getTime(), interCert.notAfter.getTime());
      const rootRecords = await root.ca.repository.listCertificates({ kind: 'intermediate' });
      assert.equal(rootRecords.length, 1, 'the root recorded the intermediate it issued');
      await inter.close();
      // reopen from disk: same certificate, key matches
      const again = await PlatformCa.open(dir);
      assert.deepEqual(again.certificate, inter.certificate);
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await root.cleanup();
    }
  });
});
