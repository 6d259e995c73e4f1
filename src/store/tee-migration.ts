import type { Migration } from './migrations.js';

/**
 * Migration 5: the TEE an instance is registered for (issue 12). `host_data` keeps the identity value the
 * VMM sets at launch — SEV-SNP HOST_DATA (32 bytes) or TDX MRCONFIGID (48 bytes) — and `tee` says which
 * field it is, so the broker finds an instance by (tee, value) and a value registered for one TEE never
 * names an instance of another, whatever its length. Rows from before the migration are SEV-SNP.
 */
export const TEE_SQLITE_MIGRATION: Migration = {
  version: 5,
  name: 'the TEE whose identity field names the instance',
  sql: `ALTER TABLE instances ADD COLUMN tee TEXT NOT NULL DEFAULT 'snp' CHECK (tee IN ('snp', 'tdx'));`,
};

/** Migration 5 for PostgreSQL (see {@link TEE_SQLITE_MIGRATION}). */
export const TEE_POSTGRES_MIGRATION: Migration = {
  version: 5,
  name: 'the TEE whose identity field names the instance',
  sql: `ALTER TABLE instances ADD COLUMN tee TEXT NOT NULL DEFAULT 'snp' CHECK (tee IN ('snp', 'tdx'));`,
};
