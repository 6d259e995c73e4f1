import assert from 'node:assert/strict';
import { randomBytes, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { x509 } from '../../src/ca/x509-lib.js';
import { parseCredentialFile, publicToKeyObject } from '../../src/formats/tpm/index.js';
import { parseCertificate } from '../../src/formats/x509/certificate.js';
import { readInstanceIdentity } from '../../src/formats/x509/instance-identity.js';
import { toHex } from '../../src/util/bytes.js';
import {
  activateOnTpm,
  identity,
  refused,
  softAk,
  stopAllTpms,
  type TestCa,
  testCa,
  type VtpmKeys,
  vtpmWithKeys,
} from './fixtures.js';

/**
 * Route (b), end to end: the CA makes a credential in software (TPM2_MakeCredential) to the instance's
 * certified EK, bound to the AK's Name; the real vTPM (swtpm) opens it with TPM2_ActivateCredential under
 * the low-range EK's PolicySecret(endorsement) session; the CA compares the returned secret in constant
 * time and issues the AK certificate.
 */

describe('vTPM fixture', () => {
  it('fails, naming the Debian packages, when swtpm or tpm2-tools are missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await assert.rejects(vtpmWithKeys(), /install the Debian packages swtpm swtpm-tools tpm2-tools/);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('AK certificate, route (b): credential activation with a real vTPM', () => {
  let t: TestCa;
  let v: VtpmKeys;
  let other: VtpmKeys;
  const id = identity(30);

  before(async () => {
    t = await testCa();
    v = await vtpmWithKeys('rsa', 'ecc');
    other = await vtpmWithKeys('rsa', 'ecc'); // another TPM: another EK
    await t.ca.issueEk({ ekPublic: v.ekFile, identity: id });
  });
  after(async () => {
    await stopAllTpms();
    await t.cleanup();
  });

  it('issues the AK certificate once the vTPM returns the secret (EK public area on record)', async () => {
    const challenge = await t.ca.startActivation({ instanceId: id.instanceId, akPublic: v.akFile });
    assert.equal(challenge.credentialFile.length, 336, 'RSA-2048 EK credential file (tpm2-tools format)');
    assert.deepEqual(parseCredentialFile(challenge.credentialFile), challenge.credential);
    const secret = activateOnTpm(v, challenge.credentialFile);
    assert.equal(secret.length, 32);
    const issued = await t.ca.finishActivation({ activationId: challenge.activationId, secret });

    const cert = new x509.X509Certificate(Uint8Array.from(issued.der).buffer);
    const caCert = new x509.X509Certificate(Uint8Array.from(t.ca.certificate).buffer);
    assert.ok(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }));
    assert.equal(
      toHex(new Uint8Array(cert.publicKey.rawData)),
      toHex(publicToKeyObject(v.ak).export({ type: 'spki', format: 'der' })),
    );
    assert.deepEqual([...cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages], ['2.23.133.8.3']);
    assert.deepEqual(readInstanceIdentity(parseCertificate(issued.der)), id);

    // the vTPM's AK signs; the certified key verifies it
    writeFileSync(join(v.t.dir, 'm.bin'), 'hello from the AK');
    v.t.tool('tpm2_sign', ['-c', 'ak.ctx', '-g', 'sha256', '-f', 'plain', '-o', 'm.sig', 'm.bin']);
    v.t.tool('tpm2_flushcontext', ['-t']);
    const spki = parseCertificate(issued.der).subjectPublicKeyInfo;
    assert.ok(
      verify(
        'sha256',
        Buffer.from('hello from the AK'),
        { key: Buffer.from(spki), format: 'der', type: 'spki' },
        readFileSync(join(v.t.dir, 'm.sig')),
      ),
    );

    const log = await t.ca.readLog();
    const kinds = log.slice(-2).map((e) => [e.kind, e.decision, e.details.route ?? null]);
    assert.deepEqual(kinds, [
      ['ca.activation_start', 'accept', null],
      ['ca.issue_ak', 'accept', 'activation'],
    ]);
  });

  it('works with the EK public area passed explicitly (ECC AK on an RSA EK, RSA AK on an ECC EK)', async () => {
    const challenge = await t.ca.startActivation({
      instanceId: id.instanceId,
      akPublic: v.akFile,
      ekPublic: v.ekFile,
    });
    const issued = await t.ca.finishActivation({
      activationId: challenge.activationId,
      secret: activateOnTpm(v, challenge.credentialFile),
    });
    assert.equal(issued.kind, 'ak');

    const ecc = await vtpmWithKeys('ecc', 'rsa');
    const eccId = identity(31);
    await t.ca.issueEk({ ekPublic: ecc.ekFile, identity: eccId });
    const c2 = await t.ca.startActivation({ instanceId: eccId.instanceId, akPublic: ecc.akFile });
    assert.equal(c2.credentialFile.length, 148, 'P-256 EK credential file');
    const issued2 = await t.ca.finishActivation({
      activationId: c2.activationId,
      secret: activateOnTpm(ecc, c2.credentialFile),
    });
    const cert = new x509.X509Certificate(Uint8Array.from(issued2.der).buffer);
    assert.equal(cert.publicKey.algorithm.name, 'RSASSA-PKCS1-v1_5');
  });

  it('refuses a wrong secret', async () => {
    const challenge = await t.ca.startActivation({ instanceId: id.instanceId, akPublic: v.akFile });
    const guess = new Uint8Array(randomBytes(32));
    await assert.rejects(
      t.ca.finishActivation({ activationId: challenge.activationId, secret: guess }),
      refused('ca.activation_failed'),
    );
    // and the activation is spent: even the right secret no longer works
    const right = activateOnTpm(v, challenge.credentialFile);
    await assert.rejects(
      t.ca.finishActivation({ activationId: challenge.activationId, secret: right }),
      refused('ca.activation_unknown'),
    );
  });

  it('another TPM cannot activate the credential (it is sealed to this EK)', async () => {
    // The attacker presents its own AK for our instance; the CA seals to the instance's certified EK.
    const challenge = await t.ca.startActivation({ instanceId: id.instanceId, akPublic: other.akFile });
    assert.throws(() => activateOnTpm(other, challenge.credentialFile), /tpm2_activatecredential/);
    // Without the secret, anything it returns is refused.
    await assert.rejects(
      t.ca.finishActivation({ activationId: challenge.activationId, secret: new Uint8Array(32) }),
      refused('ca.activation_failed'),
    );
  });

  it('the credential is bound to the AK Name: another key of the same TPM cannot open it', async () => {
    // A second AK in the same vTPM
    v.t.tool('tpm2_createak', [
      '-C',
      '0x81010001',
      '-c',
      'ak2.ctx',
      '-G',
      'ecc',
      '-s',
      'ecdsa',
      '-g',
      'sha256',
      '-u',
      'ak2.pub',
      '-n',
      'ak2.name',
      '-r',
      'ak2.priv',
    ]);
    v.t.tool('tpm2_flushcontext', ['-t']);
    const challenge = await t.ca.startActivation({ instanceId: id.instanceId, akPublic: v.akFile });
    assert.throws(() => activateOnTpm(v, challenge.credentialFile, 'ak2.ctx'), /tpm2_activatecredential/);
    // the right AK still opens it
    const secret = activateOnTpm(v, challenge.credentialFile);
    assert.equal((await t.ca.finishActivation({ activationId: challenge.activationId, secret })).kind, 'ak');
  });

  it('refuses an expired activation', async () => {
    const challenge = await t.ca.startActivation({ instanceId: id.instanceId, akPublic: v.akFile });
    const secret = activateOnTpm(v, challenge.credentialFile);
    const saved = t.clock.now;
    t.clock.now = new Date(saved.getTime() + 301_000);
    try {
      await assert.rejects(
        t.ca.finishActivation({ activationId: challenge.activationId, secret }),
        refused('ca.activation_expired'),
      );
    } finally {
      t.clock.now = saved;
    }
  });

  it('refuses an unknown activation id', async () => {
    await assert.rejects(
      t.ca.finishActivation({ activationId: 'no-such-activation', secret: new Uint8Array(32) }),
      refused('ca.activation_unknown'),
    );
  });

  it("refuses an EK that is not the instance's and an instance without an EK certificate", async () => {
    await assert.rejects(
      t.ca.startActivation({ instanceId: id.instanceId, akPublic: v.akFile, ekPublic: other.ekFile }),
      refused('ca.ek_mismatch'),
    );
    await assert.rejects(
      t.ca.startActivation({ instanceId: identity(39).instanceId, akPublic: v.akFile }),
      refused('ca.instance_unknown'),
    );
  });

  it('refuses an AK without restricted/fixedTPM/fixedParent attributes', async () => {
    await assert.rejects(
      t.ca.startActivation({ instanceId: id.instanceId, akPublic: softAk(0x00040072).parsed.raw }),
      refused('ca.ak_attributes'),
      'not restricted',
    );
    await assert.rejects(
      t.ca.startActivation({ instanceId: id.instanceId, akPublic: softAk(0x00050060).parsed.raw }),
      refused('ca.ak_attributes'),
      'neither fixedTPM nor fixedParent',
    );
  });

  it('refuses when the EK certificate was revoked between start and finish', async () => {
    const inst = identity(32);
    const ekCert = await t.ca.issueEk({ ekPublic: v.ekFile, identity: inst });
    const challenge = await t.ca.startActivation({ instanceId: inst.instanceId, akPublic: v.akFile });
    const secret = activateOnTpm(v, challenge.credentialFile);
    await t.ca.revoke(ekCert.serial);
    await assert.rejects(
      t.ca.finishActivation({ activationId: challenge.activationId, secret }),
      refused('ca.instance_unknown'),
    );
    assert.equal((await t.ca.verifyLog()).ok, true);
  });
});
