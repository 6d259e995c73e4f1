import { readFileSync } from 'node:fs';

/**
 * Benchmark harness. A figure is a rate (ops/s) measured against a FLOOR measured in the same run on the same
 * bytes, so the ratio means something on a shared, noisy machine. Subject and floor are run in alternating
 * rounds and the median round of each is kept.
 */

export interface Figure {
  name: string;
  /**
   * ops/s of wall time; ops/cpu-s where CPU is what is measured (synchronous verifies: ops per CPU-second of
   * the bench's main thread, see `rate`; cli.startup: launches per CPU-second).
   */
  unit: 'ops/s' | 'ops/cpu-s' | 'bytes';
  value: number;
  floor: { name: string; value: number };
  /** value / floor.value */
  ratio: number;
  /** The ratio the figure is expected to reach (from the issue), when there is one. */
  target?: number;
  /**
   * A fixed budget the figure must stay within (the dashboard's bundle size and first render), in the
   * figure's unit, with `within` saying whether this run did.
   */
  budget?: { value: number; unit: string; within: boolean };
  rounds: number;
  extra?: Record<string, number | string>;
}

export type Op = () => unknown | Promise<unknown>;

/** Whether `op` is synchronous (its first call did not return a promise). */
export async function isSync(op: Op): Promise<boolean> {
  const first = op();
  if (first instanceof Promise) {
    await first;
    return false;
  }
  return true;
}

/**
 * Nanoseconds this thread has run on a CPU (Linux: /proc/thread-self/schedstat, first field), or undefined
 * where that file does not exist. Per thread, not per process: V8's compiler and GC helper threads and the
 * tsx loader thread run beside the loop and would otherwise be counted against whichever side they overlap.
 */
function threadCpuNs(): bigint | undefined {
  try {
    return BigInt(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]!);
  } catch {
    return undefined;
  }
}

/**
 * Runs `op` repeatedly for about `ms` milliseconds and returns its rate. Async ops: ops per second of wall time
 * (they wait on I/O and other processes). Sync ops run in a tight loop on this thread and are counted per
 * second of this thread's CPU time: on a shared 2-core machine a busy neighbour pre-empts the loop at random,
 * which moves wall time by tens of percent between rounds but leaves the CPU an op costs unchanged.
 */
export async function rate(op: Op, ms: number): Promise<number> {
  const sync = await isSync(op);
  let n = 0;
  const start = process.hrtime.bigint();
  const cpuStart = sync ? threadCpuNs() : undefined;
  const deadline = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 16; i++) {
      if (sync) op();
      else await op();
    }
    n += 16;
    now = process.hrtime.bigint();
  }
  const cpuEnd = cpuStart !== undefined ? threadCpuNs() : undefined;
  if (cpuStart !== undefined && cpuEnd !== undefined && cpuEnd > cpuStart) {
    return n / (Number(cpuEnd - cpuStart) / 1e9);
  }
  return n / (Number(now - start) / 1e9);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

export interface CompareOptions {
  name: string;
  subject: Op;
  floorName: string;
  floor: Op;
  rounds?: number;
  roundMs?: number;
  target?: number;
}

export async function compare(o: CompareOptions): Promise<Figure> {
  const rounds = o.rounds ?? Number(process.env.BENCH_ROUNDS ?? 11);
  const roundMs = o.roundMs ?? Number(process.env.BENCH_ROUND_MS ?? 200);
  const s: number[] = [];
  const f: number[] = [];
  for (let i = 0; i < rounds; i++) {
    f.push(await rate(o.floor, roundMs));
    s.push(await rate(o.subject, roundMs));
  }
  const value = median(s);
  const floor = median(f);
  const cpu = (await isSync(o.subject)) && (await isSync(o.floor)) && threadCpuNs() !== undefined;
  return {
    name: o.name,
    unit: cpu ? 'ops/cpu-s' : 'ops/s',
    value: Math.round(value),
    floor: { name: o.floorName, value: Math.round(floor) },
    // The median of per-round ratios: each subject round is paired with the floor round just before it, so
    // a change in machine load between rounds moves both sides of a ratio together.
    ratio: Number(median(s.map((v, i) => v / f[i]!)).toFixed(3)),
    ...(o.target !== undefined ? { target: o.target } : {}),
    rounds,
  };
}

export function emit(fig: Figure): void {
  process.stdout.write(`${JSON.stringify(fig)}\n`);
}
