import { CA_POSTGRES_MIGRATION, CA_SQLITE_MIGRATION } from './ca-migration.js';
import { CREDENTIAL_POSTGRES_MIGRATION, CREDENTIAL_SQLITE_MIGRATION } from './credential-migration.js';
import { KBS_POSTGRES_MIGRATION, KBS_SQLITE_MIGRATION } from './kbs-migration.js';
import { LEASE_POSTGRES_MIGRATION, LEASE_SQLITE_MIGRATION } from './lease-migration.js';
import { TEE_POSTGRES_MIGRATION, TEE_SQLITE_MIGRATION } from './tee-migration.js';

/**
 * Numbered schema migrations, one list per engine. Each engine applies the missing ones at open, in order,
 * each in its own transaction together with its row in `schema_migrations`, while holding a lock that
 * keeps two processes from migrating at once (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock).
 * Never edit a migration that has shipped: add the next number.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

const ZERO_HASH = '0'.repeat(64);

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'challenges, instances, sealing keys, audit log',
    sql: `
CREATE TABLE challenges (
  digest BLOB PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX challenges_expires_at ON challenges (expires_at);

CREATE TABLE instances (
  id TEXT PRIMARY KEY,
  project TEXT NOT NULL,
  zone TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  instance_name TEXT NOT NULL,
  host_data BLOB NOT NULL UNIQUE,
  policy TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  committed_counter INTEGER,
  boot_id TEXT UNIQUE,
  boot_started_at INTEGER,
  boot_lease_expires_at INTEGER,
  boot_token_hash BLOB,
  UNIQUE (project, zone, instance_id)
);

CREATE TABLE sealing_keys (
  instance_id TEXT NOT NULL REFERENCES instances (id),
  version INTEGER NOT NULL,
  wrapped BLOB NOT NULL,
  kek_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (instance_id, version)
);

CREATE TABLE audit_log (
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
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${ZERO_HASH}');
`,
  },
  {
    version: 2,
    name: 'digest of the committed state file',
    sql: 'ALTER TABLE instances ADD COLUMN committed_digest BLOB;',
  },
  CA_SQLITE_MIGRATION,
  LEASE_SQLITE_MIGRATION,
  TEE_SQLITE_MIGRATION,
  KBS_SQLITE_MIGRATION,
  CREDENTIAL_SQLITE_MIGRATION,
];

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'challenges, instances, sealing keys, audit log',
    sql: `
CREATE TABLE challenges (
  digest BYTEA PRIMARY KEY,
  expires_at BIGINT NOT NULL
);
CREATE INDEX challenges_expires_at ON challenges (expires_at);

CREATE TABLE instances (
  id TEXT PRIMARY KEY,
  project TEXT NOT NULL,
  zone TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  instance_name TEXT NOT NULL,
  host_data BYTEA NOT NULL UNIQUE,
  policy TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  committed_counter BIGINT,
  boot_id TEXT UNIQUE,
  boot_started_at BIGINT,
  boot_lease_expires_at BIGINT,
  boot_token_hash BYTEA,
  UNIQUE (project, zone, instance_id)
);

CREATE TABLE sealing_keys (
  instance_id TEXT NOT NULL REFERENCES instances (id),
  version INTEGER NOT NULL,
  wrapped BYTEA NOT NULL,
  kek_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (instance_id, version)
);

CREATE TABLE audit_log (
  seq BIGINT PRIMARY KEY,
  time BIGINT NOT NULL,
  kind TEXT NOT NULL,
  instance TEXT,
  decision TEXT NOT NULL,
  reasons TEXT NOT NULL,
  evidence_digest TEXT,
  details TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${ZERO_HASH}');
`,
  },
  {
    version: 2,
    name: 'digest of the committed state file',
    sql: 'ALTER TABLE instances ADD COLUMN committed_digest BYTEA;',
  },
  CA_POSTGRES_MIGRATION,
  LEASE_POSTGRES_MIGRATION,
  TEE_POSTGRES_MIGRATION,
  KBS_POSTGRES_MIGRATION,
  CREDENTIAL_POSTGRES_MIGRATION,
];
