import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { diffieHellman } from 'node:crypto';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { EcPublicKey } from '../../src/formats/aproxy/types.js';
import { type Agreement, EcdhThreads } from '../../src/native/ecdh-threads.js';
import { unwrapSecret, wrapSecret } from '../../src/native/jwe-ecdh-es.js';
import { p521PointOf, p521PublicKeyFromPoint } from '../../src/native/p521.js';
import { toHex } from '../../src/util/bytes.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { loaderFor, ROOT, runnable } from '../helpers/paths.js';

const p521 = () => newKeyPairSync('ec', { namedCurve: 'P-521' });
type Pair = ReturnType<typeof p521>;
const pointOf = (k: Pair) => p521PointOf(k.publicKey);

/** The agreement is right for `guest`: Z is what the guest computes from its private key and the epk. */
function assertAgreed(guest: Pair, a: Agreement): void {
  const z = diffieHellman({ privateKey: guest.privateKey, publicKey: p521PublicKeyFromPoint(a.epk) });
  assert.deepEqual(a.z, new Uint8Array(z));
}
const epkId = (epk: EcPublicKey) => toHex(epk.x) + toHex(epk.y);

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

/** A worker that answers every job with epk and Z all 0x42 (after answering `first` as Z of the first job). */
const fakeWorker = (first: string) => `
  const { parentPort } = require('node:worker_threads');
  const b = () => new Uint8Array(66).fill(0x42);
  let n = 0;
  parentPort.on('message', (m) => parentPort.postMessage({ id: m.id, x: b(), y: b(), z: n++ === 0 ? ${first} : b() }));`;
const FAKE = new Uint8Array(66).fill(0x42);

describe('native/ecdh-threads', () => {
  it("gives the guest's Z with a fresh ephemeral key every time, one at a time and many at once, on 1 and 2 threads", async () => {
    for (const n of [1, 2]) {
      const threads = new EcdhThreads(n);
      const epks = new Set<string>();
      try {
        const guests = Array.from({ length: 4 }, p521);
        for (const g of guests) {
          const a = await threads.agree(pointOf(g));
          assertAgreed(g, a);
          epks.add(epkId(a.epk));
        }
        const jobs = Array.from({ length: 40 }, (_, i) => guests[i % guests.length]!);
        const all = await Promise.all(jobs.map((g) => threads.agree(pointOf(g))));
        all.forEach((a, i) => {
          assertAgreed(jobs[i]!, a);
          epks.add(epkId(a.epk));
        });
        // RFC 7518 §4.6: an ephemeral key is used for one message only, here or on a worker.
        assert.equal(epks.size, 44, 'an ephemeral key was used twice');
      } finally {
        await threads.close();
      }
    }
  });

  it('agreements go to the worker once it is online; an answer that is no Z is done here instead', async () => {
    // The first job the worker sees gets an empty Z, which must not reach the caller; every later one gets
    // 0x42s, which shows the threads hand on what their worker computed (its own code, trusted as such).
    const failures: unknown[] = [];
    const threads = new EcdhThreads(1, {
      workerSource: fakeWorker('new Uint8Array(0)'),
      onWorkerFailure: (e) => failures.push(e),
    });
    try {
      const g = p521();
      let rightOnes = 0;
      await until(async () => {
        const a = await threads.agree(pointOf(g));
        if (Buffer.from(a.z).equals(FAKE)) {
          assert.deepEqual(a.epk, { x: FAKE, y: FAKE });
          return true;
        }
        assertAgreed(g, a);
        rightOnes++;
        return false;
      }, 'an agreement answered by the worker');
      assert.ok(rightOnes >= 1, 'the empty answer was handed on or never given');
      assert.equal(threads.answers.handedBack, 1);
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
      const g = p521();
      // Until the worker is online, agreements run here; then one reaches it and kills it.
      await until(async () => {
        assertAgreed(g, await threads.agree(pointOf(g)));
        return failures.length > 0;
      }, 'the worker received a job');
      assert.equal(failures.length, 1);
      assert.match(String(failures[0]), /exited with code 7/);
      const later = await Promise.all([1, 2, 3].map(() => threads.agree(pointOf(g))));
      for (const a of later) assertAgreed(g, a);
      assert.equal(failures.length, 1);
    } finally {
      await threads.close();
    }
  });

  it('a point not on P-521 is refused by the worker and here alike, with the typed error, and costs no key', async () => {
    // The real worker: its DER import makes OpenSSL check the point, as p521PublicKeyFromPoint does here.
    const threads = new EcdhThreads(1);
    try {
      const g = p521();
      const off = { x: new Uint8Array(66).fill(1), y: new Uint8Array(66).fill(2) };
      // Once the worker is online, the bad point reaches it and comes back; a good one after it is served.
      await until(async () => {
        await assert.rejects(threads.agree(off), { code: 'ERR_MALFORMED', reason: 'crypto.p521.point' });
        return threads.answers.handedBack > 0;
      }, 'the worker handed a point back');
      assert.equal(threads.answers.handedBack, 1);
      const before = threads.answers.agreed;
      assertAgreed(g, await threads.agree(pointOf(g)));
      assert.equal(threads.answers.agreed, before + 1, 'the good point was agreed by the worker');
    } finally {
      await threads.close();
    }
  });

  it('0 threads, or after close: on this thread', async () => {
    const g = p521();
    const none = new EcdhThreads(0);
    assertAgreed(g, await none.agree(pointOf(g)));
    await none.close();
    const closed = new EcdhThreads(1);
    await closed.agree(pointOf(g));
    await closed.close();
    assertAgreed(g, await closed.agree(pointOf(g)));
  });

  it('a worker with an agreement in flight keeps the process alive until it answers', async () => {
    // A child whose only handle, once the worker is online, is the worker: an unreferenced worker would let
    // the event loop end with the last agreement unanswered (exit 13, nothing printed).
    const mod = runnable('src/native/ecdh-threads.ts');
    const script = `
      import { newKeyPairSync } from ${JSON.stringify(pathToFileURL(runnable('src/util/key-pair.ts')).href)};
      import { EcdhThreads } from ${JSON.stringify(pathToFileURL(mod).href)};
      import { p521PointOf } from ${JSON.stringify(pathToFileURL(runnable('src/native/p521.ts')).href)};
      const threads = new EcdhThreads(1, {
        workerSource: ${JSON.stringify(fakeWorker('new Uint8Array(66).fill(0x42)'))},
        onWorkerFailure: (e) => {
          process.stderr.write(String(e));
          process.exit(3);
        },
      });
      const point = p521PointOf(newKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey);
      let z = (await threads.agree(point)).z;
      for (let i = 0; z[0] !== 0x42; i++) {
        if (i === 3000) process.exit(4);
        await new Promise((r) => setTimeout(r, 10));
        z = (await threads.agree(point)).z;
      }
      // Online: this one is answered by the worker alone.
      z = (await threads.agree(point)).z;
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
        const sealed = await wrapSecret(guest.publicKey, new Uint8Array([i, 2, 3]), threads.agree);
        assert.deepEqual(unwrapSecret(guest.privateKey, sealed), new Uint8Array([i, 2, 3]));
      }
    } finally {
      await threads.close();
    }
  });
});
