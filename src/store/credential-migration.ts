import type { Migration } from './migrations.js';

/**
 * Migration 6: admin credentials (issue 14, "Who may do what"; docs/access.md). One row per credential:
 * its role, the projects (tenants) it may act on as a JSON array of names (`["*"]` for all), and the
 * SHA-256 of its secret, never the secret. A revoked credential keeps its row (the audit log names it).
 */
const credentialsTable = (blob: 'BLOB' | 'BYTEA', int: 'INTEGER' | 'BIGINT') => `
CREATE TABLE credentials (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('read', 'operate', 'admin', 'host')),
  projects TEXT NOT NULL,
  secret_hash ${blob} NOT NULL,
  created_at ${int} NOT NULL,
  revoked_at ${int}
);
`;

export const CREDENTIAL_SQLITE_MIGRATION: Migration = {
  version: 6,
  name: 'admin credentials: role, projects, secret hash',
  sql: credentialsTable('BLOB', 'INTEGER'),
};

/** Migration 6 for PostgreSQL (see {@link CREDENTIAL_SQLITE_MIGRATION}). */
export const CREDENTIAL_POSTGRES_MIGRATION: Migration = {
  version: 6,
  name: 'admin credentials: role, projects, secret hash',
  sql: credentialsTable('BYTEA', 'BIGINT'),
};
