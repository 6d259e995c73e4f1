import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { EcdhThreads } from '../../src/native/ecdh-threads.js';
import { unwrapSecret, wrapSecret } from '../../src/native/jwe-ecdh-es.js';
import { loaderFor, ROOT, runnable } from '../helpers/paths.js';

const p521 = () => generateKeyPairSync('ec', { namedCurve: 'P-521' });
const expected = (priv: KeyObject, pub: KeyObject) =>
  new Uint8Array(diffieHellman({ privateKey: priv, publicKey: pub }));

/**
 * Runs `step` until it returns true: the worker comes online after its first agreements (which run on this
 * thread meanwhile). Bounded by a count of tries, there only to turn a hang into a failure.
 */
async function until(step: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await step()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`never happened: ${what}`);
}

/** A worker that answers every job with Z = 66 bytes of 0x42 (after answering `first` to the first job). */
const fakeWorker = (first: string) => `
  const { parentPort } = require('node:worker_threads');
  let n = 0;
  parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, z: n++ === 0 ? ${first} : new Uint8Array(66).fill(0x42) }));`;
const FAKE_Z = new Uint8Array(66).fill(0x42);

describe('native/ecdh-threads', () => {
  it('agrees with diffieHellman on this thread, one at a time and many at once, on 1 and 2 threads', async () => {
    for (const n of [1, 2]) {
      const threads = new EcdhThreads(n);
      try {
        const keys = Array.from({ length: 6 }, p521);
        for (const a of keys.slice(0, 3))
          for (const b of keys.slice(3))
            assert.deepEqual(
              await threads.agree(a.privateKey, b.publicKey),
              expected(a.privateKey, b.publicKey),
            );
        const jobs = keys.flatMap((a) => keys.map((b) => [a.privateKey, b.publicKey] as const));
        const zs = await Promise.all(jobs.map(([a, b]) => threads.agree(a, b)));
        zs.forEach((z, i) => {
          assert.equal(z.length, 66);
          assert.deepEqual(z, expected(...jobs[i]!));
        });
      } finally {
        await threads.close();
      }
    }
  });

  it('agreements go to the worker once it is online; an answer that is no Z is done here instead', async () => {
    // The first job the worker sees gets an empty answer, which must not reach the caller; every later one
    // gets 0x42s, which shows the pool hands on what its worker computed (its own code, trusted as such).
    const failures: unknown[] = [];
    const threads = new EcdhThreads(1, {
      workerSource: fakeWorker('new Uint8Array(0)'),
      onWorkerFailure: (e) => failures.push(e),
    });
    try {
      const a = p521();
      const b = p521();
      const right = expected(a.privateKey, b.publicKey);
      let rightOnes = 0;
      await until(async () => {
        const z = await threads.agree(a.privateKey, b.publicKey);
        if (Buffer.from(z).equals(FAKE_Z)) return true;
        assert.deepEqual(z, right);
        rightOnes++;
        return false;
      }, 'an agreement answered by the worker');
      assert.ok(rightOnes >= 1, 'the empty answer was handed on or never given');
      assert.deepEqual(failures, []);
    } finally {
      await threads.close();
    }
  });

  it('a worker that dies with jobs in flight: they and the later ones are done on this thread, and it is told once', async () => {
    // A worker that exits on its first job, without answering it.
    const source = `
      const { parentPort } = require('node:worker_threads');
      parentPort.on('message', () => process.exit(7));`;
    const failures: unknown[] = [];
    const threads = new EcdhThreads(1, { workerSource: source, onWorkerFailure: (e) => failures.push(e) });
    try {
      const a = p521();
      const b = p521();
      // Until the worker is online, agreements run here; then one reaches it and kills it.
      await until(async () => {
        assert.deepEqual(await threads.agree(a.privateKey, b.publicKey), expected(a.privateKey, b.publicKey));
        return failures.length > 0;
      }, 'the worker received a job');
      assert.equal(failures.length, 1);
      assert.match(String(failures[0]), /exited with code 7/);
      const later = await Promise.all([1, 2, 3].map(() => threads.agree(b.privateKey, a.publicKey)));
      for (const z of later) assert.deepEqual(z, expected(b.privateKey, a.publicKey));
      assert.equal(failures.length, 1);
    } finally {
      await threads.close();
    }
  });

  it('a job the worker refuses is done here, so the caller gets the real error', async () => {
    // The real worker: ECDH between P-521 and P-384 keys throws there and here alike.
    const threads = new EcdhThreads(1);
    try {
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
      const a = p521();
      let here: Error | undefined;
      try {
        diffieHellman({ privateKey: a.privateKey, publicKey: p384 });
      } catch (e) {
        here = e as Error;
      }
      assert.ok(here);
      for (let i = 0; i < 20; i++)
        await assert.rejects(threads.agree(a.privateKey, p384), { message: here.message });
    } finally {
      await threads.close();
    }
  });

  it('0 threads, or after close: on this thread', async () => {
    const a = p521();
    const b = p521();
    const none = new EcdhThreads(0);
    assert.deepEqual(await none.agree(a.privateKey, b.publicKey), expected(a.privateKey, b.publicKey));
    await none.close();
    const closed = new EcdhThreads(1);
    await closed.agree(a.privateKey, b.publicKey);
    await closed.close();
    assert.deepEqual(await closed.agree(a.privateKey, b.publicKey), expected(a.privateKey, b.publicKey));
  });

  it('a worker with an agreement in flight keeps the process alive until it answers', async () => {
    // A child whose only handle, once the worker is online, is the worker: an unreferenced worker would let
    // the event loop end with the last agreement unanswered (exit 13, nothing printed).
    const mod = runnable('src/native/ecdh-threads.ts');
    const script = `
      import { generateKeyPairSync } from 'node:crypto';
      import { EcdhThreads } from ${JSON.stringify(pathToFileURL(mod).href)};
      const threads = new EcdhThreads(1, {
        workerSource: ${JSON.stringify(fakeWorker('new Uint8Array(66).fill(0x42)'))},
        onWorkerFailure: (e) => {
          process.stderr.write(String(e));
          process.exit(3);
        },
      });
      const a = generateKeyPairSync('ec', { namedCurve: 'P-521' });
      let z = await threads.agree(a.privateKey, a.publicKey);
      for (let i = 0; z[0] !== 0x42; i++) {
        if (i === 3000) process.exit(4);
        await new Promise((r) => setTimeout(r, 10));
        z = await threads.agree(a.privateKey, a.publicKey);
      }
      // Online: this one is answered by the worker alone.
      z = await threads.agree(a.privateKey, a.publicKey);
      process.stdout.write(String(z[0]));`;
    const r = spawnSync(process.execPath, [...loaderFor(mod), '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, String(0x42));
  });

  it('refuses a thread count outside 0..64', () => {
    for (const n of [-1, 1.5, 65, Number.NaN])
      assert.throws(() => new EcdhThreads(n), { code: 'ERR_INVALID_ARGUMENT', reason: 'api.ecdh_threads' });
  });

  it("the broker's JWE sealed through the threads opens with the guest's key", async () => {
    const threads = new EcdhThreads(1);
    try {
      const guest = p521();
      for (let i = 0; i < 4; i++) {
        const sealed = await wrapSecret(guest.publicKey, new Uint8Array([i, 2, 3]), undefined, threads.agree);
        assert.deepEqual(unwrapSecret(guest.privateKey, sealed), new Uint8Array([i, 2, 3]));
      }
    } finally {
      await threads.close();
    }
  });
});
