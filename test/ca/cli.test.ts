import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseC509Certificate } from '../../src/formats/c509/index.js';
import { svsmReportData } from '../../src/formats/svsm/manifest.js';
import { sharedSimChain } from '../../src/sim/snp/index.js';
import { loaderFor, sibling } from '../helpers/paths.js';
import {
  activateOnTpm,
  identity,
  openssl,
  servicesManifest,
  simGuest,
  stopAllTpms,
  type VtpmKeys,
  vtpmWithKeys,
} from './fixtures.js';

/**
 * `vouchsafe ca` end to end through commander, in a child process (test/ca/cli-driver.ts registers the
 * module as src/cli/main.ts will). Exit codes: 0 done, 1 refused, 2 unusable input.
 */

const driver = sibling(import.meta.url, 'cli-driver.ts');
const tmp = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-cli-'));
const dir = join(tmp, 'ca');
const f = (name: string) => join(tmp, name);

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [...loaderFor(driver), driver, 'ca', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('vouchsafe ca', () => {
  let v: VtpmKeys;
  const id = identity(80);
  let ekSerial = '';

  before(async () => {
    v = await vtpmWithKeys('rsa', 'ecc');
  });
  after(async () => {
    await stopAllTpms();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('init creates the CA directory; a second init is refused as unusable (2)', () => {
    const r = cli('init', '--dir', dir, '--crl-url', 'http://ca.example.test/p.crl');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^-----BEGIN CERTIFICATE-----/);
    assert.equal(statSync(join(dir, 'ca-key.pem')).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'ca.json'), 'utf8')).crlDistributionPoints, [
      'http://ca.example.test/p.crl',
    ]);
    const again = cli('init', '--dir', dir);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /ERR_INVALID_ARGUMENT ca\.init\.exists/);
  });

  it('issue-ek writes a TCG EK certificate for the identity flags', () => {
    writeFileSync(f('ek.pub'), v.ekFile);
    const r = cli(
      'issue-ek',
      '--dir',
      dir,
      '--ek-pub',
      f('ek.pub'),
      '--project-id',
      id.projectId,
      '--project-number',
      String(id.projectNumber),
      '--zone',
      id.zone,
      '--instance-id',
      String(id.instanceId),
      '--instance-name',
      id.instanceName,
      '--out',
      f('ek.pem'),
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    ekSerial = out.serial;
    assert.equal(out.kind, 'ek');
    const text = openssl(['x509', '-in', f('ek.pem'), '-noout', '-text']);
    assert.match(text, /X509v3 Subject Alternative Name: critical/);
    assert.match(text, /2\.23\.133\.8\.1/);
  });

  it('issue-ek with --identity JSON and --format c509 writes a natively signed C509 certificate', () => {
    const json = JSON.stringify({
      ...identity(81),
      projectNumber: '123456789012',
      instanceId: String(identity(81).instanceId),
    });
    const r = cli(
      'issue-ek',
      '--dir',
      dir,
      '--ek-pub',
      f('ek.pub'),
      '--identity',
      json,
      '--format',
      'c509',
      '--out',
      f('ek.c509'),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseC509Certificate(new Uint8Array(readFileSync(f('ek.c509')))).type, 2);
  });

  it('unusable input exits 2 with code and reason', () => {
    const noId = cli('issue-ek', '--dir', dir, '--ek-pub', f('ek.pub'));
    assert.equal(noId.code, 2);
    assert.match(noId.stderr, /ERR_INVALID_ARGUMENT cli\.identity/);
    writeFileSync(f('junk.pub'), 'junk');
    const junk = cli(
      'issue-ek',
      '--dir',
      dir,
      '--ek-pub',
      f('junk.pub'),
      '--identity',
      '{"projectId":"p","projectNumber":1,"zone":"z","instanceId":2,"instanceName":"n"}',
    );
    assert.equal(junk.code, 2);
    assert.match(junk.stderr, /ERR_NOT_SUPPORTED tpm\.public\.type/);
    const missingDir = cli('crl', '--dir', f('nope'));
    assert.equal(missingDir.code, 2);
    assert.match(missingDir.stderr, /ca\.open/);
    const usage = cli('issue-ak', '--dir', dir);
    assert.equal(usage.code, 2, 'missing --route is a usage error');
  });

  it('issue-ak --route activation, both steps, with the real vTPM', () => {
    writeFileSync(f('ak.pub'), v.akFile);
    const start = cli(
      'issue-ak',
      '--dir',
      dir,
      '--route',
      'activation',
      '--instance-id',
      String(id.instanceId),
      '--ak-pub',
      f('ak.pub'),
      '--credential-out',
      f('cred.out'),
    );
    assert.equal(start.code, 0, start.stderr);
    const activationId = start.stdout.trim();
    const secret = activateOnTpm(v, new Uint8Array(readFileSync(f('cred.out'))));
    writeFileSync(f('secret.bin'), secret);
    const finish = cli(
      'issue-ak',
      '--dir',
      dir,
      '--route',
      'activation',
      '--activation-id',
      activationId,
      '--secret',
      f('secret.bin'),
      '--out',
      f('ak.pem'),
    );
    assert.equal(finish.code, 0, finish.stderr);
    const text = openssl(['x509', '-in', f('ak.pem'), '-noout', '-text']);
    assert.match(text, /2\.23\.133\.8\.3/);
    // the same activation cannot be used twice: refused (1)
    const replay = cli(
      'issue-ak',
      '--dir',
      dir,
      '--route',
      'activation',
      '--activation-id',
      activationId,
      '--secret',
      f('secret.bin'),
    );
    assert.equal(replay.code, 1);
    assert.match(replay.stderr, /ERR_REFUSED ca\.activation_unknown/);
  });

  it('nonce + issue-ak --route tee with a simulated SVSM report; a forged nonce is refused (1)', async () => {
    // trust the simulator's root: ca.json is the place to say so
    const chain = await sharedSimChain('Milan');
    const cfgPath = join(dir, 'ca.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    cfg.snp.trustedRoots = [{ product: 'Milan', sha256: chain.rootSha256 }];
    writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));

    const n = cli('nonce', '--dir', dir, '--instance-id', String(id.instanceId), '--out', f('nonce.bin'));
    assert.equal(n.code, 0, n.stderr);
    const nonce = new Uint8Array(readFileSync(f('nonce.bin')));
    assert.equal(nonce.length, 64);
    const manifest = servicesManifest(v.ek, v.ak);
    const { report, certTable } = simGuest(chain).getReport(svsmReportData(nonce, manifest));
    writeFileSync(f('manifest.bin'), manifest);
    writeFileSync(f('report.bin'), report);
    writeFileSync(f('certs.bin'), certTable);
    const args = [
      '--dir',
      dir,
      '--route',
      'tee',
      '--instance-id',
      String(id.instanceId),
      '--report',
      f('report.bin'),
      '--cert-table',
      f('certs.bin'),
      '--manifest',
      f('manifest.bin'),
    ];
    const ok = cli('issue-ak', ...args, '--nonce', f('nonce.bin'), '--format', 'c509-type3', '--json');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).format, 'c509-type3');

    writeFileSync(f('forged.hex'), '00'.repeat(64));
    const forged = cli('issue-ak', ...args, '--nonce', f('forged.hex'));
    assert.equal(forged.code, 1);
    assert.match(forged.stderr, /ERR_REFUSED ca\.nonce_unknown/);
  });

  it('revoke, crl and verify-log', () => {
    const r = cli('revoke', ekSerial, '--dir', dir, '--reason', 'keyCompromise');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cli('revoke', ekSerial, '--dir', dir).code, 0, 'revoking twice is not an error');
    const unknown = cli('revoke', 'abcdef', '--dir', dir);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /ca\.serial_unknown/);
    const crl = cli('crl', '--dir', dir, '--out', f('crl.pem'));
    assert.equal(crl.code, 0, crl.stderr);
    const text = openssl([
      'crl',
      '-in',
      f('crl.pem'),
      '-CAfile',
      join(dir, 'ca-cert.pem'),
      '-noout',
      '-text',
    ]);
    assert.match(text, new RegExp(`Serial Number: ${ekSerial.toUpperCase()}`));
    const log = cli('verify-log', '--dir', dir);
    assert.equal(log.code, 0, log.stderr);
    assert.equal(JSON.parse(log.stdout).ok, true);
  });
});

describe('vouchsafe ca --database', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-cli-db-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('keeps the CA in the named database; without it the directory (no ca.db) does not open', () => {
    const d = join(tmp, 'ca-db');
    const db = `sqlite:${join(tmp, 'shared.db')}`;
    const init = cli('init', '--dir', d, '--database', db);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(existsSync(join(d, 'ca.db')), false, 'no ca.db in the directory');
    const crl = cli('crl', '--dir', d, '--database', db, '--json');
    assert.equal(crl.code, 0, crl.stderr);
    assert.equal(JSON.parse(crl.stdout).crlNumber, 1);
    const log = cli('verify-log', '--dir', d, '--database', db);
    assert.equal(log.code, 0, log.stderr);
    assert.equal(JSON.parse(log.stdout).entries, 2);

    const without = cli('crl', '--dir', d);
    assert.equal(without.code, 2);
    assert.match(without.stderr, /ERR_INVALID_ARGUMENT ca\.open/);
    const otherDb = cli('crl', '--dir', d, '--database', `sqlite:${join(tmp, 'other.db')}`);
    assert.equal(otherDb.code, 2);
    assert.match(otherDb.stderr, /ERR_INVALID_ARGUMENT ca\.database_mismatch/);
    const badUrl = cli('crl', '--dir', d, '--database', 'mysql://x');
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.stderr, /ERR_INVALID_ARGUMENT store\.location/);
    const second = cli('init', '--dir', join(tmp, 'ca-db-2'), '--database', db);
    assert.equal(second.code, 2);
    assert.match(second.stderr, /ERR_INVALID_ARGUMENT ca\.init\.exists/);
  });
});

describe('vouchsafe ca verify-log --expect-head', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-cli-head-'));
  const d = join(tmp, 'ca');
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** Raw SQL as someone with write access to ca.db (the append-only triggers dropped first). */
  function tamper(sql: string): void {
    const db = new Database(join(d, 'ca.db'));
    try {
      db.exec('DROP TRIGGER IF EXISTS ca_log_no_update; DROP TRIGGER IF EXISTS ca_log_no_delete;');
      db.exec(sql);
    } finally {
      db.close();
    }
  }
  const verifyLog = (...extra: string[]) => {
    const r = cli('verify-log', '--dir', d, ...extra);
    return { ...r, json: r.stdout ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined };
  };
  const crl = () => assert.equal(cli('crl', '--dir', d, '--out', join(tmp, 'crl.pem')).code, 0);

  it('a cut tail with a rewritten head row, and a chain grown again past the cut, fail against the recorded head', () => {
    assert.equal(cli('init', '--dir', d).code, 0);
    crl();
    crl();
    const first = verifyLog();
    assert.equal(first.code, 0, first.stderr);
    const entries = first.json!.entries as number;
    const head = `${entries}:${first.json!.headHash as string}`;
    assert.ok(first.stderr.includes(`--expect-head ${head}`), 'prints the head to record');
    assert.equal(verifyLog('--expect-head', head).code, 0);

    // Cut the last entry and point the head row at the one before it: alone, the chain is intact.
    tamper(
      `DELETE FROM ca_log WHERE seq = ${entries};
       UPDATE ca_log_head SET seq = ${entries - 1}, hash = (SELECT hash FROM ca_log WHERE seq = ${entries - 1});`,
    );
    assert.equal(verifyLog().code, 0);
    const cut = verifyLog('--expect-head', head);
    assert.equal(cut.code, 1);
    assert.deepEqual(cut.json, { ok: false, entries: entries - 1, seq: entries, problem: 'audit.truncated' });

    // The CA appends from the rewritten head: as long as the recorded log, another entry at its seq.
    crl();
    assert.equal(verifyLog().code, 0);
    const rebuilt = verifyLog('--expect-head', head);
    assert.equal(rebuilt.code, 1);
    assert.deepEqual(rebuilt.json, { ok: false, entries, seq: entries, problem: 'audit.anchor' });
  });

  it('a malformed --expect-head is unusable input (2)', () => {
    const r = cli('verify-log', '--dir', d, '--expect-head', '3:abc');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /ERR_INVALID_ARGUMENT audit\.expect_head/);
  });
});
