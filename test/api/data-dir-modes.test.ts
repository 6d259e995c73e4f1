/**
 * The broker's data directory is private: created 0700 with every file in it 0600 (the SQLite database and
 * its -wal/-shm, the keys, the admin token, the token keys, the KDS cache), whatever the umask; a directory
 * group or others can read is refused at start, as the KEK file is; a database an older version left 0644
 * is narrowed to 0600 before SQLite opens it.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { startBroker } from '../../src/api/index.js';
import { CollateralCache } from '../../src/collateral/cache.js';
import { AttestationError, ErrorCode } from '../../src/errors.js';

const root = mkdtempSync(join(tmpdir(), 'vouchsafe-modes-'));
after(() => rmSync(root, { recursive: true, force: true }));

const start = (dataDir: string) =>
  startBroker({
    listen: '127.0.0.1:0',
    dataDir,
    kds: 'none',
    crl: 'none',
    logger: pino({ level: 'silent' }),
  });

/** Every path below `dir` (itself included) whose mode lets group or others in. */
function loose(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = statSync(p);
    if ((st.mode & 0o077) !== 0) out.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(dir);
  return out;
}

describe('data directory modes', () => {
  it('creates the directory 0700 and every file 0600 under a permissive umask', async () => {
    const dataDir = join(root, 'fresh');
    const old = process.umask(0o002);
    try {
      const b = await start(dataDir);
      try {
        const r = await fetch(`${b.url}/v1/admin/audit/verify`, {
          headers: { authorization: `Bearer ${b.adminToken}` },
        });
        assert.equal(r.status, 200);
        await new CollateralCache(join(dataDir, 'kds-cache')).write(
          { kind: 'cert_chain', product: 'Milan', signer: 'vcek' },
          new Uint8Array([1, 2, 3]),
        );
        const names = readdirSync(dataDir);
        for (const f of ['vouchsafe.db', 'vouchsafe.db-wal', 'kek', 'admin-token', 'kds-cache']) {
          assert.ok(names.includes(f), `${f} in ${names.join(' ')}`);
        }
        assert.deepEqual(loose(dataDir), []);
      } finally {
        await b.close();
      }
    } finally {
      process.umask(old);
    }
  });

  it('refuses a data directory group or others can read', async () => {
    const dataDir = join(root, 'shared');
    mkdirSync(dataDir, { mode: 0o700 });
    chmodSync(dataDir, 0o750);
    await assert.rejects(
      start(dataDir),
      (e: unknown) =>
        e instanceof AttestationError &&
        e.code === ErrorCode.InvalidArgument &&
        e.reason === 'broker.data_dir.permissions',
    );
    assert.deepEqual(readdirSync(dataDir), [], 'nothing was created in it');
  });

  it('narrows a database (and its WAL) left 0644 by an older version', async () => {
    const dataDir = join(root, 'old');
    const b0 = await start(dataDir);
    await b0.close();
    chmodSync(join(dataDir, 'vouchsafe.db'), 0o644);
    writeFileSync(join(dataDir, 'vouchsafe.db-wal'), new Uint8Array(0), { mode: 0o644 });
    chmodSync(join(dataDir, 'vouchsafe.db-wal'), 0o644);
    const b = await start(dataDir);
    try {
      assert.deepEqual(loose(dataDir), []);
    } finally {
      await b.close();
    }
  });
});
