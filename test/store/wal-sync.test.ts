import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Unavailable } from '../../src/errors.js';
import { WalSync } from '../../src/store/wal-sync.js';

/** A flush per call that stays open until the test releases it. */
function heldFlushes() {
  const pending: { path: string; done: () => void; fail: (e: unknown) => void }[] = [];
  const started: string[] = [];
  const flush = (path: string) =>
    new Promise<void>((done, fail) => {
      started.push(path);
      pending.push({ path, done, fail });
    });
  const next = async () => {
    while (pending.length === 0) await new Promise((r) => setImmediate(r));
    return pending.shift()!;
  };
  return { flush, next, started };
}

test('a sync asked for while a flush runs waits for a flush that starts after it (not the running one)', async () => {
  const h = heldFlushes();
  const w = new WalSync('/d/x.db-wal', h.flush);
  let aDone = false;
  let bDone = false;
  const a = w.sync().then(() => {
    aDone = true;
  });
  const first = await h.next(); // the WAL flush serving `a` is running
  // `b` committed after that flush started: the running flush may not cover its frames.
  const b = w.sync().then(() => {
    bDone = true;
  });
  first.done();
  (await h.next()).done(); // the first flush's directory flush
  await a;
  assert.equal(aDone, true);
  await new Promise((r) => setImmediate(r));
  assert.equal(bDone, false, 'resolved by a flush that started before it was asked for');
  (await h.next()).done(); // the second flush (the directory is flushed once only)
  await b;
  assert.equal(bDone, true);
  assert.deepEqual(h.started, ['/d/x.db-wal', '/d', '/d/x.db-wal']);
});

test('syncs asked for while one flush runs share the next flush (group commit)', async () => {
  const h = heldFlushes();
  const w = new WalSync('/d/x.db-wal', h.flush);
  const first = w.sync();
  const f1 = await h.next();
  const group = Array.from({ length: 10 }, () => w.sync());
  f1.done();
  (await h.next()).done();
  await first;
  (await h.next()).done();
  await Promise.all(group);
  assert.equal(w.flushes, 2);
});

test('a failed flush fails every later sync with store.unavailable (no silent retry after an EIO)', async () => {
  const h = heldFlushes();
  const w = new WalSync('/d/x.db-wal', h.flush);
  const a = w.sync();
  (await h.next()).fail(Object.assign(new Error('EIO'), { code: 'EIO' }));
  await assert.rejects(a, (e: unknown) => e instanceof Unavailable && e.reason === 'store.unavailable');
  await assert.rejects(
    w.sync(),
    (e: unknown) => e instanceof Unavailable && e.reason === 'store.unavailable',
  );
  assert.equal(h.started.length, 1, 'no flush is attempted after a failure');
});

test('the real flush: a missing WAL is nothing to flush; an unopenable one is store.unavailable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-walsync-'));
  try {
    await new WalSync(join(dir, 'absent.db-wal')).sync();
    writeFileSync(join(dir, 'present.db-wal'), 'frames');
    const ok = new WalSync(join(dir, 'present.db-wal'));
    await ok.sync();
    assert.equal(ok.flushes, 1);
    writeFileSync(join(dir, 'file'), '');
    await assert.rejects(
      new WalSync(join(dir, 'file', 'x.db-wal')).sync(),
      (e: unknown) => e instanceof Unavailable && e.reason === 'store.unavailable',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the real flush keeps one descriptor across flushes, and opens the current file if the old one was unlinked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-walsync-'));
  try {
    const path = join(dir, 'x.db-wal');
    writeFileSync(path, 'frames');
    const w = new WalSync(path);
    await w.sync();
    await w.sync();
    await w.sync();
    assert.deepEqual([w.flushes, w.opens], [3, 1]);
    rmSync(path);
    writeFileSync(path, 'new frames'); // a new file under the same name: flushing the old inode would not do
    await w.sync();
    assert.deepEqual([w.flushes, w.opens], [4, 2]);
    await w.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
