/**
 * `vouchsafe audit verify` on a data directory whose database someone with write access changed: a tampered
 * value is a broken chain (exit 1, `audit.malformed`), never a crash (exit 2); a cut tail with a rewritten
 * head row, or a rebuilt chain, passes on its own and is caught only against a head recorded earlier
 * (`--expect-head seq:hash`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { hashAuditEntry } from '../../src/store/audit-hash.js';
import { openStore } from '../../src/store/open.js';
import type { AuditEntry } from '../../src/store/types.js';
import { runCli } from './run-cli.js';

const root = mkdtempSync(join(tmpdir(), 'vouchsafe-audit-cli-'));
let n = 0;

/** A data directory whose audit log holds four entries; returns them. */
async function seeded(): Promise<{ dir: string; entries: AuditEntry[] }> {
  const dir = join(root, `d${++n}`);
  const store = await openStore({ dataDir: dir });
  try {
    for (let i = 1; i <= 4; i++) {
      await store.transaction((tx) =>
        tx.appendAudit({
          time: 1_700_000_000_000 + i,
          kind: 'test',
          instance: null,
          decision: 'accept',
          reasons: [`r${i}`],
          evidenceDigest: null,
          details: {},
        }),
      );
    }
    return { dir, entries: await store.readAudit(0, 10) };
  } finally {
    await store.close();
  }
}

/** Raw SQL as someone with write access to the database (the append-only triggers dropped first). */
function tamper(dir: string, sql: string): void {
  const db = new Database(join(dir, 'vouchsafe.db'));
  try {
    db.exec('DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;');
    db.exec(sql);
  } finally {
    db.close();
  }
}

async function verify(dir: string, ...extra: string[]) {
  const r = await runCli(['audit', 'verify', '--data', dir, '--json', ...extra]);
  return { code: r.code, stderr: r.stderr, json: r.stdout ? (JSON.parse(r.stdout) as unknown) : undefined };
}

const head = (e: AuditEntry) => `${e.seq}:${e.hash}`;

describe('vouchsafe audit verify: tampered values and --expect-head', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  it('prints the head to record; an intact log passes at its head and at an earlier one', async () => {
    const { dir, entries } = await seeded();
    const text = await runCli(['audit', 'verify', '--data', dir]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`--expect-head ${head(entries[3]!)}`));
    for (const h of [head(entries[3]!), head(entries[1]!).toUpperCase()]) {
      const r = await verify(dir, '--expect-head', h);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  it('a non-integer time is a broken chain at its seq (exit 1), not a crash', async () => {
    const { dir } = await seeded();
    tamper(dir, 'UPDATE audit_log SET time = 1.5 WHERE seq = 3');
    assert.deepEqual(await verify(dir), {
      code: 1,
      stderr: '',
      json: { ok: false, entries: 2, seq: 3, problem: 'audit.malformed' },
    });
  });

  it('a cut tail with a rewritten head row passes alone and fails against the recorded head', async () => {
    const { dir, entries } = await seeded();
    tamper(
      dir,
      `DELETE FROM audit_log WHERE seq > 2; UPDATE audit_head SET seq = 2, hash = '${entries[1]!.hash}'`,
    );
    assert.equal((await verify(dir)).code, 0);
    const r = await verify(dir, '--expect-head', head(entries[3]!));
    assert.equal(r.code, 1);
    assert.deepEqual(r.json, { ok: false, entries: 2, seq: 4, problem: 'audit.truncated' });
  });

  it('a rebuilt chain passes alone and fails against a head recorded at or after the rebuild', async () => {
    const { dir, entries } = await seeded();
    const e3 = entries[2]!;
    const e4 = entries[3]!;
    const h3 = hashAuditEntry({ ...e3, reasons: ['forged'] });
    const h4 = hashAuditEntry({ ...e4, prevHash: h3 });
    tamper(
      dir,
      `UPDATE audit_log SET reasons = '["forged"]', hash = '${h3}' WHERE seq = 3; ` +
        `UPDATE audit_log SET prev_hash = '${h3}', hash = '${h4}' WHERE seq = 4; ` +
        `UPDATE audit_head SET hash = '${h4}'`,
    );
    assert.equal((await verify(dir)).code, 0);
    for (const e of [e3, e4]) {
      const r = await verify(dir, '--expect-head', head(e));
      assert.equal(r.code, 1);
      assert.deepEqual(r.json, { ok: false, entries: 4, seq: e.seq, problem: 'audit.anchor' });
    }
    assert.equal((await verify(dir, '--expect-head', head(entries[1]!))).code, 0);
  });

  it('a malformed --expect-head is unusable input (exit 2, audit.expect_head)', async () => {
    const { dir } = await seeded();
    for (const bad of ['4', '4:abc', `x:${'a'.repeat(64)}`]) {
      const r = await runCli(['audit', 'verify', '--data', dir, '--expect-head', bad]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /audit\.expect_head/);
    }
  });
});
