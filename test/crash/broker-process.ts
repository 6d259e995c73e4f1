/**
 * A broker as a process of its own, for tests that kill it (test/crash) and benchmarks that keep its CPU
 * apart from the load generator's (bench/broker.ts).
 *
 *   node --import tsx test/crash/broker-process.ts DATA_DIR SIM_ROOT_SHA256 [LEASE_MS]
 *   DATABASE_URL=postgres://...   use PostgreSQL instead of SQLite under DATA_DIR
 *   KBS_ISSUER=https://...        the KBS tokens' `iss` (replicas behind one address share it)
 *   ECDH_THREADS=N                the releases' ECDH threads (default: the broker's, the cores but one)
 *
 * Trusts the simulator root whose hex SHA-256 is given (as `vouchsafe serve --trust-sim-root` does), listens
 * on 127.0.0.1 (a free port) and prints one JSON line on stdout once it listens:
 * `{"url": ..., "pid": ..., "engine": ...}`. The admin token and the signing key are in DATA_DIR. SIGTERM
 * closes it cleanly; SIGKILL is what the crash test sends.
 */
import { pino } from 'pino';
import { startBroker } from '../../src/api/index.js';
import { preferYoungAllocation } from '../../src/util/collector.js';

const [dataDir, rootSha256, leaseMs] = process.argv.slice(2);
if (!dataDir || !rootSha256 || !/^[0-9a-f]{64}$/.test(rootSha256)) {
  process.stderr.write('usage: broker-process.ts DATA_DIR SIM_ROOT_SHA256 [LEASE_MS]\n');
  process.exit(2);
}
// As `vouchsafe serve` does: the benches measure the broker as it is deployed.
preferYoungAllocation();
const databaseUrl = process.env.DATABASE_URL;
const broker = await startBroker({
  listen: '127.0.0.1:0',
  dataDir,
  ...(databaseUrl ? { databaseUrl } : {}),
  trustedRoots: [{ product: 'Milan', sha256: rootSha256 }],
  kds: 'none',
  crl: 'none',
  logger: pino({ level: process.env.BROKER_LOG_LEVEL ?? 'silent' }, pino.destination(2)),
  ...(leaseMs ? { leaseMs: Number(leaseMs) } : {}),
  // Benches and crash tests drive many boots of one instance from one address: the request rate limits
  // (docs/access.md) are tested in test/api/rate-limits.test.ts, not measured here.
  rateLimits: false,
  ...(process.env.KBS_ISSUER ? { kbs: { issuer: process.env.KBS_ISSUER } } : {}),
  ...(process.env.ECDH_THREADS ? { ecdhThreads: Number(process.env.ECDH_THREADS) } : {}),
});
process.stdout.write(
  `${JSON.stringify({ url: broker.url, pid: process.pid, engine: broker.store.engine })}\n`,
);
process.once('SIGTERM', () => {
  broker.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
