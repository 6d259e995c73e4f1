/**
 * `npm run bench`: one JSON line per figure, each with the floor it is compared against, measured in the
 * same run. BENCH_ROUNDS and BENCH_ROUND_MS tune the effort; BENCH_ONLY=name,name selects benches.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchBroker } from './broker.js';
import { benchCli } from './cli.js';
import { benchEventLog } from './eventlog.js';
import { benchFleet } from './fleet.js';
import { emit, type Figure } from './harness.js';
import { benchKbs } from './kbs.js';
import { benchReplicas } from './replicas.js';
import { benchSnp } from './snp.js';
import { benchTdx } from './tdx.js';
import { benchTpm } from './tpm.js';
import { benchWeb } from './web.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const vectors = resolve(process.env.VOUCHSAFE_VECTORS ?? join(root, '..', 'shared', 'vectors'));

const benches: Record<string, () => Promise<Figure[]>> = {
  snp: () => benchSnp(vectors),
  tpm: () => benchTpm(vectors),
  tdx: () => benchTdx(vectors),
  eventlog: () => benchEventLog(vectors),
  kbs: () => benchKbs(),
  broker: () => benchBroker(),
  // One and two broker replicas on one PostgreSQL, and the ratio (BENCH_ONLY=replicas).
  replicas: () => benchReplicas(),
  // Not in the default run (minutes at N = 1000): BENCH_ONLY=fleet.
  fleet: () => benchFleet(),
  cli: () => benchCli(root),
  // The dashboard: bundle size and first render in headless Chromium, each against a stated budget.
  web: () => benchWeb(root),
};

if (!existsSync(join(vectors, 'README.md'))) {
  process.stderr.write(`vectors not found at ${vectors} (set VOUCHSAFE_VECTORS)\n`);
  process.exit(2);
}
const only = process.env.BENCH_ONLY?.split(',');
for (const [name, bench] of Object.entries(benches)) {
  if (only ? !only.includes(name) : name === 'fleet') continue;
  for (const fig of await bench()) emit(fig);
}
