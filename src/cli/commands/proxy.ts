import { type Command, Option } from 'commander';
import { pino } from 'pino';
import { InvalidArgument } from '../../errors.js';
import { DIALECTS, isDialect } from '../../formats/aproxy/dialect.js';
import { type DialectBinding, JWS_SHA384, RAW_SHA512 } from '../../formats/aproxy/dialect-binding.js';
import type { ProxyBackend } from '../../proxy/backend.js';
import { APROXY_DEFAULT_RESOURCE, KbsForwarder, KbsProxyBackend } from '../../proxy/backends/kbs/index.js';
import { createNativeBackend } from '../../proxy/backends/native/index.js';
import { type RunningProxy, startProxy } from '../../proxy/index.js';
import { readInput, reportError } from '../io.js';

interface ProxyCliOptions {
  listen: string[];
  broker: string;
  brokerCa?: string;
  protocol: string;
  resourcePath?: string;
  timeout: string;
  readTimeout: string;
  sessionTimeout: string;
  firstFrameTimeout: string;
  maxSessions: string;
  maxSessionsPerPeer: string;
  maxSessionsPerListener?: string;
  maxQueued: string;
  queueTimeout: string;
  maxBufferedBytes: string;
  logLevel: string;
  dialect?: string[];
  kbsBinding: string;
}

/** What a backend factory gets from the command line. */
export interface BackendArgs {
  readonly brokerUrl: string;
  /** The --broker-ca file's bytes (PEM). */
  readonly brokerCa?: Uint8Array;
  readonly timeoutMs: number;
  /** `--resource-path`: the KBS resource (`repository/type/tag`) holding the guest's secret. */
  readonly resourcePath?: string;
  /** `--kbs-binding`: what REPORT_DATA the KBS checks (kbs protocol and pr1203 listeners). */
  readonly binding?: DialectBinding;
}

/** `--kbs-binding` values: svsm main's SHA-512 RawBinary, or Trustee's SHA-384 JwsJson (pr1122/pr1203 guests). */
const KBS_BINDINGS: Readonly<Record<string, DialectBinding>> = {
  'raw-sha512': RAW_SHA512,
  'jws-sha384': JWS_SHA384,
};

/**
 * The backends `--protocol` selects, by name. Add one here and it appears in --help and in the option's
 * choices. `resourcePath: true` says the backend takes --resource-path.
 */
export const PROXY_PROTOCOLS: Readonly<
  Record<
    string,
    {
      readonly description: string;
      readonly resourcePath?: boolean;
      create(a: BackendArgs): ProxyBackend;
    }
  >
> = {
  native: {
    description: "the Vouchsafe broker's native /v1 API",
    create: (a) =>
      createNativeBackend({
        brokerUrl: a.brokerUrl,
        timeoutMs: a.timeoutMs,
        ...(a.brokerCa ? { brokerCa: a.brokerCa } : {}),
      }),
  },
  kbs: {
    description: `the Trustee KBS protocol (RCAR) to any KBS, e.g. the broker's /kbs/v0; 0.1.0 guests only,
           as COCONUT aproxy --protocol kbs (resource: --resource-path, default ${APROXY_DEFAULT_RESOURCE})`,
    resourcePath: true,
    create: (a) =>
      new KbsProxyBackend({
        url: a.brokerUrl,
        // jws-sha384 is Trustee's binding: the backend then sends Trustee's struct-form evidence.
        ...(a.binding && a.binding !== RAW_SHA512 ? { binding: a.binding } : {}),
        ...(a.resourcePath !== undefined ? { resourcePath: a.resourcePath } : {}),
        ...(a.brokerCa ? { ca: a.brokerCa } : {}),
      }),
  },
};

function ms(v: string, name: string): number {
  if (!/^[0-9]{1,9}$/.test(v) || Number(v) <= 0)
    throw new InvalidArgument('cli.options', `${name}: milliseconds > 0`);
  return Number(v);
}

function count(v: string, name: string, min = 1): number {
  if (!/^[0-9]{1,12}$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min)
    throw new InvalidArgument('cli.options', `${name}: an integer >= ${min}`);
  return Number(v);
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

/** `vouchsafe proxy`: the host attestation proxy between COCONUT-SVSM guests and the broker. */
export function register(program: Command): void {
  program
    .command('proxy')
    .description('run the host attestation proxy: guests (aproxy 0.1.0 / 0.2.0) in, the key broker out')
    .requiredOption(
      '--listen <address>',
      'guest channel: unix:PATH or tcp:HOST:PORT; repeat for several (e.g. one unix socket per VM)',
      collect,
    )
    .requiredOption('--broker <url>', 'the broker base URL, e.g. https://broker.example:8443')
    .option('--broker-ca <file>', 'CA certificate (PEM) the https broker must chain to (default: system CAs)')
    .addOption(
      new Option('--protocol <name>', 'how to talk to the broker')
        .choices(Object.keys(PROXY_PROTOCOLS))
        .default('native'),
    )
    .option(
      '--resource-path <repository/type/tag>',
      `kbs only: the KBS resource holding the guest's secret (default ${APROXY_DEFAULT_RESOURCE}, aproxy's)`,
    )
    .option(
      '--dialect <name>',
      `message dialect of the listeners: ${DIALECTS.join(', ')} (default main); once for all, or once per --listen in order`,
      collect,
    )
    .addOption(
      new Option(
        '--kbs-binding <name>',
        'REPORT_DATA binding the KBS checks (kbs protocol, pr1203 listeners)',
      )
        .choices(Object.keys(KBS_BINDINGS))
        .default('raw-sha512'),
    )
    .option('--timeout <ms>', 'per broker call', '30000')
    .option('--read-timeout <ms>', 'each guest frame must arrive within this', '30000')
    .option('--session-timeout <ms>', 'a whole guest session, connect to close', '120000')
    .option('--first-frame-timeout <ms>', "a guest's opening frame must arrive within this", '5000')
    .option('--max-sessions <n>', 'sessions served at once; more connections wait in the queue', '1024')
    .option('--max-sessions-per-peer <n>', 'connections (served or waiting) per TCP peer address', '32')
    .option(
      '--max-sessions-per-listener <n>',
      'connections (served or waiting) per listener, e.g. per VM socket (default: no cap of its own)',
    )
    .option('--max-queued <n>', 'connections that may wait for a slot (0: close at once)', '1024')
    .option('--queue-timeout <ms>', 'how long a connection may wait for a slot', '10000')
    .option(
      '--max-buffered-bytes <n>',
      'bytes received and not yet consumed, all sessions together',
      '67108864',
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .addHelpText(
      'after',
      `
Protocols:
${Object.entries(PROXY_PROTOCOLS)
  .map(([k, v]) => `  ${k.padEnd(8)} ${v.description}`)
  .join('\n')}

The proxy is untrusted: it relays, it decides nothing. One misbehaving or silent guest, or a broker outage,
ends that guest's session only. Node has no AF_VSOCK: bridge the SVSM's vsock port 1995 to the unix socket,
e.g. socat VSOCK-LISTEN:1995,fork UNIX-CONNECT:/run/vouchsafe/aproxy.sock
Behind that bridge every guest is the same peer, so --max-sessions-per-peer cannot separate them; to cap
each VM on its own, give each VM CID its own peer (docs/protocol.md §1, "Telling guests apart").

Examples:
  vouchsafe proxy --listen unix:/run/vouchsafe/aproxy.sock --broker https://broker:8443 --broker-ca ca.pem
  vouchsafe proxy --listen tcp:127.0.0.1:1995 --broker http://127.0.0.1:8443 --protocol native
  vouchsafe proxy --listen unix:/run/vm1.sock --dialect pr1122 --listen unix:/run/vm2.sock --dialect pr1203 \\
      --broker http://127.0.0.1:8443 --protocol kbs --kbs-binding jws-sha384
  vouchsafe proxy --listen unix:/run/vouchsafe/aproxy.sock --broker https://broker:8443 --broker-ca ca.pem \\
      --protocol kbs --resource-path vouchsafe/sealing-key/current

With --protocol kbs against a Vouchsafe broker, fetch the guest's own sealing key: --resource-path
vouchsafe/sealing-key/current, or run the broker with --kbs-aproxy-path to serve it at ${APROXY_DEFAULT_RESOURCE}.`,
    )
    .action(async (o: ProxyCliOptions) => {
      let proxy: RunningProxy;
      try {
        const protocol = PROXY_PROTOCOLS[o.protocol];
        if (!protocol) throw new InvalidArgument('cli.protocol', `unknown protocol ${o.protocol}`);
        if (o.resourcePath !== undefined && !protocol.resourcePath) {
          throw new InvalidArgument(
            'cli.options',
            `--resource-path does not apply to --protocol ${o.protocol}`,
          );
        }
        const dialects = (o.dialect ?? ['main']).map((d) => {
          if (!isDialect(d))
            throw new InvalidArgument('cli.options', `--dialect: one of ${DIALECTS.join(', ')}`);
          return d;
        });
        const binding = KBS_BINDINGS[o.kbsBinding]!;
        // PR #1203 guests speak KBS themselves: their listeners forward to --broker's /kbs/v0 (docs/protocol.md "Dialects").
        const forwarder = dialects.includes('pr1203')
          ? new KbsForwarder({
              url: o.broker,
              binding,
              timeoutMs: ms(o.timeout, '--timeout'),
              ...(o.brokerCa !== undefined ? { ca: readInput(o.brokerCa, '--broker-ca') } : {}),
            })
          : undefined;
        const backend = protocol.create({
          brokerUrl: o.broker,
          binding,
          ...(o.resourcePath !== undefined ? { resourcePath: o.resourcePath } : {}),
          timeoutMs: ms(o.timeout, '--timeout'),
          ...(o.brokerCa !== undefined ? { brokerCa: readInput(o.brokerCa, '--broker-ca') } : {}),
        });
        proxy = await startProxy({
          listen: o.listen,
          dialect: dialects,
          ...(forwarder ? { forwarder } : {}),
          backend,
          logger: pino({ name: 'vouchsafe-proxy', level: o.logLevel }),
          timeouts: {
            backendMs: ms(o.timeout, '--timeout') + 1000,
            readMs: ms(o.readTimeout, '--read-timeout'),
            sessionMs: ms(o.sessionTimeout, '--session-timeout'),
            firstFrameMs: ms(o.firstFrameTimeout, '--first-frame-timeout'),
          },
          limits: {
            maxSessions: count(o.maxSessions, '--max-sessions'),
            maxSessionsPerPeer: count(o.maxSessionsPerPeer, '--max-sessions-per-peer'),
            ...(o.maxSessionsPerListener !== undefined
              ? {
                  maxSessionsPerListener: count(o.maxSessionsPerListener, '--max-sessions-per-listener'),
                }
              : {}),
            maxQueued: count(o.maxQueued, '--max-queued', 0),
            queueWaitMs: ms(o.queueTimeout, '--queue-timeout'),
            maxBufferedBytes: count(o.maxBufferedBytes, '--max-buffered-bytes'),
          },
        });
      } catch (e) {
        process.exitCode = reportError(e, false);
        return;
      }
      // Handlers first, then the ready message: a supervisor may signal as soon as it reads it.
      const stopped = new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      process.stderr.write(
        `vouchsafe proxy listening on ${proxy.addresses.join(', ')} -> ${o.broker} (${o.protocol})\n`,
      );
      await stopped;
      await proxy.close();
      process.exitCode = 0;
    });
}
