import { rmSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgument } from '../../errors.js';
import { parseIdentity } from '../../formats/aproxy/identity.js';
import { parseJson } from '../../formats/aproxy/json.js';
import { DEFAULT_PORTS, PvCall, PvFeature } from '../../formats/pvchannel/constants.js';
import { PvDevice } from '../../pvchannel/device.js';
import { platformIdentityHandler } from '../../pvchannel/platform-identity.js';
import { serveVmmDevice } from '../../pvchannel/vmm-socket.js';
import { readInput, reportError } from '../io.js';

interface VmmDeviceOptions {
  socket: string;
  features: string;
  identity?: string;
  commandPort: string;
  dataPort: string;
}

/** `--features` names -> feature bits (docs/pvchannel.md §7). */
const FEATURE_NAMES: Readonly<Record<string, bigint>> = {
  'platform-identity': PvFeature.PlatformIdentity,
  'certify-ek': PvFeature.CertifyEk,
  'certify-ak': PvFeature.CertifyAk,
  'uefi-variables': PvFeature.UefiVariables,
  'key-release': PvFeature.KeyRelease,
  c509: PvFeature.C509,
};

function port(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffff)
    throw new InvalidArgument('cli.port', `${name}: not a port number`);
  return n;
}

/**
 * `vouchsafe vmm-device`: the paravirtual firmware device as a process a VMM drives over a unix socket
 * (docs/pvchannel.md §8). Calls other than NEGOTIATE and GET_PLATFORM_IDENTITY answer NOT_SUPPORTED until
 * their handlers exist.
 */
export function register(program: Command): void {
  program
    .command('vmm-device')
    .description('serve the VMM<->SVSM paravirtual firmware device on a unix socket (docs/pvchannel.md)')
    .requiredOption('--socket <path>', 'unix socket the VMM connects to')
    .option(
      '--features <list>',
      `offered features, comma-separated: ${Object.keys(FEATURE_NAMES).join(', ')}`,
      'platform-identity',
    )
    .option(
      '--identity <file>',
      'JSON {project, zone, instanceId, instanceName} for GET_PLATFORM_IDENTITY (informative)',
    )
    .option('--command-port <n>', 'port-only path: command port', String(DEFAULT_PORTS.command))
    .option('--data-port <n>', 'port-only path: data port', String(DEFAULT_PORTS.data))
    .action(async (o: VmmDeviceOptions) => {
      try {
        let features = 0n;
        for (const name of o.features.split(',').filter(Boolean)) {
          const bit = FEATURE_NAMES[name];
          if (bit === undefined) throw new InvalidArgument('cli.features', `unknown feature ${name}`);
          features |= bit;
        }
        const handlers: Record<number, ReturnType<typeof platformIdentityHandler>> = {};
        if (o.identity !== undefined) {
          const id = parseIdentity(parseJson(readInput(o.identity, '--identity')), 'identity');
          handlers[PvCall.GetPlatformIdentity] = platformIdentityHandler(() => id);
        }
        const device = new PvDevice({ offer: { minVersion: 1, maxVersion: 1, features }, handlers });
        const ports = {
          command: port(o.commandPort, '--command-port'),
          data: port(o.dataPort, '--data-port'),
        };
        rmSync(o.socket, { force: true });
        const server = serveVmmDevice(device, ports, (reason) =>
          process.stderr.write(`vmm-device: refused frame: ${reason}\n`),
        );
        await new Promise<void>((resolve, reject) => {
          server.once('error', () =>
            reject(new InvalidArgument('cli.listen', `cannot listen on ${o.socket}`)),
          );
          server.listen(o.socket, resolve);
        });
        process.stdout.write(`vmm-device listening on ${o.socket}\n`);
        const stop = () => server.close(() => process.exit(0));
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      } catch (e) {
        process.exitCode = reportError(e, false);
      }
    });
}
