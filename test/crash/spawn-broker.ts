/**
 * Starts test/crash/broker-process.ts as a child process and waits for the URL it prints. The child is the
 * real broker (startBroker: the SNP verifier and appraiser, SQLite under the data dir or PostgreSQL), with
 * the simulator's root trusted; only the process boundary is added, so that a test can SIGKILL it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loaderFor, sibling } from '../helpers/paths.js';

const SCRIPT = sibling(import.meta.url, 'broker-process.ts');

export interface SpawnBrokerOptions {
  readonly dataDir: string;
  /** Hex SHA-256 of the simulator's ARK (SimChain.rootSha256). */
  readonly rootSha256: string;
  /** PostgreSQL URL; undefined: SQLite in dataDir. */
  readonly databaseUrl?: string;
  readonly leaseMs?: number;
  /** The KBS tokens' issuer (default: the child's own URL); replicas behind one address share one. */
  readonly kbsIssuer?: string;
  /** How long to wait for the child to listen (default 30 s). */
  readonly startTimeoutMs?: number;
}

export interface BrokerProcess {
  readonly url: string;
  readonly pid: number;
  readonly engine: string;
  readonly adminToken: string;
  /** The broker's response-signing key (what 0.2.0 guests pin). */
  readonly publicKey: KeyObject;
  readonly child: ChildProcess;
  /** Settles when the child has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (clean close), SIGKILL after 5 s; waits for the exit. */
  stop(): Promise<void>;
}

export async function spawnBroker(o: SpawnBrokerOptions): Promise<BrokerProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The parent's DATABASE_URL (an external test server) must not leak into a SQLite child.
  delete env.DATABASE_URL;
  if (o.databaseUrl) env.DATABASE_URL = o.databaseUrl;
  delete env.KBS_ISSUER;
  if (o.kbsIssuer) env.KBS_ISSUER = o.kbsIssuer;
  // BROKER_NODE_ARGS: extra node flags for the child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
  const nodeArgs = process.env.BROKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const args = [...nodeArgs, ...loaderFor(SCRIPT), SCRIPT, o.dataDir, o.rootSha256];
  if (o.leaseMs !== undefined) args.push(String(o.leaseMs));
  // BROKER_LOG_LEVEL (e.g. `info`) shows the child's log on this process's stderr.
  const child = spawn(process.execPath, args, {
    env,
    stdio: ['ignore', 'pipe', process.env.BROKER_LOG_LEVEL ? 'inherit' : 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    if (stderr.length < 16_384) stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      process.removeListener('exit', killOnExit);
      resolve({ code, signal });
    });
  });
  const ready = await new Promise<{ url: string; pid: number; engine: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`the broker process did not start within ${o.startTimeoutMs ?? 30_000} ms: ${stderr}`),
      );
    }, o.startTimeoutMs ?? 30_000);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`unexpected first line from the broker process: ${line}`));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the broker process exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  const wait = async (signal: NodeJS.Signals, graceMs: number) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  return {
    ...ready,
    adminToken: readFileSync(join(o.dataDir, 'admin-token'), 'utf8').trim(),
    publicKey: createPublicKey(readFileSync(join(o.dataDir, 'broker-signing-key.pem.pub'), 'utf8')),
    child,
    exited,
    kill: () => wait('SIGKILL', 0),
    stop: () => wait('SIGTERM', 5000),
  };
}

/** Runs `fn` over `items` with at most `n` calls in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  n: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
