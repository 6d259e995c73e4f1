import { rmSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgument } from '../../errors.js';
import { parseIdentity } from '../../formats/aproxy/identity.js';
import { parseJson } from '../../formats/aproxy/json.js';
import { DEFAULT_PORTS, PvCall, PvFeature } from '../../formats/pvchannel/constants.js';
import { type CallHandler, PvDevice } from '../../pvchannel/device.js';
import { keyReleaseRelay } from '../../pvchannel/key-release.js';
import { platformIdentityHandler } from '../../pvchannel/platform-identity.js';
import { UefiHostStore, uefiHandlers } from '../../pvchannel/uefi-host.js';
import { serveVmmDevice } from '../../pvchannel/vmm-socket.js';
import { readInput, reportError } from '../io.js';
import { type CertifyOptions, certifyHandlers } from './vmm-device-ca.js';

interface VmmDeviceOptions extends CertifyOptions {
  socket: string;
  features: string;
  identity?: string;
  commandPort: string;
  dataPort: string;
  uefiVars?: string;
  keyReleaseProxy?: string;
  keyReleaseTimeout: string;
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
 * (docs/pvchannel.md §8). UEFI variables (§7.3) live in `--uefi-vars`; KEY_RELEASE (§7.4) relays to
 * `--key-release-proxy`. A call whose handler is not wired answers NOT_SUPPORTED.
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
    .option(
      '--uefi-vars <file>',
      "uefi-variables: this instance's variable file (created if absent; values sealed by the guest)",
    )
    .option(
      '--key-release-proxy <address>',
      'key-release: the host proxy (`vouchsafe proxy`, unix:PATH or tcp:HOST:PORT) KEY_RELEASE relays to',
    )
    .option('--key-release-timeout <ms>', 'key-release: connect and per-reply deadline', '30000')
    .option('--ca-url <url>', 'certify-ek/certify-ak: the platform CA service (`vouchsafe serve --ca-dir`)')
    .option('--ca-token-file <file>', "certify-ek/certify-ak: this host's credential for the CA service")
    .option('--ca-cert <file>', 'certify-ek/certify-ak: PEM CA of an https CA service')
    .action(async (o: VmmDeviceOptions) => {
      try {
        let features = 0n;
        for (const name of o.features.split(',').filter(Boolean)) {
          const bit = FEATURE_NAMES[name];
          if (bit === undefined) throw new InvalidArgument('cli.features', `unknown feature ${name}`);
          features |= bit;
        }
        const handlers: Record<number, CallHandler> = {};
        // docs/pvchannel.md §7.3: one file per instance (this device serves one VM).
        if (features & PvFeature.UefiVariables) {
          if (o.uefiVars === undefined)
            throw new InvalidArgument('cli.options', '--features uefi-variables needs --uefi-vars FILE');
          Object.assign(handlers, uefiHandlers(await UefiHostStore.open(o.uefiVars)));
        }
        // §7.4: the same host proxy (and so the same backends) a vsock guest reaches.
        if (features & PvFeature.KeyRelease) {
          if (o.keyReleaseProxy === undefined)
            throw new InvalidArgument(
              'cli.options',
              '--features key-release needs --key-release-proxy ADDRESS',
            );
          const timeoutMs = Number(o.keyReleaseTimeout);
          if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
            throw new InvalidArgument('cli.options', '--key-release-timeout: ms > 0');
          handlers[PvCall.KeyRelease] = keyReleaseRelay({ proxy: o.keyReleaseProxy, timeoutMs }).handler;
        }
        const id =
          o.identity === undefined
            ? undefined
            : parseIdentity(parseJson(readInput(o.identity, '--identity')), 'identity');
        if (id) handlers[PvCall.GetPlatformIdentity] = platformIdentityHandler(() => id);
        // §7.2: relayed to the CA service; the identity is the CA's to find (HOST_DATA), ours only a claim.
        Object.assign(handlers, certifyHandlers(features, o, id));
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
