/**
 * A broker started the way the product starts it (startBroker: SQLite in a temp dir, the KBS on by
 * default), with the simulator's root trusted, plus what the KBS tests need around it: the admin API,
 * simulated guests, the stored sealing key and restarts on the same data directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { InstanceJson } from '../../src/admin/types.js';
import { type RunningBroker, type StartBrokerOptions, startBroker } from '../../src/api/index.js';
import { openFileKek } from '../../src/broker/kek.js';
import { openSealingKey } from '../../src/broker/sealing-key.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SimChain,
  type SimLaunchParams,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { fromHex, toHex } from '../../src/util/bytes.js';

// biome-ignore lint/suspicious/noExplicitAny: tests walk JSON replies freely
export type Json = any;

export const GOOD_MEASUREMENT = toHex(SIM_DEFAULT_MEASUREMENT);

export interface KbsBrokerStack {
  readonly b: RunningBroker;
  readonly chain: SimChain;
  /** The temp dir (data dir under it, `data`). */
  readonly dir: string;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** Registers an instance (project `kbs` unless given; policy: the simulator's measurement). */
  register(o?: { project?: string; policy?: unknown }): Promise<InstanceJson>;
  firmware(hostData: string, launch?: Partial<SimLaunchParams>): SimSnpFirmware;
  /** The instance's newest sealing key, unwrapped with the KEK file (test-only check of a release). */
  storedKey(instanceId: string): Promise<Uint8Array>;
  /** Stops the broker and starts it again on the same data directory (options merged over the first). */
  restart(o?: Partial<StartBrokerOptions>): Promise<void>;
  close(): Promise<void>;
}

let seq = 0;

export async function startKbsBroker(o: Partial<StartBrokerOptions> = {}): Promise<KbsBrokerStack> {
  const chain = await sharedSimChain('Milan');
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-kbs-broker-'));
  const base: StartBrokerOptions = {
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'data'),
    trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
    kds: 'none',
    crl: 'none',
    logger: pino({ level: 'silent' }),
    ...o,
  };
  let b: RunningBroker;
  try {
    b = await startBroker(base);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${b.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${b.adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json as Json };
  };
  return {
    get b() {
      return b;
    },
    chain,
    dir,
    admin,
    async register(r = {}) {
      const n = ++seq;
      const res = await admin('POST', '/v1/admin/instances', {
        project: r.project ?? 'kbs',
        zone: 'test-zone-1',
        instanceId: `${Date.now()}-${n}-${Math.random().toString(36).slice(2)}`,
        instanceName: `kbs-vm-${n}`,
        policy: r.policy ?? { measurements: [GOOD_MEASUREMENT] },
      });
      if (res.status !== 201) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body as InstanceJson;
    },
    firmware: (hostData, launch = {}) =>
      new SimSnpFirmware(chain, {
        measurement: SIM_DEFAULT_MEASUREMENT,
        policy: SIM_DEFAULT_POLICY,
        hostData: fromHex(hostData)!,
        ...launch,
      }),
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
    async close() {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
