/**
 * The release benches' client operations (bench/broker.ts, bench/replicas.ts, bench/fleet.ts), usable on
 * this thread or inside a load worker (bench/load-worker.ts).
 */
import type { KeyObject } from 'node:crypto';
import { computeReportData } from '../src/formats/aproxy/report-data.js';
import { parseSecretPayload } from '../src/formats/aproxy/secret-payload.js';
import type { EcPublicKey, NegotiationParam } from '../src/formats/aproxy/types.js';
import { bootGuest, simulatorReportProvider } from '../src/guest/index.js';
import type { P521KeyPair } from '../src/native/p521.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SimChain,
  SimSnpFirmware,
} from '../src/sim/snp/index.js';
import { openAttestReply } from '../test/helpers/attest-reply.js';
import { type ItemPool, type LoadOp, postJson } from './broker-load.js';

/** A registered instance as a client sees it: its id, its HOST_DATA, its simulated firmware, its state file. */
export interface Instance {
  readonly id: string;
  readonly hostData: Uint8Array;
  readonly fw: SimSnpFirmware;
  readonly statePath: string;
}

/** The instance's firmware: the simulator's default measurement and policy, its HOST_DATA. */
export function simInstance(chain: SimChain, id: string, hostData: Uint8Array, statePath: string): Instance {
  const fw = new SimSnpFirmware(chain, {
    measurement: SIM_DEFAULT_MEASUREMENT,
    policy: SIM_DEFAULT_POLICY,
    hostData,
  });
  return { id, hostData, fw, statePath };
}

const b64 = (x: Uint8Array) => Buffer.from(x).toString('base64');
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** A client key: the private key and its point as the native API carries it. */
export interface ClientKey {
  readonly privateKey: KeyObject;
  readonly point: EcPublicKey;
}

/**
 * The HTTP client's operation `i`: challenge, report, attest, unwrap; the challenge from `route(i).challenge`
 * and the attestation to `route(i).attest` (one broker, or two replicas in turn: bench/replicas.ts). Client
 * keys come from a pre-generated pool (a real guest makes a fresh one per boot; the broker's work is the same
 * either way, and the load generator shares the machine's two cores with the broker).
 */
export function httpReleaseOp(
  route: (i: number) => { readonly challenge: string; readonly attest: string },
  pool: ItemPool<Instance>,
  keys: readonly ClientKey[],
): LoadOp {
  return (i) =>
    pool.use(async (inst) => {
      const to = route(i);
      const c = await postJson(`${to.challenge}/v1/challenge`, { tee: 'snp', version: '0.2.0' });
      if (c.status !== 200) throw new Error(`challenge: ${c.status} ${JSON.stringify(c.body)}`);
      const challenge = unb64(c.body.challenge);
      const key = keys[i % keys.length]!;
      const rd = computeReportData(c.body.params as NegotiationParam[], {
        challenge,
        key: key.point,
        stateCounter: null,
        stateDigest: null,
      });
      const ev = inst.fw.getReport(rd);
      const r = await postJson(`${to.attest}/v1/attest`, {
        tee: 'snp',
        version: '0.2.0',
        report: b64(ev.report),
        certTable: b64(ev.certTable),
        challenge: c.body.challenge,
        key: { x: b64(key.point.x), y: b64(key.point.y) },
        stateCounter: null,
        stateDigest: null,
      });
      if (r.status !== 200) throw new Error(`attest: ${r.status} ${JSON.stringify(r.body)}`);
      const plain = openAttestReply(key.privateKey, r.body);
      const payload = parseSecretPayload(plain);
      if (payload.secret.length !== 32 || payload.bootId !== r.body.bootId || r.body.instance !== inst.id) {
        throw new Error('attest: the released payload does not match the response');
      }
    });
}

/**
 * The guest's operation: a full 0.2.0 boot through the proxy at `connect` (the instance's state file
 * persists), the broker's signatures checked against `brokerPublicKey`. Its P-521 key comes from the
 * pre-generated pool (`keyPair`; the broker's work is the same as with a fresh key).
 */
export function proxyOp(
  brokerPublicKey: KeyObject,
  connect: string,
  pool: ItemPool<Instance>,
  keys: readonly P521KeyPair[],
): LoadOp {
  return (i) =>
    pool.use(async (inst) => {
      const r = await bootGuest({
        connect,
        provider: simulatorReportProvider(inst.fw),
        statePath: inst.statePath,
        version: '0.2.0',
        brokerPublicKey,
        timeoutMs: 30_000,
        keyPair: () => Promise.resolve(keys[i % keys.length]!),
      });
      if (!r.committed || !r.brokerVerified) throw new Error('boot: not committed or not verified');
    });
}
