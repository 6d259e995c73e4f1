/**
 * The end-to-end stack over real sockets: test/helpers/broker.ts (startBroker: HTTP on 127.0.0.1, port 0,
 * the real SNP verifier and appraiser, SQLite in a temp dir or a fresh PostgreSQL schema) with its host proxy
 * (unix socket, native backend) and guests from src/guest with the SNP simulator as their report provider.
 * Here: the e2e view of it (Stack), and a backend wrapper and a relay for fault tests.
 */
import { connect, createServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { InstanceJson } from '../../src/admin/types.js';
import type { RunningBroker } from '../../src/api/index.js';
import type { AttestationError } from '../../src/errors.js';
import { encodeGuestPolicy } from '../../src/formats/snp/index.js';
import type { ProxyBackend } from '../../src/proxy/backend.js';
import type { ProxyTimeouts } from '../../src/proxy/index.js';
import type { SimChain, SimLaunchParams, SimSnpFirmware } from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import {
  addProxy,
  type Json,
  type ProxyParts,
  startBrokerStack,
  type TestEngine,
} from '../helpers/broker.js';

export {
  GOOD_MEASUREMENT,
  type Json,
  postgresEngine,
  sqliteEngine,
  type TestEngine,
} from '../helpers/broker.js';

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

/** The broker stack with its proxy (ProxyParts), as the e2e suites use it. */
export interface Stack extends ProxyParts {
  readonly dir: string;
  readonly chain: SimChain;
  readonly broker: RunningBroker;
  /** Calls the admin API over HTTP with the admin token. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** Registers an instance (admin API) with a policy; default: the simulator's measurement allowed. */
  register(policy?: Record<string, unknown>): Promise<InstanceJson>;
  /** A simulated guest launched with `hostData` (hex) and the given launch parameters. */
  firmware(hostData: string, launch?: Partial<SimLaunchParams>): SimSnpFirmware;
  /** The instance's sealing keys as stored (wrapped under the KEK), version and hex. */
  keys(instanceId: string): Promise<string[]>;
  auditHead(): Promise<number>;
  close(): Promise<void>;
}

export async function startStack(engine: TestEngine, o: StackOptions = {}): Promise<Stack> {
  const s = await startBrokerStack({
    engine,
    tmpPrefix: 'vouchsafe-e2e-',
    identity: { project: 'e2e' },
    broker: {
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      ...(o.logger ? { logger: o.logger } : {}),
      ...(o.now ? { now: o.now } : {}),
      ...(o.challengeTtlMs !== undefined ? { challengeTtlMs: o.challengeTtlMs } : {}),
      ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}),
    },
  });
  const p = await addProxy(s, {
    ...(o.wrap ? { wrap: o.wrap } : {}),
    ...(o.proxyTimeouts ? { timeouts: o.proxyTimeouts } : {}),
    ...(o.backendTimeoutMs !== undefined ? { backendTimeoutMs: o.backendTimeoutMs } : {}),
  });
  return {
    dir: s.dir,
    chain: s.chain,
    broker: s.b,
    proxy: p.proxy,
    backend: p.backend,
    extraProxy: p.extraProxy,
    admin: s.admin,
    register: (policy) => s.register(policy ? { policy } : {}),
    firmware: s.firmware,
    boot: p.boot,
    statePath: p.statePath,
    async keys(instanceId) {
      return (await s.b.store.listKeys(instanceId)).map((k) => `v${k.version}:${toHex(k.wrapped)}`);
    },
    async auditHead() {
      return (await s.b.store.auditHead()).seq;
    },
    close: () => s.close(),
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
