/**
 * `cli.startup`: the CPU (user + sys) one `vouchsafe --help` costs (`cli.startup.verify`: one
 * `vouchsafe verify snp --help`, which loads only that command), through bin/vouchsafe.js and the compiled
 * dist/ exactly as the installed package runs it, against the floor `node -e 0` (starting node at all).
 * Both are child processes; their CPU is read from this process's cutime + cstime (/proc/self/stat,
 * getrusage(RUSAGE_CHILDREN)), which counts every child once it has been waited for. Rounds alternate
 * floor and subject, STARTS_PER_ROUND launches each (the clock tick is 10 ms, a launch 50-500 ms).
 *
 * The figure is a rate like the others: launches per CPU-second (unit `ops/cpu-s`), so ratio = floor CPU /
 * subject CPU and 1 would mean the CLI starts as cheaply as bare node. `extra` gives the milliseconds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Figure } from './harness.js';

const STARTS_PER_ROUND = 3;

function clockTicksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** CPU seconds used so far by this process's waited-for children (fields 16 and 17 of /proc/self/stat). */
function childCpu(hz: number): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Field 2 is the command name in parentheses and may hold spaces: count fields after its closing ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / hz;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchCli(root: string): Promise<Figure[]> {
  if (!existsSync('/proc/self/stat')) {
    process.stderr.write('cli.startup skipped: child CPU time is read from /proc (Linux only)\n');
    return [];
  }
  const bin = join(root, 'bin', 'vouchsafe.js');
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) {
    throw new Error('cli.startup measures the compiled CLI: run `npm run build` first');
  }
  const hz = clockTicksPerSecond();
  // No loader from this process (the bench itself runs under tsx) reaches the children.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const launch = (args: string[]) => {
    const r = spawnSync(process.execPath, args, { env, stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status ?? r.signal}`);
  };
  /** CPU seconds per launch over STARTS_PER_ROUND launches. */
  const cpuPerLaunch = (args: string[]) => {
    const before = childCpu(hz);
    for (let i = 0; i < STARTS_PER_ROUND; i++) launch(args);
    return (childCpu(hz) - before) / STARTS_PER_ROUND;
  };
  const floorArgs = ['-e', '0'];
  const rounds = Number(process.env.BENCH_ROUNDS ?? 11);
  /** One figure: `vouchsafe <args>` against `node -e 0`, in alternating rounds. */
  const figure = (name: string, args: string[]): Figure => {
    const subjectArgs = [bin, ...args];
    launch(floorArgs);
    launch(subjectArgs);
    const f: number[] = [];
    const s: number[] = [];
    for (let i = 0; i < rounds; i++) {
      f.push(cpuPerLaunch(floorArgs));
      s.push(cpuPerLaunch(subjectArgs));
    }
    const subjectCpu = median(s);
    const floorCpu = median(f);
    return {
      name,
      unit: 'ops/cpu-s',
      value: Number((1 / subjectCpu).toFixed(2)),
      floor: { name: 'node -e 0', value: Number((1 / floorCpu).toFixed(2)) },
      // Per round, floor CPU / subject CPU (the floor round just before): the median of those.
      ratio: Number(median(s.map((v, i) => f[i]! / v)).toFixed(3)),
      rounds,
      extra: {
        cpuMsPerStart: Math.round(subjectCpu * 1000),
        floorCpuMsPerStart: Math.round(floorCpu * 1000),
        command: `vouchsafe ${args.join(' ')}`,
      },
    };
  };
  // The top-level help loads every command module; a command loads only its own (src/cli/main.ts).
  return [figure('cli.startup', ['--help']), figure('cli.startup.verify', ['verify', 'snp', '--help'])];
}
