import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runBrokerSuite } from './suite.js';

const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-broker-sqlite-'));
let n = 0;
const file = (location: string) => location.slice('sqlite:'.length);

runBrokerSuite({
  engine: 'sqlite',
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
  async fresh() {
    return `sqlite:${join(dir, `broker-${++n}.db`)}`;
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
      return db.prepare(sql).all() as Record<string, unknown>[];
    } finally {
      db.close();
    }
  },
});
