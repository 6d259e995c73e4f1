/**
 * Key release throughput with one and with two broker replicas on one PostgreSQL (issue 14 "Many
 * replicas"; docs/broker.md "Running several replicas"). Two broker processes (test/crash/broker-process.ts)
 * share one database, the KEK, the response-signing key and the admin token, as behind a load balancer.
 *
 * - `broker.replicas.1.postgres`: one operation = POST /v1/challenge + a simulated report + POST /v1/attest
 *   (0.2.0, verified, appraised, released, sealed to the client's P-521 key, signed) + the client's unwrap,
 *   all on replica A; closed loop of BENCH_BROKER_CONCURRENCY (8) clients. Floor: the unavoidable crypto of a
 *   release (releaseFloor, as bench/broker.ts).
 * - `broker.replicas.2.postgres`: the same operation with the challenge from one replica and the attestation
 *   to the other (alternating, so each serves half of each step), twice the clients (the same load per
 *   replica). Floor: the one-replica rate measured in the round just before, so its ratio is the speed-up a
 *   second replica gives on this machine.
 *
 * Rounds alternate (floor, one replica, two replicas) and the medians are kept, as bench/harness.ts does.
 * On a 2-core machine the two brokers, PostgreSQL and the load generator share the same two cores, so the
 * ratio shows what sharing costs (the store round trips, the shared audit head) more than what a second
 * machine would add.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateP521KeyPair, p521PointOf } from '../src/native/p521.js';
import { sharedSimChain } from '../src/sim/snp/index.js';
import { type BrokerProcess, spawnBroker } from '../test/crash/spawn-broker.js';
import { startTestPostgres } from '../test/helpers/postgres.js';
import { registerInstances, releaseFloor } from './broker.js';
import { closedLoop, ItemPool, type LoadOp, percentile, round2 } from './broker-load.js';
import { type Figure, rate } from './harness.js';
import { httpReleaseOp } from './release-ops.js';

const SHARED_FILES = ['kek', 'broker-signing-key.pem', 'broker-signing-key.pem.pub', 'admin-token'];

/** Operation `i`: challenge from `brokers[i % n]`, attestation to `brokers[(i + 1) % n]`, unwrap. */
const alternating = (brokers: readonly BrokerProcess[]) => (i: number) => ({
  challenge: brokers[i % brokers.length]!.url,
  attest: brokers[(i + 1) % brokers.length]!.url,
});

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Two figures (see the file comment). Knobs as bench/broker.ts: BENCH_BROKER_ROUNDS (9), BENCH_ROUND_MS
 * (floor round, 200), BENCH_BROKER_ROUND_MS (load round, 800), BENCH_BROKER_CONCURRENCY (8 per replica).
 * Throws if any release fails.
 */
export async function benchReplicas(): Promise<Figure[]> {
  const n = (name: string, d: number) => Number(process.env[name] ?? d);
  const rounds = n('BENCH_BROKER_ROUNDS', 9);
  const floorMs = n('BENCH_ROUND_MS', 200);
  const loadMs = n('BENCH_BROKER_ROUND_MS', 800);
  const concurrency = n('BENCH_BROKER_CONCURRENCY', 8);
  const chain = await sharedSimChain('Milan');
  const floor = releaseFloor(chain);
  const keys = await Promise.all(
    Array.from({ length: 32 }, async () => {
      const kp = await generateP521KeyPair();
      return { privateKey: kp.privateKey, point: p521PointOf(kp.publicKey) };
    }),
  );
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-bench-replicas-'));
  const pg = await startTestPostgres();
  const brokers: BrokerProcess[] = [];
  try {
    const databaseUrl = await pg.createDatabase();
    const common = { rootSha256: chain.rootSha256, databaseUrl, leaseMs: 1 };
    brokers.push(await spawnBroker({ ...common, dataDir: join(dir, 'a') }));
    mkdirSync(join(dir, 'b'), { mode: 0o700 });
    for (const f of SHARED_FILES) copyFileSync(join(dir, 'a', f), join(dir, 'b', f));
    brokers.push(await spawnBroker({ ...common, dataDir: join(dir, 'b') }));
    const [a] = brokers as [BrokerProcess, BrokerProcess];

    // Each in-flight operation has an instance of its own (leases of 1 ms: every release is a full one).
    const pool = new ItemPool(await registerInstances(a, chain, 4 * concurrency, 'replicas', dir));
    const one = httpReleaseOp(alternating([a]), pool, keys);
    const two = httpReleaseOp(alternating(brokers), pool, keys);
    let index = 0;
    const run = async (op: LoadOp, c: number, ms: number) => {
      const r = await closedLoop(op, c, ms, index);
      index += r.ops + c;
      return r;
    };
    // Warm up both replicas: connections, the verifier's chain cache, JIT.
    await run(two, 2 * concurrency, 500);
    const floors: number[] = [];
    const ones: number[] = [];
    const twos: number[] = [];
    const lat1: number[] = [];
    const lat2: number[] = [];
    for (let r = 0; r < rounds; r++) {
      floors.push(await rate(floor.op, floorMs));
      const r1 = await run(one, concurrency, loadMs);
      const r2 = await run(two, 2 * concurrency, loadMs);
      ones.push(r1.rate);
      twos.push(r2.rate);
      lat1.push(...r1.latencies);
      lat2.push(...r2.latencies);
    }
    const extra = (replicas: number, lat: number[], c: number) => ({
      engine: 'postgres',
      replicas,
      concurrency: c,
      ops: lat.length,
      p50Ms: round2(percentile(lat, 50)),
      p99Ms: round2(percentile(lat, 99)),
      path: 'POST /v1/challenge + /v1/attest (0.2.0), client unwraps the JWE',
    });
    return [
      {
        name: 'broker.replicas.1.postgres',
        unit: 'ops/s',
        value: Math.round(median(ones)),
        floor: { name: floor.name, value: Math.round(median(floors)) },
        ratio: Number(median(ones.map((v, i) => v / floors[i]!)).toFixed(3)),
        rounds,
        extra: extra(1, lat1, concurrency),
      },
      {
        name: 'broker.replicas.2.postgres',
        unit: 'ops/s',
        value: Math.round(median(twos)),
        floor: { name: 'broker.replicas.1.postgres (the same round)', value: Math.round(median(ones)) },
        ratio: Number(median(twos.map((v, i) => v / ones[i]!)).toFixed(3)),
        rounds,
        extra: { ...extra(2, lat2, 2 * concurrency), split: 'challenge on one replica, attest on the other' },
      },
    ];
  } finally {
    for (const b of brokers) await b.stop();
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
