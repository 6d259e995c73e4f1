import { diffieHellman, type KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { InvalidArgument } from '../errors.js';
import { zeroize } from '../util/zeroize.js';

/** An ECDH key agreement: the shared secret Z of `privateKey` and `publicKey` (RFC 7518 §4.6.2). */
export type EcdhAgreement = (privateKey: KeyObject, publicKey: KeyObject) => Promise<Uint8Array>;

/** The agreement on the calling thread (node:crypto has no asynchronous `diffieHellman`). */
export const ecdhOnThisThread: EcdhAgreement = async (privateKey, publicKey) => zHere(privateKey, publicKey);

/** Z in an array of its own (never a view of Buffer's shared pool); node's buffer is zeroized. */
function zHere(privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  const z = diffieHellman({ privateKey, publicKey });
  try {
    return new Uint8Array(z);
  } finally {
    zeroize(z);
  }
}

/**
 * The worker: CommonJS over node:crypto only, evaluated from this string, so there is no file to ship in the
 * package or to resolve when the broker runs from TypeScript. Z is copied into a buffer of its own before it
 * is transferred (a pooled buffer would move its whole pool) and the original zeroized.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { diffieHellman } = require('node:crypto');
parentPort.on('message', (m) => {
  let z;
  try {
    z = diffieHellman({ privateKey: m.privateKey, publicKey: m.publicKey });
  } catch {
    parentPort.postMessage({ id: m.id });
    return;
  }
  const out = new Uint8Array(z);
  z.fill(0);
  parentPort.postMessage({ id: m.id, z: out }, [out.buffer]);
});`;

/** Threads by default: one core is left to the event loop, at most 4 (a release needs one ECDH). */
export function defaultEcdhThreads(): number {
  return Math.min(4, Math.max(1, availableParallelism() - 1));
}

interface Job {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly resolve: (z: Uint8Array) => void;
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
 * (docs/broker.md "Performance"). The private key travels as a KeyObject (a cloned handle; the key is never
 * exported) and only Z comes back.
 *
 * A worker that is still starting, has died or cannot answer is no outage: the job runs on the calling thread
 * (`diffieHellman`, which also throws the real error for a job the worker refused). `threads` 0 runs every
 * agreement on the calling thread. Workers start with the first agreement and keep the process alive only
 * while they have work in flight.
 */
export class EcdhThreads {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closed = false;

  /** Throws InvalidArgument `api.ecdh_threads` for a count outside 0..64. */
  constructor(
    private readonly threads: number,
    private readonly o: EcdhThreadsOptions = {},
  ) {
    if (!(Number.isSafeInteger(threads) && threads >= 0 && threads <= 64)) {
      throw new InvalidArgument('api.ecdh_threads', 'ecdhThreads must be an integer in 0..64');
    }
  }

  readonly agree: EcdhAgreement = (privateKey, publicKey) => {
    if (this.closed || this.threads === 0) return ecdhOnThisThread(privateKey, publicKey);
    if (this.slots.length === 0) this.start();
    // The live worker with the fewest jobs in flight.
    let best: Slot | undefined;
    for (const s of this.slots) if (s.online && !s.dead && (!best || s.jobs.size < best.jobs.size)) best = s;
    if (!best) return ecdhOnThisThread(privateKey, publicKey);
    const slot = best;
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      // A worker with work in flight keeps the process alive (an idle one does not): a caller awaiting Z
      // must not see its event loop end under it.
      if (slot.jobs.size === 0) slot.worker.ref();
      slot.jobs.set(id, { privateKey, publicKey, resolve, reject });
      slot.worker.postMessage({ id, privateKey, publicKey });
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
      worker.on('message', (m: { id: number; z?: Uint8Array }) => {
        const job = slot.jobs.get(m.id);
        if (!job) return;
        slot.jobs.delete(m.id);
        if (slot.jobs.size === 0) worker.unref();
        if (m.z instanceof Uint8Array && m.z.length > 0) job.resolve(m.z);
        else settleHere(job);
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
    for (const job of slot.jobs.values()) settleHere(job);
    slot.jobs.clear();
  }
}

function settleHere(job: Job): void {
  try {
    job.resolve(zHere(job.privateKey, job.publicKey));
  } catch (e) {
    job.reject(e);
  }
}
