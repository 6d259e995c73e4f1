import { GENESIS_HASH } from './audit-hash.js';

/**
 * Migration 3: the platform CA's tables (docs/ca.md), beside the broker's in the same database. One CA per
 * database. The issuance log `ca_log` has the broker's audit-log columns and hash chain
 * (audit-hash.ts), append-only by trigger, with its own head row.
 *
 * SQLite uses IF NOT EXISTS and ON CONFLICT DO NOTHING so that a CA directory created before the CA moved
 * onto the store's engines — its `ca.db` already holds exactly these tables, and no `schema_migrations`
 * — is adopted as it is: migrations 1 and 2 add the broker's tables, this one finds the CA's in place.
 */

const SQLITE_SQL = `
CREATE TABLE IF NOT EXISTS ca_certificates (
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
CREATE INDEX IF NOT EXISTS ca_certificates_instance ON ca_certificates (instance_id, kind);
CREATE TABLE IF NOT EXISTS ca_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO ca_counters (name, value) VALUES ('crl_number', 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS ca_crls (
  number INTEGER PRIMARY KEY,
  this_update INTEGER NOT NULL,
  next_update INTEGER NOT NULL,
  der BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ca_nonces (
  digest BLOB PRIMARY KEY,
  instance_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ca_activations (
  id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  ak_public BLOB NOT NULL,
  ek_public BLOB NOT NULL,
  secret_digest BLOB NOT NULL,
  csr BLOB,
  format TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ca_log (
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
CREATE TRIGGER IF NOT EXISTS ca_log_no_update BEFORE UPDATE ON ca_log
BEGIN SELECT RAISE(ABORT, 'ca_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ca_log_no_delete BEFORE DELETE ON ca_log
BEGIN SELECT RAISE(ABORT, 'ca_log is append-only'); END;
CREATE TABLE IF NOT EXISTS ca_log_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO ca_log_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}') ON CONFLICT DO NOTHING;
`;

const POSTGRES_SQL = `
CREATE TABLE ca_certificates (
  serial TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('root', 'intermediate', 'ek', 'ak')),
  instance_id TEXT,
  identity_json TEXT,
  spki_sha256 TEXT NOT NULL,
  ek_public BYTEA,
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  issued_at BIGINT NOT NULL,
  der BYTEA NOT NULL,
  c509 BYTEA,
  revoked_at BIGINT,
  revocation_reason INTEGER
);
CREATE INDEX ca_certificates_instance ON ca_certificates (instance_id, kind);
CREATE TABLE ca_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO ca_counters (name, value) VALUES ('crl_number', 0);
CREATE TABLE ca_crls (
  number BIGINT PRIMARY KEY,
  this_update BIGINT NOT NULL,
  next_update BIGINT NOT NULL,
  der BYTEA NOT NULL
);
CREATE TABLE ca_nonces (
  digest BYTEA PRIMARY KEY,
  instance_id TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE TABLE ca_activations (
  id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  ak_public BYTEA NOT NULL,
  ek_public BYTEA NOT NULL,
  secret_digest BYTEA NOT NULL,
  csr BYTEA,
  format TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE TABLE ca_log (
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
CREATE FUNCTION ca_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'ca_log is append-only'; END $$;
CREATE TRIGGER ca_log_no_change BEFORE UPDATE OR DELETE ON ca_log
  FOR EACH ROW EXECUTE FUNCTION ca_log_append_only();
CREATE TRIGGER ca_log_no_truncate BEFORE TRUNCATE ON ca_log
  FOR EACH STATEMENT EXECUTE FUNCTION ca_log_append_only();
CREATE TABLE ca_log_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO ca_log_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}');
`;

const NAME = 'platform CA: certificates, CRLs, nonces, activations, issuance log';

// Plain objects (a Migration by shape): importing the type back from migrations.ts would be a cycle.
export const CA_SQLITE_MIGRATION = { version: 3, name: NAME, sql: SQLITE_SQL } as const;
export const CA_POSTGRES_MIGRATION = { version: 3, name: NAME, sql: POSTGRES_SQL } as const;
