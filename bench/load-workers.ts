/**
 * The load generator spread over worker threads. A single-threaded client running a thousand guests' crypto
 * (the simulated AMD-SP's signature, ECDH unwraps, signature checks) was itself the bottleneck of the release
 * benches: one event loop at 7-8 ms of CPU per guest boot, while the broker's loop waited for it. Real guests
 * run on their own CPUs; here they share the machine's cores with the broker, but no longer one thread.
 *
 * Each worker (bench/load-worker.ts) gets its own share of the instances and client keys and runs the same
 * closed or open loop as bench/broker-load.ts; the results are merged. The workers' CPU is this process's
 * (`ownCpuMs` counts every thread).
 */
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { P521KeyPair } from '../src/native/p521.js';
import type { SimChain } from '../src/sim/snp/index.js';
import type { Load, LoadResult } from './broker-load.js';
import type { Instance } from './release-ops.js';

/** What a worker builds its operation from (structured-cloned: KeyObjects and bytes travel as they are). */
export interface WorkerSpec {
  readonly kind: 'http' | 'proxy';
  readonly chain: SimChain;
  /** http: the broker (challenge and attest). */
  readonly brokerUrl?: string;
  /** proxy: the proxy's address and the broker key the guests pin. */
  readonly connect?: string;
  readonly brokerPublicKey?: KeyObject;
  /** `connect`: this instance's own proxy socket (a fleet has one socket per 64 guests), else `connect`. */
  readonly instances: readonly { id: string; hostData: Uint8Array; statePath: string; connect?: string }[];
  readonly keys: readonly P521KeyPair[];
}

export type WorkerCommand =
  | { readonly cmd: 'closed'; readonly concurrency: number; readonly ms: number; readonly first: number }
  | {
      readonly cmd: 'open';
      readonly rate: number;
      readonly ms: number;
      readonly first: number;
      readonly phaseMs: number;
    }
  | { readonly cmd: 'burst' };

export type WorkerReply = { readonly ok: LoadResult } | { readonly error: string } | { readonly ready: true };

const WORKER_URL = new URL('./load-worker.ts', import.meta.url).href;
/**
 * The worker's entry: the bench runs its TypeScript through tsx, whose loader Node 20 does not install in
 * worker threads, so the worker registers it before importing its module.
 */
const WORKER_BOOT = `
  const { workerData } = require('node:worker_threads');
  import('tsx/esm/api').then(({ register }) => { register(); return import(workerData); });
`;

/** How many load workers (BENCH_LOAD_WORKERS, default 2; 0 runs the load on this thread). */
export const loadWorkerCount = (): number => Number(process.env.BENCH_LOAD_WORKERS ?? 2);

/**
 * Starts `n` workers, each with an equal share of `instances` and `keys`. A closed loop of concurrency c
 * gives each worker c/n (the first ones one more when it does not divide); an open loop at rate r, r/n each,
 * their schedules offset so that the arrivals interleave.
 */
export interface WorkerLoad extends Load {
  /**
   * proxy only: every instance boots once, all at the same moment (a fleet restart); each boot's time from
   * its worker's start, ms.
   */
  burst(): Promise<number[]>;
}

export async function workerLoad(
  spec: Omit<WorkerSpec, 'instances' | 'keys'>,
  instances: readonly (Instance & { readonly connect?: string })[],
  keys: readonly P521KeyPair[],
  n: number,
): Promise<WorkerLoad> {
  const share = <T>(xs: readonly T[], w: number) => xs.filter((_, i) => i % n === w);
  const workers = await Promise.all(
    Array.from({ length: n }, async (_, w) => {
      const worker = new Worker(WORKER_BOOT, { eval: true, workerData: WORKER_URL });
      const port = replies(worker);
      worker.postMessage({
        ...spec,
        instances: share(instances, w).map(({ id, hostData, statePath, connect }) => ({
          id,
          hostData,
          statePath,
          ...(connect ? { connect } : {}),
        })),
        keys: share(keys, w),
      } satisfies WorkerSpec);
      await port.next();
      return { worker, port };
    }),
  );
  const run = async (cmds: WorkerCommand[]): Promise<LoadResult> => {
    const results = await Promise.all(
      workers.map(async ({ worker, port }, w) => {
        worker.postMessage(cmds[w]);
        return (await port.next()) as LoadResult;
      }),
    );
    const latencies = results.flatMap((r) => r.latencies);
    return { rate: results.reduce((a, r) => a + r.rate, 0), ops: latencies.length, latencies };
  };
  return {
    closed: (concurrency, ms, first) =>
      run(
        workers.map((_, w) => ({
          cmd: 'closed',
          concurrency: Math.floor(concurrency / n) + (w < concurrency % n ? 1 : 0),
          ms,
          first: first + w * 1_000_000,
        })),
      ),
    open: (rate, ms, first) =>
      // Worker w's schedule starts w/rate later: the arrivals interleave evenly at `rate`, rather than
      // coming n at a time at rate/n (which made every arrival meet another on the two cores).
      run(
        workers.map((_, w) => ({
          cmd: 'open',
          rate: rate / n,
          ms,
          first: first + w * 1_000_000,
          phaseMs: (w * 1000) / rate,
        })),
      ),
    burst: async () => (await run(workers.map(() => ({ cmd: 'burst' })))).latencies,
    close: async () => {
      await Promise.all(workers.map(({ worker }) => worker.terminate()));
    },
  };
}

/** The worker's replies in order; an error reply or the worker's death rejects. */
function replies(worker: Worker): { next(): Promise<unknown> } {
  const waiting: { resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  worker.on('message', (m: WorkerReply) => {
    const w = waiting.shift();
    if (!w) return;
    if ('error' in m) w.reject(new Error(`load worker: ${m.error}`));
    else w.resolve('ok' in m ? m.ok : m);
  });
  const fail = (e: unknown) => {
    for (const w of waiting.splice(0)) w.reject(e);
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`load worker exited (${code})`)));
  return { next: () => new Promise((resolve, reject) => waiting.push({ resolve, reject })) };
}
