import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { type StartBrokerOptions, startBroker } from '../../api/index.js';
import { AttestationError, PolicyRejected } from '../../errors.js';
import { bootGuest, simulatorReportProvider } from '../../guest/index.js';
import { createNativeBackend } from '../../proxy/backends/native/index.js';
import { startProxy } from '../../proxy/index.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  SimSnpFirmware,
  sharedSimChain,
} from '../../sim/snp/index.js';
import { toHex } from '../../util/bytes.js';

/** One line of the demo's timeline. */
export interface DemoEvent {
  readonly step: string;
  readonly outcome: 'released' | 'refused' | 'info';
  readonly detail: string;
  /** Refusals: the stable code and reason the guest received, and each policy failure. */
  readonly code?: string;
  readonly reason?: string;
  readonly failures?: readonly string[];
  /** Whether the outcome is the one the scenario expects (a release where one is due, a refusal otherwise). */
  readonly expected: boolean;
}

export interface DemoOptions {
  /** Adds routes to the demo's broker before it listens (the dashboard: src/cli/dashboard.ts). */
  readonly extend?: StartBrokerOptions['extend'];
  /**
   * Called after the scenario, before anything is stopped: `demo --keep-running` prints the dashboard URL
   * here and returns when interrupted.
   */
  readonly hold?: (broker: { readonly url: string; readonly adminTokenPath: string }) => Promise<void>;
}

/**
 * The main job on the embedded default: a broker on SQLite in a temporary directory, the host proxy on a
 * unix socket with the native backend, and simulated COCONUT-SVSM guests (the SNP simulator's root is the
 * only extra root trusted). Two instances are registered; instance A boots (creating and sealing its
 * state), reboots (unsealing the same state), and then the broker refuses: a tampered measurement, a VM
 * launched with instance B's HOST_DATA, a rolled-back state file, and a cloned concurrent boot.
 */
export async function runDemo(onEvent: (e: DemoEvent) => void, opts: DemoOptions = {}): Promise<DemoEvent[]> {
  const events: DemoEvent[] = [];
  const emit = (e: DemoEvent) => {
    events.push(e);
    onEvent(e);
  };
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-demo-'));
  const chain = await sharedSimChain('Milan');
  const broker = await startBroker({
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'broker'),
    trustedRoots: [{ product: chain.product, sha256: chain.rootSha256 }],
    kds: 'none',
    logger: pino({ level: 'silent' }),
    ...(opts.extend ? { extend: opts.extend } : {}),
  });
  const proxy = await startProxy({
    listen: `unix:${join(dir, 'aproxy.sock')}`,
    backend: createNativeBackend({ brokerUrl: broker.url, timeoutMs: 10_000 }),
    logger: pino({ level: 'silent' }),
  });
  try {
    emit({
      step: 'start',
      outcome: 'info',
      detail: `broker ${broker.url} (SQLite in ${broker.dataDir}), proxy ${proxy.address}, simulator root ${chain.rootSha256.slice(0, 16)}… trusted`,
      expected: true,
    });
    const goodImage = toHex(SIM_DEFAULT_MEASUREMENT);
    const otherImage = 'ab'.repeat(48);
    const policyFor = (measurement: string) => ({ measurements: [measurement] });
    const a = await broker.broker.registerInstance({
      project: 'demo-project',
      zone: 'europe-west4-a',
      instanceId: '1001',
      instanceName: 'vm-a',
      policy: policyFor(goodImage),
      // `refuse`, so that the demo can show a clone refused while vm-a runs; the default (`takeover`) lets a
      // new launch take the boot over instead (docs/broker.md "Leases").
      newLaunch: 'refuse',
    });
    const b = await broker.broker.registerInstance({
      project: 'demo-project',
      zone: 'europe-west4-b',
      instanceId: '1002',
      instanceName: 'vm-b',
      policy: policyFor(otherImage),
    });
    for (const i of [a, b]) {
      emit({
        step: 'register',
        outcome: 'info',
        detail: `${i.instanceName} (${i.project}/${i.zone}/${i.instanceId}): HOST_DATA ${toHex(i.hostData)}, measurement allow-list 1 entry`,
        expected: true,
      });
    }

    const launch = (hostData: Uint8Array, measurement = SIM_DEFAULT_MEASUREMENT) =>
      simulatorReportProvider(
        new SimSnpFirmware(chain, { measurement, policy: SIM_DEFAULT_POLICY, hostData }),
      );
    const statePath = join(dir, 'vm-a.state');
    const boot = async (
      step: string,
      provider: ReturnType<typeof launch>,
      path: string,
      expectRelease: boolean,
    ) => {
      try {
        const r = await bootGuest({
          connect: proxy.address,
          provider,
          statePath: path,
          brokerPublicKey: broker.publicKey,
        });
        emit({
          step,
          outcome: 'released',
          detail:
            `${r.firstBoot ? 'first boot: state created and sealed' : 'state unsealed'}, now version ${r.counter}` +
            ` (committed ${r.committed}), identity ${r.identity?.instanceName ?? '-'}, state ${toHex(r.state).slice(0, 16)}…,` +
            ` broker signature ${r.brokerVerified ? 'verified' : 'not checked'}`,
          expected: expectRelease,
        });
        return r;
      } catch (e) {
        if (!(e instanceof AttestationError)) throw e;
        emit({
          step,
          outcome: 'refused',
          detail: e.message,
          code: e.code,
          reason: e.reason,
          ...(e instanceof PolicyRejected ? { failures: e.failures.map((f) => f.code) } : {}),
          expected: !expectRelease,
        });
        return undefined;
      }
    };
    // The control plane knows when an instance stopped; it ends the boot lease so the next boot is not a clone.
    const stopped = (id: string) => broker.broker.resetBoot(id, 'demo: instance stopped');

    const first = await boot('boot vm-a', launch(a.hostData), statePath, true);
    await stopped(a.id);
    const rolledBack = join(dir, 'vm-a.state.v1');
    copyFileSync(statePath, rolledBack);
    const second = await boot('reboot vm-a', launch(a.hostData), statePath, true);
    if (first && second) {
      emit({
        step: 'check',
        outcome: 'info',
        detail: `reboot unsealed the same state as the first boot: ${toHex(first.state) === toHex(second.state)}`,
        expected: toHex(first.state) === toHex(second.state),
      });
    }
    await stopped(a.id);

    await boot('tampered image as vm-a', launch(a.hostData, new Uint8Array(48).fill(0xee)), statePath, false);
    const asB = join(dir, 'vm-b.state');
    await boot("vm-a's image launched with vm-b's HOST_DATA", launch(b.hostData), asB, false);
    const rb = join(dir, 'rollback.state');
    copyFileSync(rolledBack, rb);
    await boot('vm-a with a rolled-back state file (version 1)', launch(a.hostData), rb, false);

    await boot('vm-a boots', launch(a.hostData), statePath, true);
    const clone = join(dir, 'clone.state');
    copyFileSync(statePath, clone);
    await boot('a clone of vm-a boots while vm-a runs', launch(a.hostData), clone, false);

    const audit = await broker.broker.verifyAuditChain();
    emit({
      step: 'audit',
      outcome: 'info',
      detail: audit.ok
        ? `audit chain verifies: ${audit.entries} entries, head ${audit.headHash.slice(0, 16)}…`
        : `audit chain BROKEN at ${audit.seq}: ${audit.problem}`,
      expected: audit.ok,
    });
    if (opts.hold) await opts.hold({ url: broker.url, adminTokenPath: broker.adminTokenPath });
    return events;
  } finally {
    await proxy.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
