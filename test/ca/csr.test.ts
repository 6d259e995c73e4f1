import assert from 'node:assert/strict';
import { KeyObject, webcrypto } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCertificationRequest } from '../../src/ca/index.js';
import { x509 } from '../../src/ca/x509-lib.js';
import {
  extensionsToC509,
  signC509Csr,
  specialTextFromString,
  x509CsrToC509,
} from '../../src/formats/c509/index.js';
import {
  bitString,
  explicit,
  integer,
  oid,
  oidContentFromString,
  sequence,
  setOf,
  tlv,
} from '../../src/formats/der/writer.js';
import { svsmReportData } from '../../src/formats/svsm/manifest.js';
import {
  encodePublic,
  parsePublic,
  publicFromKeyObject,
  publicToKeyObject,
  TPM_ALG,
} from '../../src/formats/tpm/index.js';
import { errorWith } from '../helpers/assert-error.js';
import {
  AK_ATTRIBUTES,
  activateOnTpm,
  identity,
  openssl,
  refused,
  servicesManifest,
  simGuest,
  softEk,
  stopAllTpms,
  type TestCa,
  testCa,
  vtpmWithKeys,
} from './fixtures.js';

/**
 * Certification requests for AKs: PKCS#10 (checked with @peculiar/x509) and C509 (type 2 natively signed,
 * type 3 re-encoded). The request's key must be the AK; what names it may add is CA policy.
 */

type Keys = { privateKey: webcrypto.CryptoKey; publicKey: webcrypto.CryptoKey };

async function softAkWithCryptoKeys(): Promise<{ keys: Keys; tpmt: Uint8Array }> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as Keys;
  const pub = KeyObject.from(keys.publicKey as never);
  const tpmt = encodePublic(
    publicFromKeyObject(pub, {
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: AK_ATTRIBUTES,
      scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
    }),
  );
  return { keys, tpmt };
}

async function pkcs10(
  keys: Keys,
  name: string,
  san?: { type: 'dns' | 'url'; value: string }[],
): Promise<Uint8Array> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: san ? [new x509.SubjectAlternativeNameExtension(san)] : [],
  });
  return new Uint8Array(csr.rawData);
}

const sanOid = '2.5.29.17';

describe('AK certification requests (route a, software AK)', () => {
  let t: TestCa;
  const ek = softEk('ecc');
  const id = identity(40);

  before(async () => {
    t = await testCa({ config: { csr: { subject: 'request', allowedSan: ['dns'] } } });
    await t.ca.issueEk({ ekPublic: ek.parsed.raw, identity: id });
  });
  after(async () => t.cleanup());

  async function teeRequest(akTpmt: Uint8Array, csr: Uint8Array) {
    const manifest = servicesManifest(ek.pub, parsePublic(akTpmt));
    const nonce = await t.ca.createNonce(id.instanceId);
    const { report, certTable } = simGuest(t.chain).getReport(svsmReportData(nonce, manifest));
    return { instanceId: id.instanceId, nonce, report, certTable, manifest, csr };
  }

  it('PKCS#10: verifies it, takes its subject and allowed DNS name (policy subject=request, SAN dns)', async () => {
    const ak = await softAkWithCryptoKeys();
    const csr = await pkcs10(ak.keys, 'CN=vm-40.internal, O=Tenant', [
      { type: 'dns', value: 'vm-40.example.test' },
    ]);
    const parsed = await parseCertificationRequest(csr);
    assert.equal(parsed.format, 'pkcs10');
    assert.deepEqual(
      parsed.subjectAltNames.map((n) => n.type),
      ['dns'],
    );
    const issued = await t.ca.issueAkFromTee(await teeRequest(ak.tpmt, csr));
    const cert = new x509.X509Certificate(Uint8Array.from(issued.der).buffer);
    assert.equal(cert.subject, 'CN=vm-40.internal, O=Tenant');
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    assert.equal(san.critical, false);
    const types = san.names.items.map((n) => n.type);
    assert.deepEqual(types, ['dn', 'dns'], 'the TPM directoryName, then the requested DNS name');
    assert.equal(san.names.items[1]!.value, 'vm-40.example.test');
    assert.deepEqual(
      [...cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages],
      ['2.23.133.8.3'],
      "EKU is the CA's",
    );
  });

  it('refuses a request whose signature does not verify', async () => {
    const ak = await softAkWithCryptoKeys();
    const csr = await pkcs10(ak.keys, 'CN=x');
    csr[csr.length - 5]! ^= 0x01;
    await assert.rejects(
      parseCertificationRequest(csr),
      errorWith('ERR_SIGNATURE_INVALID', 'ca.csr.signature'),
    );
    await assert.rejects(
      t.ca.issueAkFromTee(await teeRequest(ak.tpmt, csr)),
      errorWith('ERR_SIGNATURE_INVALID', 'ca.csr.signature'),
    );
  });

  it('refuses a request for another key', async () => {
    const ak = await softAkWithCryptoKeys();
    const stranger = await softAkWithCryptoKeys();
    const csr = await pkcs10(stranger.keys, 'CN=x');
    await assert.rejects(t.ca.issueAkFromTee(await teeRequest(ak.tpmt, csr)), refused('ca.csr_key_mismatch'));
  });

  it('refuses a subjectAltName type the policy does not allow', async () => {
    const ak = await softAkWithCryptoKeys();
    const csr = await pkcs10(ak.keys, 'CN=x', [{ type: 'url', value: 'https://evil.example' }]);
    await assert.rejects(
      t.ca.issueAkFromTee(await teeRequest(ak.tpmt, csr)),
      refused('ca.csr_name_not_allowed'),
    );
  });

  it('refuses malformed requests with typed errors', async () => {
    await assert.rejects(
      parseCertificationRequest(new Uint8Array([0x30, 0x02, 0x05, 0x00])),
      errorWith('ERR_MALFORMED', 'ca.csr.malformed'),
    );
    await assert.rejects(
      parseCertificationRequest(new Uint8Array()),
      errorWith('ERR_MALFORMED', 'ca.csr.size'),
    );
    await assert.rejects(
      parseCertificationRequest(new Uint8Array([0x82, 0x01, 0x02])),
      (e: { code: string }) => e.code === 'ERR_MALFORMED',
    );
  });

  it('C509 type 3 (re-encoded PKCS#10) and type 2 (natively signed) requests', async () => {
    const ak = await softAkWithCryptoKeys();
    const der = await pkcs10(ak.keys, 'CN=vm-40-c509', [{ type: 'dns', value: 'c509.example.test' }]);
    const type3 = x509CsrToC509(der);
    const p3 = await parseCertificationRequest(type3);
    assert.equal(p3.format, 'c509-type3');
    assert.equal((await t.ca.issueAkFromTee(await teeRequest(ak.tpmt, type3))).kind, 'ak');

    const privateKey = KeyObject.from(ak.keys.privateKey as never);
    const sanDer = sequence(tlv(0x82, new Uint8Array(Buffer.from('native.example.test'))));
    const extensions = extensionsToC509([
      { oid: oidContentFromString(sanOid), critical: false, value: sanDer },
    ]);
    const type2 = signC509Csr(
      { subject: specialTextFromString('vm-40-native'), attributes: [0, extensions] },
      privateKey,
    );
    const p2 = await parseCertificationRequest(type2);
    assert.equal(p2.format, 'c509-type2');
    assert.deepEqual(
      p2.subjectAltNames.map((n) => n.type),
      ['dns'],
    );
    const issued = await t.ca.issueAkFromTee(await teeRequest(ak.tpmt, type2));
    const cert = new x509.X509Certificate(Uint8Array.from(issued.der).buffer);
    assert.equal(cert.subject, 'CN=vm-40-native');
    assert.equal(
      cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.items[1]!.value,
      'native.example.test',
    );

    const bad = Uint8Array.from(type2);
    bad[bad.length - 3]! ^= 1;
    await assert.rejects(
      parseCertificationRequest(bad),
      errorWith('ERR_SIGNATURE_INVALID', 'ca.csr.signature'),
    );
  });

  it('with the default policy (template subject, no SANs) a request cannot choose its subject', async () => {
    const t2 = await testCa();
    try {
      await t2.ca.issueEk({ ekPublic: ek.parsed.raw, identity: id });
      const ak = await softAkWithCryptoKeys();
      const csr = await pkcs10(ak.keys, 'CN=I am the CA');
      const manifest = servicesManifest(ek.pub, parsePublic(ak.tpmt));
      const nonce = await t2.ca.createNonce(id.instanceId);
      const { report, certTable } = simGuest(t2.chain).getReport(svsmReportData(nonce, manifest));
      const issued = await t2.ca.issueAkFromTee({
        instanceId: id.instanceId,
        nonce,
        report,
        certTable,
        manifest,
        csr,
      });
      const cert = new x509.X509Certificate(Uint8Array.from(issued.der).buffer);
      assert.equal(
        cert.subject,
        `L=europe-west4-a, O=Vouchsafe Platform CA, OU=vouchsafe-test, CN=${id.instanceId}`,
      );
      const dnsCsr = await pkcs10(ak.keys, 'CN=x', [{ type: 'dns', value: 'a.example' }]);
      const n2 = await t2.ca.createNonce(id.instanceId);
      const r2 = simGuest(t2.chain).getReport(svsmReportData(n2, manifest));
      await assert.rejects(
        t2.ca.issueAkFromTee({ instanceId: id.instanceId, nonce: n2, ...r2, manifest, csr: dnsCsr }),
        refused('ca.csr_name_not_allowed'),
      );
    } finally {
      await t2.cleanup();
    }
  });
});

describe('AK certification request signed by the real vTPM AK (route b)', () => {
  after(async () => stopAllTpms());

  it('a PKCS#10 request signed with the restricted AK (TPM2_Hash ticket + TPM2_Sign) is accepted', async () => {
    const t = await testCa({ config: { csr: { subject: 'request', allowedSan: ['dns'] } } });
    try {
      const v = await vtpmWithKeys('rsa', 'ecc');
      const id = identity(41);
      await t.ca.issueEk({ ekPublic: v.ekFile, identity: id });

      // CertificationRequestInfo for the AK (RFC 2986 §4.1) with an extensionRequest for a DNS name
      const spki = new Uint8Array(publicToKeyObject(v.ak).export({ type: 'spki', format: 'der' }));
      const subject = sequence(
        setOf(sequence(oid('2.5.4.3'), tlv(0x0c, new Uint8Array(Buffer.from('vm-41 AK'))))),
      );
      const san = sequence(
        oid(sanOid),
        tlv(0x04, sequence(tlv(0x82, new Uint8Array(Buffer.from('vm-41.example.test'))))),
      );
      const extReq = sequence(oid('1.2.840.113549.1.9.14'), setOf(sequence(san)));
      // attributes [0] IMPLICIT SET OF Attribute: a constructed [0], which is what explicit() writes
      const info = sequence(integer(0), subject, spki, explicit(0, extReq));
      writeFileSync(join(v.t.dir, 'cri.der'), info);
      // tpm2_sign hashes the message with TPM2_Hash, whose ticket lets a restricted key sign it (it does
      // not start with TPM_GENERATED_VALUE).
      v.t.tool('tpm2_sign', ['-c', 'ak.ctx', '-g', 'sha256', '-f', 'plain', '-o', 'cri.sig', 'cri.der']);
      v.t.tool('tpm2_flushcontext', ['-t']);
      const sig = new Uint8Array(readFileSync(join(v.t.dir, 'cri.sig')));
      const csr = sequence(info, sequence(oid('1.2.840.10045.4.3.2')), bitString(sig));
      writeFileSync(join(v.t.dir, 'ak.csr'), csr);
      // an independent check of the TPM-signed request (throws on a bad signature)
      openssl(['req', '-inform', 'DER', '-in', join(v.t.dir, 'ak.csr'), '-noout', '-verify']);

      const challenge = await t.ca.startActivation({ instanceId: id.instanceId, akPublic: v.akFile, csr });
      const issued = await t.ca.finishActivation({
        activationId: challenge.activationId,
        secret: activateOnTpm(v, challenge.credentialFile),
      });
      const cert = new x509.X509Certificate(Uint8Array.from(issued.der).buffer);
      assert.equal(cert.subject, 'CN=vm-41 AK');
      assert.equal(
        cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.items[1]!.value,
        'vm-41.example.test',
      );
    } finally {
      await t.cleanup();
    }
  });
});
