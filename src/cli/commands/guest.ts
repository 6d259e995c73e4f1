import { createPublicKey, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { InvalidArgument } from '../../errors.js';
import { PvFeature } from '../../formats/pvchannel/constants.js';
import { isSnpProduct, type SnpProduct } from '../../formats/snp/index.js';
import {
  bootGuest,
  ConfigfsTsmProvider,
  type GuestSession,
  type ReportProvider,
  simulatorReportProvider,
} from '../../guest/index.js';
import { pvChannelOverVmmSocket, pvKeyReleaseOpener } from '../../guest/pv-key-release.js';
import {
  createSimChain,
  loadSimChain,
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  SimSnpFirmware,
  saveSimChain,
} from '../../sim/snp/index.js';
import { fromHex, toHex } from '../../util/bytes.js';
import { Exit, readInput, reportError } from '../io.js';

interface BootOptions {
  connect: string;
  state: string;
  provider: 'configfs-tsm' | 'sim';
  protocol: '0.1.0' | '0.2.0';
  dialect: 'main' | 'pr1122' | 'pr1203';
  brokerKey?: string;
  simDir?: string;
  hostData?: string;
  measurement?: string;
  tsmRoot?: string;
  hold?: boolean;
  leaseMs: string;
  timeout: string;
  json?: boolean;
}

function hexArg(v: string | undefined, bytes: number, name: string): Uint8Array | undefined {
  if (v === undefined) return undefined;
  const b = fromHex(v);
  if (!b || b.length !== bytes) throw new InvalidArgument('cli.hex', `${name} must be ${bytes} bytes of hex`);
  return b;
}

function providerFor(o: BootOptions): ReportProvider {
  if (o.provider === 'configfs-tsm') return new ConfigfsTsmProvider(o.tsmRoot ? { root: o.tsmRoot } : {});
  if (!o.simDir)
    throw new InvalidArgument('cli.sim', '--provider sim needs --sim-dir (see `vouchsafe sim init`)');
  const hostData = hexArg(o.hostData, 32, '--host-data');
  if (!hostData)
    throw new InvalidArgument('cli.sim', '--provider sim needs --host-data (from `instance register`)');
  const firmware = new SimSnpFirmware(loadSimChain(o.simDir), {
    measurement: hexArg(o.measurement, 48, '--measurement') ?? SIM_DEFAULT_MEASUREMENT,
    policy: SIM_DEFAULT_POLICY,
    hostData,
  });
  return simulatorReportProvider(firmware);
}

/** Heartbeats until SIGINT/SIGTERM (then ends the boot) or until the broker says another boot took over. */
async function holdLease(session: GuestSession, leaseMs: number): Promise<void> {
  if (!Number.isInteger(leaseMs) || leaseMs <= 0)
    throw new InvalidArgument('cli.options', '--lease-ms: ms > 0');
  process.stderr.write('holding the boot lease (heartbeats); SIGINT or SIGTERM ends the boot\n');
  const loop = session.startHeartbeats({ leaseMs });
  const signal = new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  const halted = await Promise.race([loop.halted, signal.then(() => undefined)]);
  await loop.stop();
  if (halted) throw halted;
  await session.end();
}

/** `vouchsafe guest boot` (the SVSM side) and `vouchsafe sim init` (a simulated platform for it). */
export function register(program: Command): void {
  const guest = program.command('guest').description('the guest (SVSM) side of key release, as a command');
  guest
    .command('boot')
    .description(
      'attest through the host proxy, receive the sealing key, unseal (or create) and commit the state file',
    )
    .requiredOption(
      '--connect <address>',
      'the proxy: unix:PATH or tcp:HOST:PORT; or pvchannel:PATH, a `vouchsafe vmm-device` socket whose KEY_RELEASE call relays to the proxy (no vsock; docs/pvchannel.md §7.4)',
    )
    .requiredOption(
      '--state <file>',
      'the sealed state file (created on first boot; <file>.next is its pending slot)',
    )
    .addOption(
      new Option('--provider <name>', 'where reports come from')
        .choices(['configfs-tsm', 'sim'])
        .default('configfs-tsm'),
    )
    .addOption(
      new Option('--protocol <version>', 'protocol version').choices(['0.1.0', '0.2.0']).default('0.2.0'),
    )
    .addOption(
      new Option(
        '--dialect <name>',
        "message dialect: main (svsm main, Vouchsafe 0.2.0), pr1122 or pr1203 (COCONUT's open proposals; 0.1.0)",
      )
        .choices(['main', 'pr1122', 'pr1203'])
        .default('main'),
    )
    .option('--broker-key <file>', "pin the broker's response-signing public key (PEM; 0.2.0)")
    .option('--sim-dir <dir>', '--provider sim: the simulated platform made by `vouchsafe sim init`')
    .option('--host-data <hex>', '--provider sim: HOST_DATA the VMM set at launch (32 bytes)')
    .option(
      '--measurement <hex>',
      '--provider sim: launch measurement (48 bytes; default the simulator image)',
    )
    .option('--tsm-root <dir>', '--provider configfs-tsm: report directory', '/sys/kernel/config/tsm/report')
    .option(
      '--hold',
      'stay up like a running VM: heartbeat the lease until SIGINT/SIGTERM, then end the boot',
    )
    .option('--lease-ms <ms>', "the broker's boot lease, to pace --hold heartbeats", '300000')
    .option('--timeout <ms>', 'connect and per-reply deadline', '30000')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
On real SEV-SNP hardware the report comes from Linux configfs-tsm (/sys/kernel/config/tsm/report). With
--provider sim a simulated firmware signs it; the broker must trust that simulator's root
(vouchsafe serve --trust-sim-root PRODUCT:SHA256, printed by \`vouchsafe sim init\`).

Without --hold the command behaves like a VM that boots and shuts down: after the commit it ends its boot
lease (0.2.0), so the next boot is not taken for a clone. With --hold it heartbeats until stopped; a
second boot of the same instance meanwhile is refused as a clone.

Exit status: 0 key released and state committed, 1 refused (code and reason printed), 2 unusable input.`,
    )
    .action(async (o: BootOptions) => {
      let pv: Awaited<ReturnType<typeof pvChannelOverVmmSocket>> | undefined;
      try {
        const timeoutMs = Number(o.timeout);
        if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
          throw new InvalidArgument('cli.options', '--timeout: ms > 0');
        const brokerPublicKey = o.brokerKey === undefined ? undefined : readBrokerKey(o.brokerKey);
        // pvchannel:PATH: this process plays the VMM too, forwarding pages to the device socket.
        pv = o.connect.startsWith('pvchannel:')
          ? await pvChannelOverVmmSocket(o.connect.slice('pvchannel:'.length), PvFeature.KeyRelease)
          : undefined;
        const r = await bootGuest({
          connect: pv ? pvKeyReleaseOpener(pv.client) : o.connect,
          provider: providerFor(o),
          statePath: o.state,
          version: o.dialect === 'main' ? o.protocol : '0.1.0',
          dialect: o.dialect,
          timeoutMs,
          ...(brokerPublicKey ? { brokerPublicKey } : {}),
        });
        const out = {
          firstBoot: r.firstBoot,
          counter: r.counter.toString(),
          committed: r.committed,
          identity: r.identity,
          bootId: r.bootId,
          brokerVerified: r.brokerVerified,
        };
        if (o.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        else {
          process.stdout.write(
            `${r.firstBoot ? 'state created' : 'state unsealed'}; now version ${out.counter}` +
              `${r.committed ? ' (committed)' : ''}; instance ${r.identity ? `${r.identity.project}/${r.identity.zone}/${r.identity.instanceName}` : '-'}` +
              `${r.brokerVerified ? '; broker signature verified' : ''}\n`,
          );
        }
        if (!r.brokerVerified) {
          // Without a pinned key anything between the guest and the broker could have answered.
          process.stderr.write(
            "warning: the broker's response was not authenticated (no --broker-key with protocol 0.2.0): " +
              'pin <data>/broker-signing-key.pem.pub with --broker-key\n',
          );
        }
        if (r.session && o.hold) await holdLease(r.session, Number(o.leaseMs));
        else if (r.session) await r.session.end();
        process.exitCode = Exit.Ok;
      } catch (e) {
        process.exitCode = reportError(e, o.json ?? false);
      } finally {
        pv?.close();
      }
    });

  const sim = program.command('sim').description('simulated SEV-SNP platforms for demos and tests');
  sim
    .command('init')
    .description("create a simulated AMD chain (ARK/ASK/VCEK shaped like AMD's) in a directory")
    .requiredOption('--dir <dir>', 'where to write it')
    .option('--product <name>', 'Milan, Genoa or Turin', 'Milan')
    .action(async (o: { dir: string; product: string }) => {
      try {
        if (!isSnpProduct(o.product)) throw new InvalidArgument('cli.product', 'Milan, Genoa or Turin');
        const chain = await createSimChain({ product: o.product as SnpProduct });
        saveSimChain(o.dir, chain);
        // What a pasted walk-through needs next (README "Release keys"): the root to give `serve`, and a policy
        // that allows the measurement the simulated guest reports.
        const trustRoot = `${chain.product}:${chain.rootSha256}`;
        writeFileSync(join(o.dir, 'trust-root'), `${trustRoot}\n`);
        writeFileSync(
          join(o.dir, 'policy.json'),
          `${JSON.stringify({ measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] }, null, 2)}\n`,
        );
        process.stdout.write(
          `simulated ${chain.product} platform in ${o.dir}; chip id ${toHex(chain.chipId).slice(0, 16)}…\n` +
            `trust it with: --trust-sim-root ${trustRoot}   (also in ${join(o.dir, 'trust-root')})\n` +
            `its guest's measurement: ${toHex(SIM_DEFAULT_MEASUREMENT)}   (a policy allowing it: ${join(o.dir, 'policy.json')})\n`,
        );
        process.exitCode = Exit.Ok;
      } catch (e) {
        process.exitCode = reportError(e, false);
      }
    });
}

/**
 * Reads `--broker-key`: the broker's response-signing public key as SPKI PEM (`<data>/broker-signing-key.pem.pub`).
 * A certificate, a private key or anything else is refused by name (`cli.broker_key`) rather than left to fail
 * inside OpenSSL.
 */
function readBrokerKey(path: string): KeyObject {
  const text = Buffer.from(readInput(path, '--broker-key')).toString('latin1');
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
  if (label !== 'PUBLIC KEY') {
    const what = label === undefined ? 'not PEM' : `a PEM ${label}`;
    throw new InvalidArgument(
      'cli.broker_key',
      `--broker-key ${path} is ${what}: give the broker's public key (PEM PUBLIC KEY, <data>/broker-signing-key.pem.pub)`,
    );
  }
  try {
    return createPublicKey({ key: text, format: 'pem' });
  } catch {
    throw new InvalidArgument('cli.broker_key', `--broker-key ${path}: the PUBLIC KEY block cannot be read`);
  }
}
