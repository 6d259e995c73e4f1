import type { Migration } from './migrations.js';

/**
 * Migration 7: the KBS's state, so that any broker replica on one database serves any step of an RCAR
 * exchange (issue 14 "Many replicas"; docs/broker.md "Running several replicas").
 *
 * - `kbs_sessions`: RCAR sessions by the SHA-256 of the `kbs-session-id` cookie (the id itself is never
 *   stored). `phase` goes `authed` -> `attested` once, by a conditional UPDATE; the attested session's token
 *   is held encrypted under the KEK (`token_wrapped`, AAD bound to the session digest).
 * - `kbs_grants`: the sealing key a KBS attestation released, held for its token's resource reads, AES-GCM
 *   under the KEK (never plaintext), AAD bound to the grant id and the instance.
 * - `kbs_token_keys`: the EAR token signing keys (one row), the whole key ring encrypted under the KEK, with
 *   a generation that every rotation moves by one (a conditional UPDATE: two replicas rotating at once
 *   cannot both win) and that every replica compares to see a rotation made elsewhere.
 */
const tables = (blob: string, int: string) => `
CREATE TABLE kbs_sessions (
  id_digest ${blob} PRIMARY KEY,
  source TEXT NOT NULL,
  tee TEXT NOT NULL,
  nonce TEXT NOT NULL,
  phase TEXT NOT NULL CHECK (phase IN ('authed', 'attested')),
  token_wrapped ${blob},
  kek_id TEXT,
  created_at ${int} NOT NULL,
  expires_at ${int} NOT NULL
);
CREATE INDEX kbs_sessions_source ON kbs_sessions (source, phase, created_at);
CREATE INDEX kbs_sessions_expires_at ON kbs_sessions (expires_at);

CREATE TABLE kbs_grants (
  grant_id TEXT PRIMARY KEY,
  instance_id TEXT NOT NULL,
  wrapped ${blob} NOT NULL,
  kek_id TEXT NOT NULL,
  expires_at ${int} NOT NULL
);
CREATE INDEX kbs_grants_expires_at ON kbs_grants (expires_at);

CREATE TABLE kbs_token_keys (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  generation ${int} NOT NULL,
  wrapped ${blob} NOT NULL,
  kek_id TEXT NOT NULL,
  updated_at ${int} NOT NULL
);
`;

export const KBS_SQLITE_MIGRATION: Migration = {
  version: 7,
  name: 'KBS sessions, held grants and token keys, shared by replicas',
  sql: tables('BLOB', 'INTEGER'),
};

/** Migration 7 for PostgreSQL (see {@link KBS_SQLITE_MIGRATION}). */
export const KBS_POSTGRES_MIGRATION: Migration = {
  version: 7,
  name: 'KBS sessions, held grants and token keys, shared by replicas',
  sql: tables('BYTEA', 'BIGINT'),
};
