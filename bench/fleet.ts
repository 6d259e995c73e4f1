/**
 * Fleet restart: N instances (BENCH_FLEET_N, default 1000; a comma list runs each) boot at the same moment
 * through the host proxy after a host or zone restart, on SQLite and on PostgreSQL. Each guest is a full
 * 0.2.0 boot (src/guest bootGuest: negotiate, attest, the broker's signature checked against its pinned
 * key, unwrap, unseal and write the state file, commit) with its own state file and its own instance; its
 * P-521 key comes from a pool made before the start, as in bench/broker.ts, and the guests run on load
 * worker threads (bench/load-workers.ts, BENCH_LOAD_WORKERS) rather than on one event loop.
 *
 * Reported per engine and N: the time from the start until the last guest has its key and its commit
 * acknowledged (`makespanMs`), the p50/p99 of the guests' boot times, and the same N releases done by the
 * floor alone, one after another on one core (bench/broker.ts releaseFloor: the release's unavoidable
 * crypto): `ratio` = floor time / makespan. The broker runs in its own process (CPU per release reported
 * apart from this process's: the guests, their simulated AMD-SP and the proxy).
 *
 * Durability cost, counted: PostgreSQL WAL flushes per release from pg_stat_wal (`walSyncsPerRelease`,
 * server-wide, so it includes the registration's flushes only if it overlapped: it does not, it is read
 * after registration); on SQLite, with BENCH_FLEET_STRACE=1, the broker's fsync/fdatasync calls counted by
 * strace (`fsyncsPerRelease`; strace slows every syscall, so that run's times are not comparable).
 *
 * Every guest must boot and commit, and the broker must refuse nothing, or the bench throws.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { generateP521KeyPair } from '../src/native/p521.js';
import { createNativeBackend } from '../src/proxy/backends/native/index.js';
import { startProxy } from '../src/proxy/index.js';
import { sharedSimChain } from '../src/sim/snp/index.js';
import { type BrokerProcess, spawnBroker } from '../test/crash/spawn-broker.js';
import { startTestPostgres } from '../test/helpers/postgres.js';
import { registerInstances, releaseFloor } from './broker.js';
import { ownCpuMs, percentile, processCpuMs, round2 } from './broker-load.js';
import type { Figure } from './harness.js';
import { loadWorkerCount, workerLoad } from './load-workers.js';

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
const TIMEOUT_MS = 600_000;

/** Starts `strace -c` on every thread of `pid`, counting flush calls; stop() returns their number. */
function straceFlushes(pid: number): { stop: () => Promise<number> } {
  const out: string[] = [];
  const child: ChildProcess = spawn(
    'strace',
    ['-f', '-c', '-e', 'trace=fsync,fdatasync', '-p', String(pid)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (d: Buffer) => out.push(d.toString()));
  return {
    stop: async () => {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await done;
      let n = 0;
      for (const m of out
        .join('')
        .matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?f(?:data)?sync$/gm)) {
        n += Number(m[1]);
      }
      return n;
    },
  };
}

async function walSyncs(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query('SELECT wal_sync FROM pg_stat_wal');
    return Number(r.rows[0].wal_sync);
  } finally {
    await c.end();
  }
}

interface RunResult {
  readonly makespanMs: number;
  readonly latencies: number[];
  readonly brokerCpuMs: number;
  readonly ownCpuMs: number;
  readonly flushes?: number;
}

async function fleetOnce(
  b: BrokerProcess,
  engine: string,
  n: number,
  dir: string,
  stateDir: string,
  databaseUrl: string | undefined,
): Promise<RunResult> {
  const chain = await sharedSimChain('Milan');
  const tag = `fleet${n}`;
  const instances = await registerInstances(b, chain, n, tag, stateDir);
  // The guests' P-521 keys are made before the clock starts, as in bench/broker.ts (a real guest makes its
  // own, on its own CPU; the broker's work is the same either way).
  const keys = await Promise.all(Array.from({ length: Math.min(n, 64) }, () => generateP521KeyPair()));
  const proxy = await startProxy({
    // A socket per 64 guests: a real host gives each VM its own (docs/protocol.md §1); one socket for all
    // would overflow the listen backlog (EAGAIN) when a thousand connect in the same instant.
    listen: Array.from({ length: Math.ceil(n / 64) }, (_, i) => `unix:${join(dir, `${tag}-${i}.sock`)}`),
    backend: createNativeBackend({ brokerUrl: b.url, timeoutMs: TIMEOUT_MS }),
    logger: pino({ level: 'silent' }),
    timeouts: { backendMs: TIMEOUT_MS, sessionMs: TIMEOUT_MS, readMs: TIMEOUT_MS, firstFrameMs: TIMEOUT_MS },
    limits: { maxSessions: Math.max(1024, n), maxQueued: Math.max(1024, n), queueWaitMs: TIMEOUT_MS },
  });
  // The guests run on worker threads (bench/load-workers.ts), each with its share of the instances.
  const load = await workerLoad(
    { kind: 'proxy', chain, brokerPublicKey: b.publicKey },
    instances.map((inst, i) => ({ ...inst, connect: proxy.addresses[Math.floor(i / 64)]! })),
    keys,
    Math.max(1, loadWorkerCount()),
  );
  try {
    const strace =
      engine === 'sqlite' && process.env.BENCH_FLEET_STRACE === '1' ? straceFlushes(b.pid) : null;
    if (strace) await new Promise((r) => setTimeout(r, 500)); // let strace attach to every thread
    const wal0 = databaseUrl ? await walSyncs(databaseUrl) : 0;
    const b0 = processCpuMs(b.pid) ?? Number.NaN;
    const c0 = ownCpuMs();
    const start = nowMs();
    const latencies = await load.burst();
    const makespanMs = nowMs() - start;
    const brokerCpuMs = (processCpuMs(b.pid) ?? Number.NaN) - b0;
    const own = ownCpuMs() - c0;
    const flushes = strace
      ? await strace.stop()
      : databaseUrl
        ? (await walSyncs(databaseUrl)) - wal0
        : undefined;
    return {
      makespanMs,
      latencies,
      brokerCpuMs,
      ownCpuMs: own,
      ...(flushes !== undefined ? { flushes } : {}),
    };
  } finally {
    await load.close();
    await proxy.close();
  }
}

/** The fleet-restart figures: one per engine and N (BENCH_FLEET_N, BENCH_FLEET_ENGINES). */
export async function benchFleet(): Promise<Figure[]> {
  const sizes = (process.env.BENCH_FLEET_N ?? '1000').split(',').map(Number);
  const engines = (process.env.BENCH_FLEET_ENGINES ?? 'sqlite,postgres').split(',');
  const chain = await sharedSimChain('Milan');
  const floor = releaseFloor(chain, { commit: true });
  const figures: Figure[] = [];
  for (const engine of engines) {
    if (engine !== 'sqlite' && engine !== 'postgres') throw new Error(`unknown engine ${engine}`);
    const pgc = engine === 'postgres' ? await startTestPostgres() : undefined;
    for (const n of sizes) {
      const dir = mkdtempSync(join(tmpdir(), `vouchsafe-bench-fleet-${engine}-`));
      const stateDir = existsSync('/dev/shm')
        ? mkdtempSync('/dev/shm/vouchsafe-fleet-')
        : join(dir, 'guests');
      mkdirSync(stateDir, { recursive: true });
      let broker: BrokerProcess | undefined;
      try {
        const databaseUrl = pgc ? await pgc.createDatabase() : undefined;
        broker = await spawnBroker({
          dataDir: join(dir, 'data'),
          rootSha256: chain.rootSha256,
          ...(databaseUrl ? { databaseUrl } : {}),
        });
        // The floor alone: the same N releases' unavoidable crypto, one after another.
        const f0 = nowMs();
        for (let i = 0; i < n; i++) floor.op();
        const floorMs = nowMs() - f0;
        const r = await fleetOnce(broker, engine, n, dir, stateDir, databaseUrl);
        const refused = (await (await fetch(`${broker.url}/metrics`)).text())
          .split('\n')
          .filter((l) => l.startsWith('vouchsafe_refusals_total{') && !/\s0$/.test(l));
        if (refused.length > 0) throw new Error(`the broker refused operations:\n${refused.join('\n')}`);
        figures.push({
          name: `broker.fleet.proxy.${engine}`,
          unit: 'ops/s',
          value: round2((n * 1000) / r.makespanMs),
          floor: { name: floor.name, value: round2((n * 1000) / floorMs) },
          ratio: Number((floorMs / r.makespanMs).toFixed(3)),
          rounds: 1,
          extra: {
            engine,
            instances: n,
            makespanMs: Math.round(r.makespanMs),
            floorAloneMs: Math.round(floorMs),
            p50Ms: Math.round(percentile(r.latencies, 50)),
            p99Ms: Math.round(percentile(r.latencies, 99)),
            brokerCpuMsPerRelease: round2(r.brokerCpuMs / n),
            loadGeneratorCpuMsPerRelease: round2(r.ownCpuMs / n),
            ...(r.flushes !== undefined
              ? {
                  [engine === 'postgres' ? 'walSyncsPerRelease' : 'fsyncsPerRelease']: round2(r.flushes / n),
                }
              : {}),
            ...(engine === 'sqlite' && r.flushes !== undefined ? { timesDistortedByStrace: 'yes' } : {}),
          },
        });
      } finally {
        await broker?.stop();
        rmSync(dir, { recursive: true, force: true });
        rmSync(stateDir, { recursive: true, force: true });
      }
    }
    await pgc?.stop();
  }
  return figures;
}
