/** A broker on 127.0.0.1 (SQLite in a temp dir, the simulator's root trusted) and a guest that talks /v1 directly. */
import { type KeyObject, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { type RunningBroker, type StartBrokerOptions, startBroker } from '../../src/api/index.js';
import { computeReportData } from '../../src/formats/aproxy/report-data.js';
import type { EcPublicKey, NegotiationParam } from '../../src/formats/aproxy/types.js';
import { generateP521KeyPair, p521PointOf } from '../../src/native/p521.js';
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

export const GOOD_POLICY = { measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] };

export interface TestBroker {
  readonly b: RunningBroker;
  readonly chain: SimChain;
  readonly dir: string;
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: Json; headers: Headers }>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  register(policy?: unknown): Promise<Json>;
  firmware(hostDataHex: string, launch?: Partial<SimLaunchParams>): SimSnpFirmware;
  /** A complete /v1/attest body for `fw` (fresh challenge and key), plus the guest's private key. */
  attestBody(
    fw: SimSnpFirmware,
    o?: {
      version?: '0.1.0' | '0.2.0';
      stateCounter?: string | null;
      stateDigest?: Uint8Array;
      certTable?: boolean;
    },
  ): Promise<{
    body: Record<string, unknown>;
    privateKey: KeyObject;
    key: EcPublicKey;
    challenge: Uint8Array;
  }>;
  close(): Promise<void>;
}

export async function startTestBroker(o: Partial<StartBrokerOptions> = {}): Promise<TestBroker> {
  const chain = await sharedSimChain('Milan');
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-api-'));
  const b = await startBroker({
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'data'),
    trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
    kds: 'none',
    crl: 'none',
    logger: pino({ level: 'silent' }),
    ...o,
  });
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
  let n = 0;
  return {
    b,
    chain,
    dir,
    call,
    admin,
    async register(policy: unknown = GOOD_POLICY) {
      n++;
      const r = await admin('POST', '/v1/admin/instances', {
        project: 'api',
        zone: 'z1',
        instanceId: `i-${n}-${randomBytes(4).toString('hex')}`,
        instanceName: `vm-${n}`,
        policy,
      });
      if (r.status !== 201) throw new Error(`register: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    firmware: (hostData, launch = {}) =>
      new SimSnpFirmware(chain, {
        measurement: SIM_DEFAULT_MEASUREMENT,
        policy: SIM_DEFAULT_POLICY,
        hostData: fromHex(hostData)!,
        ...launch,
      }),
    async attestBody(fw, opts = {}) {
      const version = opts.version ?? '0.2.0';
      const c = await call('POST', '/v1/challenge', { tee: 'snp', version });
      if (c.status !== 200) throw new Error(`challenge: ${c.status}`);
      const challenge = new Uint8Array(Buffer.from(c.body.challenge, 'base64'));
      const keys = await generateP521KeyPair();
      const key = p521PointOf(keys.publicKey);
      const sc =
        version === '0.2.0' ? (opts.stateCounter === undefined ? null : opts.stateCounter) : undefined;
      const sd = sc === null || sc === undefined ? null : (opts.stateDigest ?? new Uint8Array(32).fill(0x5d));
      const rd = computeReportData(c.body.params as NegotiationParam[], {
        challenge,
        key,
        ...(version === '0.2.0'
          ? { stateCounter: sc === null || sc === undefined ? null : BigInt(sc), stateDigest: sd }
          : {}),
      });
      const r = fw.getReport(rd);
      const b64 = (x: Uint8Array) => Buffer.from(x).toString('base64');
      const body: Record<string, unknown> = {
        tee: 'snp',
        version,
        report: b64(r.report),
        ...(opts.certTable === false ? {} : { certTable: b64(r.certTable) }),
        challenge: c.body.challenge,
        key: { x: b64(key.x), y: b64(key.y) },
        ...(version === '0.2.0'
          ? { stateCounter: sc, stateDigest: sd === null ? null : Buffer.from(sd).toString('base64') }
          : {}),
      };
      return { body, privateKey: keys.privateKey, key, challenge };
    },
    async close() {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
