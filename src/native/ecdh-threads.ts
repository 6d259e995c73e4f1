import { diffieHellman, type KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { InvalidArgument } from '../errors.js';
import { type EcPublicKey, P521_COORD_SIZE } from '../formats/aproxy/types.js';
import { SPKI_PREFIX } from '../util/ec-public-key.js';
import { zeroize } from '../util/zeroize.js';
import { EphemeralKeyPool } from './ephemeral-pool.js';
import { generateP521KeyPair, p521PointOf, p521PublicKeyFromPoint } from './p521.js';

/** The key agreement of one JWE: a fresh ephemeral key's point and its shared secret Z with the recipient. */
export interface Agreement {
  readonly epk: EcPublicKey;
  readonly z: Uint8Array;
}

/**
 * Agrees a fresh ephemeral P-521 key with `recipient` (RFC 7518 §4.6: one ephemeral key per message, §4.6.2:
 * Z = ECDH). Throws MalformedEvidence `crypto.p521.point` for a recipient that is not a P-521 point. The
 * caller zeroizes Z.
 */
export type EcdhAgreement = (recipient: EcPublicKey) => Promise<Agreement>;

/**
 * The agreement on the calling thread (node:crypto has no asynchronous `diffieHellman`), its ephemeral key
 * taken from `pool` (keys made ahead of need) or, without one, generated for this call.
 */
export function agreementOnThisThread(pool?: EphemeralKeyPool): EcdhAgreement {
  return async (recipient) => {
    // Checked before a pooled key is spent on it.
    const publicKey = p521PublicKeyFromPoint(recipient, 'recipient');
    if (pool) {
      const eph = await pool.take();
      return { epk: eph.point, z: zHere(eph.privateKey, publicKey) };
    }
    const kp = await generateP521KeyPair();
    return { epk: p521PointOf(kp.publicKey), z: zHere(kp.privateKey, publicKey) };
  };
}

/** Z in an array of its own (never a view of Buffer's shared pool); node's buffer is zeroized. */
function zHere(privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  const z = diffieHellman({ privateKey, publicKey });
  try {
    return new Uint8Array(z);
  } finally {
    zeroize(z);
  }
}

/** Ephemeral keys a worker keeps ready, and how many it has made at once at most (on libuv's thread pool). */
const WORKER_POOL = 8;
const WORKER_FILLING = 2;

/**
 * The worker: CommonJS over node:crypto only, evaluated from this string, so there is no file to ship in the
 * package or to resolve when the broker runs from TypeScript. It owns the ephemeral keys: it has them made
 * ahead of need on libuv's thread pool (as the event loop's pool did, so a burst of releases still spreads
 * its key generations over more than one core), uses each for one agreement and answers with the point and
 * Z only, so no P-521 key object of a release lives on the event loop's thread (the service there imports
 * the guest's point only to check it, and drops it at once). Each key object carries a native destructor
 * that V8 runs when it collects the key; keys that lived across a young-generation collection (pooled, or in
 * flight) were collected by the main thread's Mark-Compact, whose pause they dominated (docs/broker.md
 * "Performance"). The recipient arrives as its coordinates and is imported as SubjectPublicKeyInfo DER,
 * which makes OpenSSL check that the point is on the curve; a job it cannot do is answered without Z, and the
 * caller redoes it on its own thread to get the real error. A job that finds no key ready waits for the next
 * one made. Z is copied into a buffer of its own before it is transferred (a pooled buffer would move its
 * whole pool) and the original zeroized. (The SPKI check and slicing repeat p521PointOf's: the worker runs
 * this string alone, with no module of ours to import.)
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, diffieHellman, generateKeyPair } = require('node:crypto');
const PREFIX = Buffer.from('${SPKI_PREFIX['P-521'].toString('hex')}', 'hex');
const ready = [];
const waiting = [];
let filling = 0;
function keyOf(publicKey, privateKey) {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  if (der.length !== PREFIX.length + 132 || !der.subarray(0, PREFIX.length).equals(PREFIX)) {
    throw new Error('unexpected SPKI encoding of a P-521 key');
  }
  return { privateKey, x: new Uint8Array(der.subarray(PREFIX.length, PREFIX.length + 66)), y: new Uint8Array(der.subarray(PREFIX.length + 66)) };
}
function fill() {
  while (filling < ${WORKER_FILLING} && ready.length + filling < ${WORKER_POOL} + waiting.length) {
    filling++;
    generateKeyPair('ec', { namedCurve: 'P-521' }, (err, publicKey, privateKey) => {
      filling--;
      let key;
      try {
        if (err) throw err;
        key = keyOf(publicKey, privateKey);
      } catch {
        // Every waiting job is handed back (done on the caller's thread); the next job tries again.
        for (const w of waiting.splice(0)) w(undefined);
        return;
      }
      const next = waiting.shift();
      if (next) next(key);
      else ready.push(key);
      fill();
    });
  }
}
function agree(id, publicKey, eph) {
  let out;
  try {
    if (!eph) throw new Error('no ephemeral key');
    const z = diffieHellman({ privateKey: eph.privateKey, publicKey });
    out = { id, x: eph.x, y: eph.y, z: new Uint8Array(z) };
    z.fill(0);
  } catch {
    parentPort.postMessage({ id });
    return;
  }
  parentPort.postMessage(out, [out.z.buffer, out.x.buffer, out.y.buffer]);
}
parentPort.on('message', (m) => {
  let publicKey;
  try {
    publicKey = createPublicKey({ key: Buffer.concat([PREFIX, m.x, m.y]), format: 'der', type: 'spki' });
  } catch {
    parentPort.postMessage({ id: m.id });
    return;
  }
  const eph = ready.shift();
  if (eph) agree(m.id, publicKey, eph);
  else waiting.push((k) => agree(m.id, publicKey, k));
  fill();
});
fill();`;

/** Threads by default: one core is left to the event loop, at most 4 (a release needs one ECDH). */
export function defaultEcdhThreads(): number {
  return Math.min(4, Math.max(1, availableParallelism() - 1));
}

interface Job {
  readonly recipient: EcPublicKey;
  readonly resolve: (a: Agreement) => void;
  readonly reject: (e: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  online: boolean;
  dead: boolean;
  readonly jobs: Map<number, Job>;
}

export interface EcdhThreadsOptions {
  /** Told once per worker that failed; its jobs and the ones after it run on the calling thread. */
  readonly onWorkerFailure?: (err: unknown) => void;
  /** Replaces the worker's source (tests: a worker that dies or answers nothing). */
  readonly workerSource?: string;
}

/**
 * The broker's P-521 ECDH (3 ms of CPU per release here, the largest synchronous step of a release) on
 * worker threads, so that the event loop, which runs every request and the store's one-at-a-time group
 * commit, is not blocked by it, and one broker process can use more than one core for its releases
 * (docs/broker.md "Performance"). The recipient's point goes to a worker; the ephemeral key's point and Z
 * come back (the worker makes and keeps the ephemeral keys, see WORKER_SOURCE).
 *
 * A worker that is still starting, has died or cannot answer is no outage: the job runs on the calling
 * thread (agreementOnThisThread, which also throws the real error for a job the worker refused). `threads` 0
 * runs every agreement on the calling thread. Workers start with the first agreement and keep the process alive only
 * while they have work in flight.
 */
export class EcdhThreads {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closed = false;
  /** Jobs answered by a worker, and jobs a worker answered with no agreement (redone here). */
  readonly answers = { agreed: 0, handedBack: 0 };
  /**
   * Jobs no worker does. With 0 threads that is every job, so its keys are made ahead of need; with workers it
   * is only a job sent while they start or after one died, whose key is made for it, so that no pool of P-521
   * keys is left waiting on the event loop's heap.
   */
  private readonly here: EcdhAgreement;

  /** Throws InvalidArgument `api.ecdh_threads` for a count outside 0..64. */
  constructor(
    private readonly threads: number,
    private readonly o: EcdhThreadsOptions = {},
  ) {
    if (!(Number.isSafeInteger(threads) && threads >= 0 && threads <= 64)) {
      throw new InvalidArgument('api.ecdh_threads', 'ecdhThreads must be an integer in 0..64');
    }
    this.here = agreementOnThisThread(threads === 0 ? new EphemeralKeyPool() : undefined);
  }

  readonly agree: EcdhAgreement = (recipient) => {
    if (this.closed || this.threads === 0) return this.here(recipient);
    if (this.slots.length === 0) this.start();
    // The live worker with the fewest jobs in flight.
    let best: Slot | undefined;
    for (const s of this.slots) if (s.online && !s.dead && (!best || s.jobs.size < best.jobs.size)) best = s;
    if (!best) return this.here(recipient);
    const slot = best;
    const id = this.nextId++;
    return new Promise<Agreement>((resolve, reject) => {
      // A worker with work in flight keeps the process alive (an idle one does not): a caller awaiting Z
      // must not see its event loop end under it.
      if (slot.jobs.size === 0) slot.worker.ref();
      slot.jobs.set(id, { recipient, resolve, reject });
      slot.worker.postMessage({ id, x: recipient.x, y: recipient.y });
    });
  };

  /** Stops the workers; jobs still in flight run on the calling thread. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map((s) => {
        s.dead = true;
        this.runHere(s);
        return s.worker.terminate();
      }),
    );
  }

  private start(): void {
    for (let i = 0; i < this.threads; i++) {
      // No inherited node flags: the source is CommonJS over node:crypto, whatever loader or input type the
      // process was started with (`--import tsx`, `--input-type=module`).
      const worker = new Worker(this.o.workerSource ?? WORKER_SOURCE, { eval: true, execArgv: [] });
      worker.unref();
      const slot: Slot = { worker, online: false, dead: false, jobs: new Map() };
      worker.once('online', () => {
        slot.online = true;
      });
      worker.on('message', (m: { id: number; x?: unknown; y?: unknown; z?: unknown }) => {
        const job = slot.jobs.get(m.id);
        if (!job) return;
        slot.jobs.delete(m.id);
        if (slot.jobs.size === 0) worker.unref();
        if (isCoordinate(m.x) && isCoordinate(m.y) && isCoordinate(m.z)) {
          this.answers.agreed++;
          job.resolve({ epk: { x: m.x, y: m.y }, z: m.z });
        } else {
          this.answers.handedBack++;
          this.settleHere(job);
        }
      });
      const fail = (err: unknown) => {
        if (slot.dead) return;
        slot.dead = true;
        if (!this.closed) this.o.onWorkerFailure?.(err);
        this.runHere(slot);
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`ECDH worker exited with code ${code}`)));
      this.slots.push(slot);
    }
  }

  private runHere(slot: Slot): void {
    for (const job of slot.jobs.values()) this.settleHere(job);
    slot.jobs.clear();
  }

  private settleHere(job: Job): void {
    this.here(job.recipient).then(job.resolve, job.reject);
  }
}

/** A P-521 coordinate or Z: 66 bytes (SEC 1 §2.3.5, ⌈521/8⌉). */
function isCoordinate(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length === P521_COORD_SIZE;
}
