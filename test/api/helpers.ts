/** A broker on 127.0.0.1 (SQLite in a temp dir, the simulator's root trusted) and a guest that talks /v1 directly. */
import type { KeyObject } from 'node:crypto';
import type { RunningBroker, StartBrokerOptions } from '../../src/api/index.js';
import { computeReportData } from '../../src/formats/aproxy/report-data.js';
import type { EcPublicKey, NegotiationParam } from '../../src/formats/aproxy/types.js';
import { generateP521KeyPair, p521PointOf } from '../../src/native/p521.js';
import type { SimSnpFirmware } from '../../src/sim/snp/index.js';
import { type BrokerStack, GOOD_POLICY, type Json, startBrokerStack } from '../helpers/broker.js';

export { GOOD_POLICY, type Json };

/** The stack of test/helpers/broker.ts (no restart), registering by policy, plus `attestBody`. */
export interface TestBroker
  extends Pick<BrokerStack, 'b' | 'chain' | 'dir' | 'call' | 'admin' | 'firmware' | 'close'> {
  register(policy?: unknown): Promise<Json>;
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

/** test/helpers/broker.ts (project `api`, zone `z1`) plus `attestBody`. */
export async function startTestBroker(o: Partial<StartBrokerOptions> = {}): Promise<TestBroker> {
  const s = await startBrokerStack({
    broker: o,
    identity: { project: 'api', zone: 'z1' },
    tmpPrefix: 'vouchsafe-api-',
  });
  const call = s.call;
  return {
    get b(): RunningBroker {
      return s.b;
    },
    chain: s.chain,
    dir: s.dir,
    call,
    admin: s.admin,
    register: (policy: unknown = GOOD_POLICY) => s.register({ policy }),
    firmware: s.firmware,
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
    close: () => s.close(),
  };
}
