/**
 * The end-to-end stack over real sockets: the broker (startBroker: HTTP on 127.0.0.1, port 0, the real
 * SNP verifier and appraiser, SQLite in a temp dir or a fresh PostgreSQL schema), the host proxy on a
 * unix socket in a temp dir with the native backend, and guests from src/guest with the SNP simulator
 * as their report provider (its root configured as trusted, as `vouchsafe serve --trust-sim-root` does).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import type { InstanceJson } from '../../src/admin/types.js';
import { type RunningBroker, startBroker } from '../../src/api/index.js';
import type { AttestationError } from '../../src/errors.js';
import { encodeGuestPolicy } from '../../src/formats/snp/index.js';
import {
  type BootGuestOptions,
  type BootResult,
  bootGuest,
  simulatorReportProvider,
} from '../../src/guest/index.js';
import type { ProxyBackend } from '../../src/proxy/backend.js';
import { createNativeBackend } from '../../src/proxy/backends/native/index.js';
import { type ProxyTimeouts, type RunningProxy, startProxy } from '../../src/proxy/index.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SimChain,
  type SimLaunchParams,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/** Where a stack's store lives. */
export interface TestEngine {
  readonly name: 'sqlite' | 'postgres';
  /** A fresh, empty database for one stack (undefined: SQLite in the stack's data dir). */
  freshDatabase(): Promise<string | undefined>;
  stop(): Promise<void>;
}

export function sqliteEngine(): TestEngine {
  return { name: 'sqlite', freshDatabase: async () => undefined, stop: async () => {} };
}

/** PostgreSQL: DATABASE_URL, or a throwaway cluster (fails naming the Debian package when missing). */
export async function postgresEngine(): Promise<TestEngine> {
  const pg: TestPostgres = await startTestPostgres();
  return { name: 'postgres', freshDatabase: () => pg.createSchema(), stop: () => pg.stop() };
}

// biome-ignore lint/suspicious/noExplicitAny: tests walk JSON replies freely
export type Json = any;

export const GOOD_MEASUREMENT = toHex(SIM_DEFAULT_MEASUREMENT);
export const DEBUG_POLICY = encodeGuestPolicy({ abiMajor: 0, abiMinor: 31, smt: true, debug: true });

export interface StackOptions {
  readonly challengeTtlMs?: number;
  readonly leaseMs?: number;
  /** Wraps the native backend (a man in the middle, a slow proxy, a recorder). */
  readonly wrap?: (b: ProxyBackend) => ProxyBackend;
  readonly proxyTimeouts?: Partial<ProxyTimeouts>;
  /** The broker's data directory (default `<stack dir>/data`), e.g. on a small tmpfs. */
  readonly dataDir?: string;
  /** The broker's logger (default silent). */
  readonly logger?: Logger;
  /** The broker's clock. */
  readonly now?: () => number;
  /** The native backend's per-call deadline, ms (default 5000). */
  readonly backendTimeoutMs?: number;
}

export interface Stack {
  readonly dir: string;
  readonly chain: SimChain;
  readonly broker: RunningBroker;
  readonly proxy: RunningProxy;
  /** The native backend the proxy uses (unwrapped). */
  readonly backend: ProxyBackend;
  /** Starts another proxy (e.g. with a wrapped backend) on the same broker; closed with the stack. */
  extraProxy(
    wrap: (b: ProxyBackend) => ProxyBackend,
    timeouts?: Partial<ProxyTimeouts>,
  ): Promise<RunningProxy>;
  /** Calls the admin API over HTTP with the admin token. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** Registers an instance (admin API) with a policy; default: the simulator's measurement allowed. */
  register(policy?: Record<string, unknown>): Promise<InstanceJson>;
  /** A simulated guest launched with `hostData` (hex) and the given launch parameters. */
  firmware(hostData: string, launch?: Partial<SimLaunchParams>): SimSnpFirmware;
  /** Boots a guest through the proxy (default 0.2.0, broker key pinned). */
  boot(fw: SimSnpFirmware, statePath: string, opts?: Partial<BootGuestOptions>): Promise<BootResult>;
  /** A fresh state-file path in the stack's temp dir. */
  statePath(name: string): string;
  /** The instance's sealing keys as stored (wrapped under the KEK), version and hex. */
  keys(instanceId: string): Promise<string[]>;
  auditHead(): Promise<number>;
  close(): Promise<void>;
}

let counter = 0;
const quiet = pino({ level: 'silent' });

export async function startStack(engine: TestEngine, o: StackOptions = {}): Promise<Stack> {
  const chain = await sharedSimChain('Milan');
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-e2e-'));
  const databaseUrl = await engine.freshDatabase();
  const broker = await startBroker({
    listen: '127.0.0.1:0',
    dataDir: o.dataDir ?? join(dir, 'data'),
    ...(databaseUrl ? { databaseUrl } : {}),
    trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
    kds: 'none',
    crl: 'none',
    logger: o.logger ?? quiet,
    ...(o.now ? { now: o.now } : {}),
    ...(o.challengeTtlMs !== undefined ? { challengeTtlMs: o.challengeTtlMs } : {}),
    ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}),
  });
  const backend = createNativeBackend({ brokerUrl: broker.url, timeoutMs: o.backendTimeoutMs ?? 5000 });
  const proxies: RunningProxy[] = [];
  const newProxy = async (b: ProxyBackend, timeouts?: Partial<ProxyTimeouts>) => {
    const p = await startProxy({
      listen: `unix:${join(dir, `proxy-${++counter}.sock`)}`,
      backend: b,
      logger: quiet,
      timeouts: { readMs: 2000, backendMs: 8000, sessionMs: 20_000, ...timeouts },
      closeGraceMs: 100,
    });
    proxies.push(p);
    return p;
  };
  const proxy = await newProxy(o.wrap ? o.wrap(backend) : backend, o.proxyTimeouts);

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${broker.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${broker.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  };
  let n = 0;
  return {
    dir,
    chain,
    broker,
    proxy,
    backend,
    extraProxy: (wrap, timeouts) => newProxy(wrap(backend), timeouts),
    admin,
    async register(policy = { measurements: [GOOD_MEASUREMENT] }) {
      n++;
      const r = await admin('POST', '/v1/admin/instances', {
        project: 'e2e',
        zone: 'test-zone-1',
        instanceId: `${Date.now()}-${n}-${Math.random().toString(36).slice(2)}`,
        instanceName: `vm-${n}`,
        policy,
      });
      if (r.status !== 201) throw new Error(`register failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body as InstanceJson;
    },
    firmware(hostData, launch = {}) {
      return new SimSnpFirmware(chain, {
        measurement: SIM_DEFAULT_MEASUREMENT,
        policy: SIM_DEFAULT_POLICY,
        hostData: fromHex(hostData)!,
        ...launch,
      });
    },
    boot(fw, statePath, opts = {}) {
      const version = opts.version ?? '0.2.0';
      return bootGuest({
        connect: proxy.address,
        provider: simulatorReportProvider(fw),
        statePath,
        version,
        ...(version === '0.2.0' ? { brokerPublicKey: broker.publicKey } : {}),
        timeoutMs: 10_000,
        ...opts,
      });
    },
    statePath: (name) => join(dir, `${name}.state`),
    async keys(instanceId) {
      return (await broker.store.listKeys(instanceId)).map((k) => `v${k.version}:${toHex(k.wrapped)}`);
    },
    async auditHead() {
      return (await broker.store.auditHead()).seq;
    },
    async close() {
      for (const p of proxies) await p.close();
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Passes every call through (heartbeat and end too), except those `over` replaces. */
export function wrapBackend(b: ProxyBackend, over: Partial<ProxyBackend>): ProxyBackend {
  return {
    negotiate: over.negotiate ?? ((r, c) => b.negotiate(r, c)),
    attest: over.attest ?? ((r, c) => b.attest(r, c)),
    commit: over.commit ?? ((r, c) => b.commit(r, c)),
    heartbeat: over.heartbeat ?? ((r, c) => b.heartbeat!(r, c)),
    end: over.end ?? ((r, c) => b.end!(r, c)),
  };
}

/** A unix-socket relay in front of a proxy that can cut every connection through it at once. */
export interface Relay {
  readonly address: string;
  /** Destroys every relayed connection, both sides: to the guest it looks like the host dropped it. */
  dropAll(): void;
  close(): Promise<void>;
}

export async function startRelay(path: string, target: string): Promise<Relay> {
  const targetPath = target.replace(/^unix:/, '');
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect(targetPath);
    for (const sock of [client, up]) {
      open.add(sock);
      sock.on('error', () => {});
      sock.on('close', () => {
        open.delete(sock);
        client.destroy();
        up.destroy();
      });
    }
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  return {
    address: `unix:${path}`,
    dropAll() {
      for (const sock of open) sock.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const sock of open) sock.destroy();
        server.close(() => r());
      }),
  };
}

/** Runs `fn`, which must throw an AttestationError; returns it. */
export async function refusal(fn: () => Promise<unknown>): Promise<AttestationError> {
  try {
    await fn();
  } catch (e) {
    if (e && typeof e === 'object' && 'code' in e && 'reason' in e) return e as AttestationError;
    throw e;
  }
  throw new Error('expected a refusal, got success');
}
