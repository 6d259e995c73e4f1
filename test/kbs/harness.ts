/**
 * A real KBS for tests: fastify listening on 127.0.0.1 with kbsRoutes, over the broker adapter, over a real
 * Broker (SQLite store in a temp dir, in-memory KEK), verifying reports from the SNP simulator with the
 * simulator's root configured as a trusted root, appraising with the real SNP policy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { Broker } from '../../src/broker/broker.js';
import { AesGcmKek } from '../../src/broker/kek.js';
import { openSealingKey } from '../../src/broker/sealing-key.js';
import type { InstanceView } from '../../src/broker/types.js';
import {
  type BrokerKbsAdapter,
  createBrokerKbsAdapter,
  kbsRoutes,
  MemorySecretStore,
  SEALING_KEY_PATH,
} from '../../src/kbs/index.js';
import { EarTokens, TokenKeyRing } from '../../src/kbs/tokens/index.js';
import type { SnpPolicy } from '../../src/policy/snp/index.js';
import { createTeeVerifier } from '../../src/policy/tees.js';
import {
  SIM_DEFAULT_POLICY,
  type SimChain,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { NewLaunchPolicy, Store } from '../../src/store/types.js';
import { toHex } from '../../src/util/bytes.js';
import { simKds } from '../helpers/broker.js';

/** The fake AMD KDS now lives in test/helpers/broker.ts; re-exported for the suites that import it here. */
export { simKds };

export const MEASUREMENT = new Uint8Array(createHash('sha384').update('kbs test firmware').digest());

export interface KbsTestEnv {
  readonly base: string;
  readonly app: FastifyInstance;
  readonly broker: Broker;
  readonly store: Store;
  readonly kek: AesGcmKek;
  readonly chain: SimChain;
  readonly keys: TokenKeyRing;
  readonly tokens: EarTokens;
  readonly adapter: BrokerKbsAdapter;
  readonly secrets: MemorySecretStore;
  /** Guest refusals the broker did not audit because they named no instance (its onUnattributedRefusal). */
  readonly unattributed: { kind: string; reason: string }[];
  /** Moves the KBS session clock (not the broker's, not the tokens'). */
  advanceSessions(ms: number): void;
  /** Registers an instance and returns it with a simulated firmware launched with its HOST_DATA. */
  launch(opts?: {
    project?: string;
    measurement?: Uint8Array;
    policy?: SnpPolicy;
    newLaunch?: NewLaunchPolicy;
  }): Promise<{
    instance: InstanceView;
    firmware: SimSnpFirmware;
    /** Another launch of the same instance (a new REPORT_ID), as after the VM was stopped and started. */
    relaunch(): SimSnpFirmware;
  }>;
  /** The instance's newest sealing key, read from the store (test-only check of what was released). */
  sealingKey(instanceId: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

let seq = 0;

export async function startKbs(
  opts: { sealingKeyPaths?: readonly string[]; withCertSource?: boolean } = {},
): Promise<KbsTestEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'vouchsafe-kbs-'));
  const store = await openSqliteStore({ path: join(dir, 'kbs.db') });
  const raw = randomBytes(32);
  const kek = new AesGcmKek(raw);
  raw.fill(0);
  const chain = await sharedSimChain('Milan');
  const tees = createTeeVerifier({
    now: Date.now,
    snp: {
      trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
      // A KDS serving the simulator's VCEK chain, for reports sent without a certificate table.
      ...(opts.withCertSource ? { getter: simKds(chain) } : {}),
    },
  });
  const unattributed: { kind: string; reason: string }[] = [];
  const broker = new Broker({
    store,
    kek,
    verifyEvidence: tees.verifyEvidence,
    appraise: tees.appraise,
    onUnattributedRefusal: (kind, e) => unattributed.push({ kind, reason: (e as { reason: string }).reason }),
  });
  const keys = await TokenKeyRing.generate({ maxTokenLifetimeMs: 300_000 });
  const secrets = new MemorySecretStore();
  const adapter = createBrokerKbsAdapter({
    broker,
    secrets,
    sealingKeyPaths: opts.sealingKeyPaths ?? [SEALING_KEY_PATH, 'default/sample/test'],
  });
  let offset = 0;
  const app = Fastify({ logger: false });
  // The issuer is fixed before listening; tests read it back from the tokens.
  const tokens = new EarTokens({ keys, issuer: 'https://kbs.test.vouchsafe' });
  await app.register(kbsRoutes, { broker: adapter, tokens, now: () => Date.now() + offset });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });

  return {
    base: address,
    app,
    broker,
    store,
    kek,
    chain,
    keys,
    tokens,
    adapter,
    secrets,
    unattributed,
    advanceSessions: (ms) => {
      offset += ms;
    },
    async launch(o = {}) {
      const n = ++seq;
      const measurement = o.measurement ?? MEASUREMENT;
      const instance = await broker.registerInstance({
        project: o.project ?? 'proj-kbs',
        zone: 'europe-west4-a',
        instanceId: String(7_000_000 + n + Math.floor(Math.random() * 1e6)),
        instanceName: `kbs-vm-${n}`,
        policy: (o.policy ?? { measurements: [toHex(MEASUREMENT)] }) as never,
        ...(o.newLaunch ? { newLaunch: o.newLaunch } : {}),
      });
      const relaunch = () =>
        new SimSnpFirmware(chain, { measurement, policy: SIM_DEFAULT_POLICY, hostData: instance.hostData });
      return { instance, firmware: relaunch(), relaunch };
    },
    async sealingKey(instanceId) {
      const rec = await store.transaction((tx) => tx.latestKey(instanceId));
      if (!rec) throw new Error('no sealing key');
      return openSealingKey(kek, rec);
    },
    async close() {
      adapter.close();
      await app.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
