import { readFileSync } from 'node:fs';
import { Agent, type IncomingHttpHeaders, request } from 'node:http';

// biome-ignore lint/suspicious/noExplicitAny: the bench walks JSON replies freely
export type Json = any;

/**
 * Load generators for the broker benchmark: a closed loop (N workers, each issuing its next operation when
 * the previous one completes: the peak rate) and an open loop (operations started on a fixed schedule
 * whatever the latency: the latency a client sees at a given offered rate, without coordinated omission).
 */

/** Nearest-rank percentile of `xs` (milliseconds), `p` in (0, 100]. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const round2 = (x: number): number => Math.round(x * 100) / 100;

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** One operation; its index is unique within a run. Must throw if the operation did not succeed. */
export type LoadOp = (i: number) => Promise<void>;

export interface LoadResult {
  /** Completed operations per second. */
  readonly rate: number;
  readonly ops: number;
  /** Latency of each operation, ms. */
  readonly latencies: number[];
}

/**
 * `concurrency` workers for about `ms` milliseconds (operations in flight at the deadline are waited for
 * and counted). The first error stops the run and is thrown.
 */
export async function closedLoop(
  op: LoadOp,
  concurrency: number,
  ms: number,
  first = 0,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const start = nowMs();
  const deadline = start + ms;
  let next = first;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && nowMs() < deadline) {
      const t = nowMs();
      try {
        await op(next++);
      } catch (e) {
        failed ??= e;
        return;
      }
      latencies.push(nowMs() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failed !== undefined) throw failed;
  const elapsed = nowMs() - start;
  return { rate: latencies.length / (elapsed / 1000), ops: latencies.length, latencies };
}

/**
 * Starts operation k at `start + phaseMs + k / rate` for `ms` milliseconds, then waits for all of them.
 * Latency is measured from the scheduled start, so a stalled system shows up as latency (no coordinated
 * omission). The first error is thrown once everything has settled.
 */
export async function openLoop(
  op: LoadOp,
  rate: number,
  ms: number,
  first = 0,
  phaseMs = 0,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const inflight = new Set<Promise<void>>();
  let failed: unknown;
  const start = nowMs();
  const total = Math.max(1, Math.floor((rate * ms) / 1000));
  for (let k = 0; k < total && failed === undefined; k++) {
    const scheduled = start + phaseMs + (k * 1000) / rate;
    const wait = scheduled - nowMs();
    if (wait > 1) await new Promise((r) => setTimeout(r, Math.floor(wait)));
    const p = op(first + k).then(
      () => {
        latencies.push(nowMs() - scheduled);
      },
      (e) => {
        failed ??= e;
      },
    );
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  }
  await Promise.all(inflight);
  if (failed !== undefined) throw failed;
  const elapsed = nowMs() - start;
  return { rate: latencies.length / (elapsed / 1000), ops: latencies.length, latencies };
}

/**
 * A FIFO pool of items (instances) so that no item is used by two operations at once, and an item comes
 * back into use as late as possible. Taking from an empty pool throws: more operations are in flight than
 * the pool was sized for, which a benchmark must report, not hide.
 */
export class ItemPool<T> {
  private readonly free: T[];
  constructor(items: readonly T[]) {
    this.free = [...items];
  }
  take(): T {
    const x = this.free.shift();
    if (x === undefined) throw new Error('instance pool exhausted: too many operations in flight');
    return x;
  }
  give(x: T): void {
    this.free.push(x);
  }
  async use<R>(fn: (x: T) => Promise<R>): Promise<R> {
    const x = this.take();
    try {
      return await fn(x);
    } finally {
      this.give(x);
    }
  }
}

/**
 * CPU time (user + system, all threads) a process has used so far, in ms, from /proc/PID/stat; undefined
 * where there is no /proc. Ticks are assumed to be 1/100 s (USER_HZ on Linux).
 */
export function processCpuMs(pid: number): number | undefined {
  return statCpuMs(`/proc/${pid}/stat`);
}

/** This process's main thread's CPU time so far (on the proxy path: the host proxy), ms. */
export function mainThreadCpuMs(): number | undefined {
  return statCpuMs(`/proc/self/task/${process.pid}/stat`);
}

/** The main thread's (the event loop's) CPU time so far of process `pid`, ms. */
export function processMainThreadCpuMs(pid: number): number | undefined {
  return statCpuMs(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuMs(path: string): number | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces): state is field 3.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

/** The machine's CPU time so far from /proc/stat's `cpu` line, ms, summed over cores. */
export interface MachineCpu {
  /** user + nice + system + irq + softirq: work done by anyone (broker, clients, database, others). */
  readonly busy: number;
  readonly idle: number;
  /** Time the hypervisor ran something else while a vCPU wanted to run (not ours to use). */
  readonly steal: number;
}

export function machineCpu(): MachineCpu | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, ...number[]];
    const tick = 10; // USER_HZ is 100 on Linux
    return {
      busy: (user + nice! + system! + irq! + softirq!) * tick,
      idle: (idle! + iowait!) * tick,
      steal: (steal ?? 0) * tick,
    };
  } catch {
    return undefined;
  }
}

/** This process's CPU time so far (user + system, all threads), ms. */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

/** A JSON reply: status, headers and the parsed body. */
export interface JsonReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Json;
}

/**
 * One JSON exchange over node:http with kept-alive connections (`body` undefined: a GET). The load generator
 * shares the machine's two cores with the broker, so it uses the cheapest client node offers: `fetch`
 * (undici through web streams) cost ~2x the CPU per request.
 */
export function httpJson(
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonReply> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: payload ? 'POST' : 'GET',
        agent: keepAlive,
        headers: payload
          ? { ...headers, 'content-type': 'application/json', 'content-length': payload.length }
          : headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          try {
            const text = Buffer.concat(chunks).toString();
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: text ? JSON.parse(text) : null,
            });
          } catch (e) {
            reject(e);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** POST a JSON body: {@link httpJson}. */
export const postJson = (url: string, body: unknown): Promise<JsonReply> => httpJson(url, body);

/**
 * A load generator: closed-loop and open-loop runs of one kind of operation, in this thread
 * ({@link inThisThread}) or spread over worker threads (bench/load-workers.ts).
 */
export interface Load {
  closed(concurrency: number, ms: number, first: number): Promise<LoadResult>;
  open(rate: number, ms: number, first: number): Promise<LoadResult>;
  close(): Promise<void>;
}

/** `op` run on this thread's event loop. */
export function inThisThread(op: LoadOp): Load {
  return {
    closed: (concurrency, ms, first) => closedLoop(op, concurrency, ms, first),
    open: (rate, ms, first) => openLoop(op, rate, ms, first),
    close: async () => {},
  };
}
