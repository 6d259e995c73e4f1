import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CA_FILES, PlatformCa } from '../../src/ca/index.js';
import { x509 } from '../../src/ca/x509-lib.js';
import { encodePublic } from '../../src/formats/tpm/index.js';
import { errorWith } from '../helpers/assert-error.js';
import { identity, softEk, testCa } from './fixtures.js';

/**
 * The CA's database in its directory: a `ca.db` made before the CA moved onto the broker's store engines
 * opens unchanged (migration 3 adopts its tables), and a CA never opens on a database that is not its own.
 */

const invalid = (reason: string) => errorWith('ERR_INVALID_ARGUMENT', reason);

/** The schema `ca.db` had before migration 3 (src/ca/sqlite-repository.ts, user_version 1), verbatim. */
const LEGACY_SCHEMA = `
CREATE TABLE ca_certificates (
  serial TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('root', 'intermediate', 'ek', 'ak')),
  instance_id TEXT,
  identity_json TEXT,
  spki_sha256 TEXT NOT NULL,
  ek_public BLOB,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  der BLOB NOT NULL,
  c509 BLOB,
  revoked_at INTEGER,
  revocation_reason INTEGER
);
CREATE INDEX ca_certificates_instance ON ca_certificates (instance_id, kind);
CREATE TABLE ca_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO ca_counters (name, value) VALUES ('crl_number', 0);
CREATE TABLE ca_crls (
  number INTEGER PRIMARY KEY,
  this_update INTEGER NOT NULL,
  next_update INTEGER NOT NULL,
  der BLOB NOT NULL
);
CREATE TABLE ca_nonces (
  digest BLOB PRIMARY KEY,
  instance_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE ca_activations (
  id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  ak_public BLOB NOT NULL,
  ek_public BLOB NOT NULL,
  secret_digest BLOB NOT NULL,
  csr BLOB,
  format TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE ca_log (
  seq INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  kind TEXT NOT NULL,
  instance TEXT,
  decision TEXT NOT NULL,
  reasons TEXT NOT NULL,
  evidence_digest TEXT,
  details TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TRIGGER ca_log_no_update BEFORE UPDATE ON ca_log BEGIN SELECT RAISE(ABORT, 'ca_log is append-only'); END;
CREATE TRIGGER ca_log_no_delete BEFORE DELETE ON ca_log BEGIN SELECT RAISE(ABORT, 'ca_log is append-only'); END;
CREATE TABLE ca_log_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
INSERT INTO ca_log_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}');
`;

const TABLES = [
  'ca_certificates',
  'ca_counters',
  'ca_crls',
  'ca_nonces',
  'ca_activations',
  'ca_log',
  'ca_log_head',
];

/** Rewrites `dir`'s ca.db as the old code wrote it: the legacy schema, the same rows, no broker tables. */
function downgradeToLegacy(dir: string): void {
  const current = join(dir, CA_FILES.database);
  const legacy = join(dir, 'legacy.db');
  const db = new Database(legacy);
  try {
    db.exec(LEGACY_SCHEMA);
    db.pragma('user_version = 1');
    db.exec(`ATTACH DATABASE '${current}' AS cur`);
    db.exec('DROP TRIGGER ca_log_no_update; DROP TRIGGER ca_log_no_delete;');
    for (const t of TABLES) db.exec(`DELETE FROM main.${t}; INSERT INTO main.${t} SELECT * FROM cur.${t};`);
    db.exec(
      "CREATE TRIGGER ca_log_no_update BEFORE UPDATE ON ca_log BEGIN SELECT RAISE(ABORT, 'ca_log is append-only'); END;" +
        "CREATE TRIGGER ca_log_no_delete BEFORE DELETE ON ca_log BEGIN SELECT RAISE(ABORT, 'ca_log is append-only'); END;",
    );
    db.exec('DETACH DATABASE cur');
  } finally {
    db.close();
  }
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${current}${suffix}`, { force: true });
  renameSync(legacy, current);
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('CA database', () => {
  it('opens a ca.db from before migration 3: every record, the log chain and the CRL numbers carry on', async () => {
    const t = await testCa();
    const ek = await t.ca.issueEk({ ekPublic: encodePublic(softEk().pub), identity: identity(1) });
    await t.ca.revoke(ek.serial, 1);
    await t.ca.generateCrl();
    const before = await t.ca.readLog();
    await t.ca.close();
    downgradeToLegacy(t.dir);
    const legacy = new Database(join(t.dir, CA_FILES.database), { readonly: true });
    const hadBrokerTables = legacy
      .prepare("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'")
      .get();
    legacy.close();
    assert.equal(hadBrokerTables, undefined, 'the downgraded file is a legacy one');

    const ca = await PlatformCa.open(t.dir, { now: () => t.clock.now });
    try {
      assert.deepEqual(await ca.readLog(), before);
      assert.deepEqual(await ca.verifyLog(), {
        ok: true,
        entries: before.length,
        headHash: before.at(-1)!.hash,
      });
      assert.equal((await ca.repository.getCertificate(ek.serial))?.revocationReason, 1);
      const crl = await ca.generateCrl();
      assert.equal(crl.number, 2);
      const parsed = new x509.X509Crl(Uint8Array.from(crl.der).buffer);
      assert.deepEqual(
        parsed.entries.map((e) => e.serialNumber.toLowerCase()),
        [ek.serial],
        'the revocation made before is listed',
      );
      await ca.issueEk({ ekPublic: encodePublic(softEk().pub), identity: identity(2) });
      assert.equal((await ca.verifyLog()).ok, true);
    } finally {
      await ca.close();
    }
    const db = new Database(join(t.dir, CA_FILES.database), { readonly: true });
    try {
      const versions = (
        db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]
      ).map((r) => r.version);
      assert.ok(versions.includes(1) && versions.includes(3), `applied: ${versions}`);
    } finally {
      db.close();
    }
    await t.cleanup();
  });

  it('does not open without its ca.db, rather than start on a new, empty one', async () => {
    const t = await testCa();
    await t.ca.close();
    for (const suffix of ['', '-wal', '-shm'])
      rmSync(join(t.dir, `${CA_FILES.database}${suffix}`), { force: true });
    await assert.rejects(PlatformCa.open(t.dir), invalid('ca.open'));
    await t.cleanup();
  });

  it("does not open on another CA's ca.db (its records and revocations are not this CA's)", async () => {
    const a = await testCa();
    const b = await testCa();
    await a.ca.close();
    await b.ca.close();
    const tmp = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-db-'));
    dirs.push(tmp);
    for (const suffix of ['', '-wal', '-shm'])
      rmSync(join(a.dir, `${CA_FILES.database}${suffix}`), { force: true });
    copyFileSync(join(b.dir, CA_FILES.database), join(a.dir, CA_FILES.database));
    await assert.rejects(PlatformCa.open(a.dir), invalid('ca.database_mismatch'));
    await a.cleanup();
    await b.cleanup();
  });
});
