import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runStoreContract } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-sqlite-'));
let n = 0;
const file = (location: string) => location.slice('sqlite:'.length);

runStoreContract({
  engine: 'sqlite',
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
  async fresh() {
    return `sqlite:${join(dir, `store-${++n}.db`)}`;
  },
  async tamper(location, sql) {
    const db = new Database(file(location));
    try {
      db.exec('DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;');
      db.exec(sql);
    } finally {
      db.close();
    }
  },
  async query(location, sql) {
    const db = new Database(file(location));
    try {
      const stmt = db.prepare(sql);
      if (stmt.reader) return stmt.all() as Record<string, unknown>[];
      stmt.run();
      return [];
    } finally {
      db.close();
    }
  },
});
