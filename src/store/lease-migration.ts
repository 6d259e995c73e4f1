import type { Migration } from './migrations.js';

/**
 * Migration 4: the lease redesign (docs/broker.md "Leases"). `boot_launch_id` is the launch the active boot
 * was released to (SEV-SNP REPORT_ID), so a re-attestation of the same launch is the same boot;
 * `new_launch` is the instance's choice of what a new launch does during a live lease. Existing rows read
 * NULL as `takeover` (src/store/rows.ts), the default.
 */
export const LEASE_SQLITE_MIGRATION: Migration = {
  version: 4,
  name: 'launch id of the active boot; per-instance new-launch policy',
  sql: `
ALTER TABLE instances ADD COLUMN boot_launch_id BLOB;
ALTER TABLE instances ADD COLUMN new_launch TEXT CHECK (new_launch IN ('takeover', 'refuse', 'allow'));
`,
};

/** Migration 4 for PostgreSQL (see {@link LEASE_SQLITE_MIGRATION}). */
export const LEASE_POSTGRES_MIGRATION: Migration = {
  version: 4,
  name: 'launch id of the active boot; per-instance new-launch policy',
  sql: `
ALTER TABLE instances ADD COLUMN boot_launch_id BYTEA;
ALTER TABLE instances ADD COLUMN new_launch TEXT CHECK (new_launch IN ('takeover', 'refuse', 'allow'));
`,
};
