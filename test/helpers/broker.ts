/**
 * The one broker harness for tests that run the broker as the product runs it (startBroker: HTTP on
 * 127.0.0.1, port 0, the real SNP verifier and appraiser, the KBS routes on by default), composed from options:
 *
 * - `engine`: where the store lives (SQLite in the stack's data dir, or a fresh PostgreSQL schema);
 * - `broker`: any StartBrokerOptions over the test defaults (no KDS, no CRL, silent logger, the
 *   simulator's Milan root trusted, as `vouchsafe serve --trust-sim-root` does);
 * - `identity`: the project, zone and name prefix `register` gives new instances;
 * - `addProxy(stack, …)`: the host proxy on a unix socket in the stack's temp dir, with the native backend,
 *   and guests from src/guest booting through it with the SNP simulator as their report provider.
 *
 * Also here: the fake AMD KDS serving the simulator's chain (simKds) and the simulated guest firmware.
 * test/api/helpers.ts, test/kbs/broker-stack.ts and test/e2e/harness.ts are thin wrappers over this.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { InstanceJson } from '../../src/admin/types.js';
import { type RunningBroker, type StartBrokerOptions, startBroker } from '../../src/api/index.js';
import { openFileKek } from '../../src/broker/kek.js';
import { openSealingKey } from '../../src/broker/sealing-key.js';
import { KdsClient } from '../../src/collateral/kds-client.js';
import { encodePem } from '../../src/formats/pem.js';
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
  createCrl,
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SimChain,
  type SimLaunchParams,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { startTestPostgres, type TestPostgres } from './postgres.js';

// biome-ignore lint/suspicious/noExplicitAny: tests walk JSON replies freely
export type Json = any;

/** The simulator's default launch measurement, hex: what a registered instance's policy allows by default. */
export const GOOD_MEASUREMENT = toHex(SIM_DEFAULT_MEASUREMENT);
/** The default policy `register` gives: the simulator's measurement allowed. */
export const GOOD_POLICY = { measurements: [GOOD_MEASUREMENT] };

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

/** A simulated guest launched with `hostData` (hex): the simulator's default measurement and policy. */
export function simFirmware(
  chain: SimChain,
  hostData: string,
  launch: Partial<SimLaunchParams> = {},
): SimSnpFirmware {
  return new SimSnpFirmware(chain, {
    measurement: SIM_DEFAULT_MEASUREMENT,
    policy: SIM_DEFAULT_POLICY,
    hostData: fromHex(hostData)!,
    ...launch,
  });
}

/** AMD KDS as a client of a fake server that serves the simulator's VCEK and cert chain (Milan). */
export function simKds(chain: SimChain, served: string[] = []): KdsClient {
  const fetchKds: typeof fetch = async (input) => {
    const u = new URL(String(input));
    served.push(u.pathname);
    if (u.pathname === '/vcek/v1/Milan/cert_chain') {
      return new Response(encodePem('CERTIFICATE', chain.ask.der) + encodePem('CERTIFICATE', chain.ark.der));
    }
    if (/^\/vcek\/v1\/Milan\/[0-9a-f]{128}$/.test(u.pathname))
      return new Response(Buffer.from(chain.vcek.der));
    // startBroker checks the chain's CRL by default: an empty one from the chain's ARK.
    if (u.pathname === '/vcek/v1/Milan/crl') {
      // Fresh for a year, so no test run sees it stale.
      crl ??= createCrl(chain, {
        revokedSerials: [],
        thisUpdate: new Date(Date.now() - 3_600_000),
        nextUpdate: new Date(Date.now() + 365 * 86_400_000),
      });
      return new Response(Buffer.from(await crl));
    }
    return new Response('', { status: 404 });
  };
  let crl: Promise<Uint8Array> | undefined;
  return new KdsClient({ fetch: fetchKds, minIntervalMs: 0 });
}

/** What `register` names new instances with (tests of project-scoped rules depend on the project). */
export interface TestIdentity {
  readonly project: string;
  readonly zone: string;
  /** Instance names are `<namePrefix><n>`. */
  readonly namePrefix: string;
}

export interface BrokerStackOptions {
  /** Default: SQLite in the data dir. */
  readonly engine?: TestEngine;
  /** Over the test defaults; `dataDir` defaults to `<dir>/data`. */
  readonly broker?: Partial<StartBrokerOptions>;
  /** Default: project `test`, zone `test-zone-1`, names `vm-<n>`. */
  readonly identity?: Partial<TestIdentity>;
  /** The temp dir's name prefix (default `vouchsafe-test-`). */
  readonly tmpPrefix?: string;
}

export interface BrokerStack {
  /** The running broker (a new object after `restart`). */
  readonly b: RunningBroker;
  readonly chain: SimChain;
  /** The stack's temp dir (the data dir is `data` under it unless given). */
  readonly dir: string;
  /** Any HTTP call to the broker; the body is parsed as JSON when it is JSON, else kept as text. */
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: Json; headers: Headers }>;
  /** `call` with the admin token. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** Registers an instance over the admin API (default policy: GOOD_POLICY); throws unless 201. */
  register(o?: { project?: string; policy?: unknown }): Promise<InstanceJson>;
  firmware(hostData: string, launch?: Partial<SimLaunchParams>): SimSnpFirmware;
  /** The instance's newest sealing key, unwrapped with the KEK file (test-only check of a release). */
  storedKey(instanceId: string): Promise<Uint8Array>;
  /** Stops the broker and starts it again on the same data directory (options merged over the first). */
  restart(o?: Partial<StartBrokerOptions>): Promise<void>;
  /** Runs `fn` first when the stack closes (proxies close before the broker). */
  onClose(fn: () => Promise<void>): void;
  close(): Promise<void>;
}

let seq = 0;

/** Starts a broker per `o`; the caller closes it. A failed start leaves no temp dir behind. */
export async function startBrokerStack(o: BrokerStackOptions = {}): Promise<BrokerStack> {
  const chain = await sharedSimChain('Milan');
  const dir = mkdtempSync(join(tmpdir(), o.tmpPrefix ?? 'vouchsafe-test-'));
  const id: TestIdentity = { project: 'test', zone: 'test-zone-1', namePrefix: 'vm-', ...o.identity };
  let base: StartBrokerOptions;
  let b: RunningBroker;
  try {
    const databaseUrl = await o.engine?.freshDatabase();
    base = {
      listen: '127.0.0.1:0',
      dataDir: join(dir, 'data'),
      ...(databaseUrl ? { databaseUrl } : {}),
      trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
      kds: 'none',
      crl: 'none',
      logger: pino({ level: 'silent' }),
      ...o.broker,
    };
    b = await startBroker(base);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${b.url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json as Json, headers: res.headers };
  };
  const admin = (method: string, path: string, body?: unknown) =>
    call(method, path, body, { authorization: `Bearer ${b.adminToken}` });
  const closers: (() => Promise<void>)[] = [];
  return {
    get b() {
      return b;
    },
    chain,
    dir,
    call,
    admin,
    async register(r = {}) {
      const n = ++seq;
      const res = await admin('POST', '/v1/admin/instances', {
        project: r.project ?? id.project,
        zone: id.zone,
        instanceId: `${Date.now()}-${n}-${Math.random().toString(36).slice(2)}`,
        instanceName: `${id.namePrefix}${n}`,
        policy: r.policy ?? GOOD_POLICY,
      });
      if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body as InstanceJson;
    },
    firmware: (hostData, launch = {}) => simFirmware(chain, hostData, launch),
    async storedKey(instanceId) {
      const kek = openFileKek(join(b.dataDir, 'kek'));
      const recs = await b.store.listKeys(instanceId);
      const latest = recs.reduce((x, y) => (y.version > x.version ? y : x));
      return openSealingKey(kek, latest);
    },
    async restart(more = {}) {
      await b.close();
      b = await startBroker({ ...base, ...more });
    },
    onClose(fn) {
      closers.push(fn);
    },
    async close() {
      for (const fn of closers) await fn();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ProxyOptions {
  /** Wraps the native backend (a man in the middle, a slow proxy, a recorder). */
  readonly wrap?: (b: ProxyBackend) => ProxyBackend;
  readonly timeouts?: Partial<ProxyTimeouts>;
  /** The native backend's per-call deadline, ms (default 5000). */
  readonly backendTimeoutMs?: number;
}

/** The host proxy in front of a stack's broker, and guests booting through it. */
export interface ProxyParts {
  readonly proxy: RunningProxy;
  /** The native backend the proxy uses (unwrapped). */
  readonly backend: ProxyBackend;
  /** Starts another proxy (e.g. with a wrapped backend) on the same broker; closed with the stack. */
  extraProxy(
    wrap: (b: ProxyBackend) => ProxyBackend,
    timeouts?: Partial<ProxyTimeouts>,
  ): Promise<RunningProxy>;
  /** Boots a guest through the proxy (default 0.2.0, broker key pinned). */
  boot(fw: SimSnpFirmware, statePath: string, opts?: Partial<BootGuestOptions>): Promise<BootResult>;
  /** A fresh state-file path in the stack's temp dir. */
  statePath(name: string): string;
}

let sockets = 0;
const quiet = pino({ level: 'silent' });

/** Starts the host proxy (native backend, unix socket in the stack's dir); it closes with the stack. */
export async function addProxy(stack: BrokerStack, o: ProxyOptions = {}): Promise<ProxyParts> {
  const backend = createNativeBackend({ brokerUrl: stack.b.url, timeoutMs: o.backendTimeoutMs ?? 5000 });
  const proxies: RunningProxy[] = [];
  stack.onClose(async () => {
    for (const p of proxies) await p.close();
  });
  const newProxy = async (b: ProxyBackend, timeouts?: Partial<ProxyTimeouts>) => {
    const p = await startProxy({
      listen: `unix:${join(stack.dir, `proxy-${++sockets}.sock`)}`,
      backend: b,
      logger: quiet,
      timeouts: { readMs: 2000, backendMs: 8000, sessionMs: 20_000, ...timeouts },
      closeGraceMs: 100,
    });
    proxies.push(p);
    return p;
  };
  const proxy = await newProxy(o.wrap ? o.wrap(backend) : backend, o.timeouts);
  return {
    proxy,
    backend,
    extraProxy: (wrap, timeouts) => newProxy(wrap(backend), timeouts),
    boot(fw, statePath, opts = {}) {
      const version = opts.version ?? '0.2.0';
      return bootGuest({
        connect: proxy.address,
        provider: simulatorReportProvider(fw),
        statePath,
        version,
        ...(version === '0.2.0' ? { brokerPublicKey: stack.b.publicKey } : {}),
        timeoutMs: 10_000,
        ...opts,
      });
    },
    statePath: (name) => join(stack.dir, `${name}.state`),
  };
}
