import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import type { StoreHarness } from './contract.js';

/** SQLite: a fresh database file per store in a temp dir removed at teardown. */
export function sqliteHarness(prefix: string): StoreHarness {
  const dir = mkdtempSync(join(tmpdir(), `vouchsafe-${prefix}-`));
  let n = 0;
  const withDb = <T>(location: string, fn: (db: Database.Database) => T): T => {
    const db = new Database(location.slice('sqlite:'.length));
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    engine: 'sqlite',
    async teardown() {
      rmSync(dir, { recursive: true, force: true });
    },
    async fresh() {
      return `sqlite:${join(dir, `${prefix}-${++n}.db`)}`;
    },
    async tamper(location, sql) {
      withDb(location, (db) => {
        db.exec('DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;');
        db.exec(sql);
      });
    },
    async query(location, sql) {
      return withDb(location, (db) => {
        const stmt = db.prepare(sql);
        if (stmt.reader) return stmt.all() as Record<string, unknown>[];
        stmt.run();
        return [];
      });
    },
  };
}

/** PostgreSQL: a throwaway cluster (or DATABASE_URL) with a fresh schema per store. */
export function postgresHarness(): StoreHarness {
  let server: TestPostgres | undefined;
  const withClient = async <T>(location: string, fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: location });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  return {
    engine: 'postgres',
    async setup() {
      server = await startTestPostgres();
    },
    async teardown() {
      await server?.stop();
    },
    async fresh() {
      if (!server) throw new Error('PostgreSQL was not started');
      return server.createSchema();
    },
    async tamper(location, sql) {
      // replica mode skips ordinary triggers: what a superuser with direct access could do.
      await withClient(location, (c) => c.query(`SET session_replication_role = replica; ${sql}`));
    },
    async query(location, sql) {
      return withClient(location, async (c) => (await c.query(sql)).rows);
    },
  };
}
