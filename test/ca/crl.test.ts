import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CA_FILES, CrlReason, certificatePem, crlPem, PlatformCa } from '../../src/ca/index.js';
import { x509 } from '../../src/ca/x509-lib.js';
import { errorWith } from '../helpers/assert-error.js';
import { identity, openssl, softEk, type TestCa, testCa } from './fixtures.js';

/** Revocation, X.509 v2 CRLs (RFC 5280 §5) and the issuance log. */

describe('revocation and CRL', () => {
  let t: TestCa;
  const serials: string[] = [];

  before(async () => {
    t = await testCa();
    for (let i = 0; i < 3; i++) {
      serials.push(
        (await t.ca.issueEk({ ekPublic: softEk('ecc').parsed.raw, identity: identity(50 + i) })).serial,
      );
    }
  });
  after(async () => t.cleanup());

  it('a CRL with no revocations has no entries and CRL number 1', async () => {
    t.clock.now = new Date('2026-05-01T00:00:00Z');
    const rec = await t.ca.generateCrl();
    assert.equal(rec.number, 1);
    const crl = new x509.X509Crl(Uint8Array.from(rec.der).buffer);
    assert.equal(crl.entries.length, 0);
    assert.equal(crl.thisUpdate.toISOString(), '2026-05-01T00:00:00.000Z');
    assert.equal(
      crl.nextUpdate!.toISOString(),
      '2026-05-08T00:00:00.000Z',
      'nextUpdate = thisUpdate + 7 days',
    );
  });

  it('lists revoked serials with their reasons, has an increasing CRL number, verifies with the CA key', async () => {
    t.clock.now = new Date('2026-05-02T00:00:00Z');
    assert.equal(await t.ca.revoke(serials[0]!, CrlReason.keyCompromise), 'revoked');
    assert.equal(await t.ca.revoke(serials[2]!.toUpperCase()), 'revoked', 'serials are case-insensitive');
    const rec = await t.ca.generateCrl();
    assert.equal(rec.number, 2);
    const crl = new x509.X509Crl(Uint8Array.from(rec.der).buffer);
    const caCert = new x509.X509Certificate(Uint8Array.from(t.ca.certificate).buffer);
    assert.ok(await crl.verify({ publicKey: caCert.publicKey }), 'CRL signature verifies with the CA key');
    assert.equal(crl.issuer, caCert.subject);
    assert.deepEqual(
      crl.entries
        .map((e) => [e.serialNumber.toLowerCase(), e.reason ?? null, e.revocationDate.toISOString()])
        .sort(),
      [
        [serials[0], x509.X509CrlReason.keyCompromise, '2026-05-02T00:00:00.000Z'],
        [serials[2], null, '2026-05-02T00:00:00.000Z'],
      ].sort(),
    );
    const number = crl.extensions.find((e) => e.type === '2.5.29.20')!;
    assert.equal(Buffer.from(number.value).toString('hex'), '020102', 'cRLNumber INTEGER 2');
    const aki = crl.extensions.find((e) => e.type === '2.5.29.35');
    assert.ok(aki, 'authorityKeyIdentifier');

    // openssl: signature and contents
    const crlFile = join(t.dir, 'crl.pem');
    const caFile = join(t.dir, 'ca.pem');
    writeFileSync(crlFile, crlPem(rec.der));
    writeFileSync(caFile, certificatePem(t.ca.certificate));
    const text = openssl(['crl', '-in', crlFile, '-CAfile', caFile, '-noout', '-text']);
    assert.match(text, /Version 2/);
    assert.match(text, /X509v3 CRL Number: *\n\s+2\n/);
    assert.match(text, new RegExp(`Serial Number: ${serials[0]!.toUpperCase()}[\\s\\S]*?Key Compromise`));
    assert.match(text, new RegExp(`Serial Number: ${serials[2]!.toUpperCase()}`));
    assert.doesNotMatch(text, new RegExp(serials[1]!.toUpperCase()));
  });

  it('revoking again changes nothing; unknown serials and reasons are refused', async () => {
    const before = (await t.ca.readLog()).length;
    assert.equal(await t.ca.revoke(serials[0]!, CrlReason.superseded), 'already_revoked');
    assert.equal((await t.ca.readLog()).length, before, 'no log entry for a no-op');
    await assert.rejects(
      t.ca.revoke('00112233445566778899aabbccddeeff'),
      errorWith('ERR_INVALID_ARGUMENT', 'ca.serial_unknown'),
    );
    await assert.rejects(t.ca.revoke('not hex'), errorWith('ERR_INVALID_ARGUMENT', 'ca.serial_unknown'));
    await assert.rejects(t.ca.revoke(serials[1]!, 7), errorWith('ERR_INVALID_ARGUMENT', 'ca.crl_reason'));
    const rec = await t.ca.repository.getCertificate(serials[0]!);
    assert.equal(rec!.revocationReason, CrlReason.keyCompromise, 'the first revocation stands');
  });

  it('every issuance, revocation and CRL is in the hash-chained log', async () => {
    const log = await t.ca.readLog();
    assert.deepEqual(
      log.map((e) => e.kind),
      ['ca.init', 'ca.issue_ek', 'ca.issue_ek', 'ca.issue_ek', 'ca.crl', 'ca.revoke', 'ca.revoke', 'ca.crl'],
    );
    assert.deepEqual(log[5]!.details, { serial: serials[0]!, reason: 1 });
    assert.equal(log[7]!.details.crlNumber, 2);
    assert.equal(log[0]!.prevHash, '0'.repeat(64));
    for (let i = 1; i < log.length; i++) assert.equal(log[i]!.prevHash, log[i - 1]!.hash);
    assert.deepEqual(await t.ca.verifyLog(), { ok: true, entries: 8, headHash: log[7]!.hash });
  });

  it('the log is append-only in the database, and an edit behind its back is detected', async () => {
    const db = new Database(join(t.dir, CA_FILES.database));
    try {
      assert.throws(() => db.prepare("UPDATE ca_log SET kind = 'x' WHERE seq = 2").run(), /append-only/);
      assert.throws(() => db.prepare('DELETE FROM ca_log WHERE seq = 2').run(), /append-only/);
      // An attacker with write access drops the trigger and edits an entry: the chain no longer verifies.
      db.exec('DROP TRIGGER ca_log_no_update');
      db.prepare('UPDATE ca_log SET reasons = \'["ca.forged"]\' WHERE seq = 3').run();
    } finally {
      db.close();
    }
    const reopened = await PlatformCa.open(t.dir);
    try {
      assert.deepEqual(await reopened.verifyLog(), { ok: false, entries: 2, seq: 3, problem: 'audit.hash' });
    } finally {
      await reopened.close();
    }
  });
});
