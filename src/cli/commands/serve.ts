import { type Command, Option } from 'commander';
import { pino } from 'pino';
import { type RunningBroker, startBroker } from '../../api/start.js';
import { InvalidArgument } from '../../errors.js';
import type { TrustedRoot } from '../../evidence/snp/index.js';
import { SnpProducts } from '../../formats/snp/index.js';
import { reportError } from '../io.js';

interface ServeOptions {
  listen: string;
  data: string;
  database?: string;
  trustSimRoot?: string[];
  tlsCert?: string;
  tlsKey?: string;
  kds: boolean;
  kdsUrl?: string;
  kdsOffline?: boolean;
  crl: 'kds' | 'none';
  logLevel: string;
}

/**
 * `[PRODUCT:]SHA256` -> trusted roots. A bare digest is trusted for every product: the verifier still
 * checks the root's names against the product, so a Milan root cannot pass as a Genoa one.
 */
export function parseTrustedRoots(values: readonly string[]): TrustedRoot[] {
  const out: TrustedRoot[] = [];
  for (const v of values) {
    const m = /^(?:(Milan|Genoa|Turin):)?([0-9a-fA-F]{64})$/.exec(v);
    if (!m) {
      throw new InvalidArgument(
        'cli.trust_sim_root',
        `--trust-sim-root: expected [PRODUCT:]SHA256, got ${v}`,
      );
    }
    const sha256 = m[2]!.toLowerCase();
    for (const product of m[1] ? [m[1] as TrustedRoot['product']] : SnpProducts)
      out.push({ product, sha256 });
  }
  return out;
}

/** `vouchsafe serve`: runs the key broker (native API, admin API, metrics) until SIGINT/SIGTERM. */
export function register(program: Command): void {
  program
    .command('serve')
    .description('run the key broker: native /v1 API, admin API, /healthz, /metrics, /v1/openapi.json')
    .option('--listen <host:port>', 'address to listen on (port 0: any free port)', '127.0.0.1:8443')
    .option(
      '--data <dir>',
      'data directory: KEK, signing key, admin token, SQLite database, KDS cache',
      'vouchsafe-data',
    )
    .addOption(
      new Option('--database <url>', 'use PostgreSQL (postgres://...) instead of SQLite in --data').env(
        'VOUCHSAFE_DATABASE_URL',
      ),
    )
    .option(
      '--trust-sim-root <sha256...>',
      "also trust this root ([PRODUCT:]SHA-256 of its DER), e.g. the simulator's ARK; AMD's ARKs are always trusted",
    )
    .option('--tls-cert <file>', 'serve HTTPS with this certificate chain (PEM)')
    .option('--tls-key <file>', 'the TLS private key (PEM)')
    .option('--no-kds', 'never fetch certificates from AMD KDS (reports must carry a certificate table)')
    .option('--kds-url <url>', 'AMD KDS base URL or mirror', 'https://kdsintf.amd.com')
    .option('--kds-offline', 'never touch the network: serve certificates only from <data>/kds-cache')
    .addOption(
      new Option('--crl <source>', 'check AMD CRLs: kds (fetch) or none')
        .choices(['kds', 'none'])
        .default('none'),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .addHelpText(
      'after',
      `
On first run the data directory is created (mode 0700) with, each mode 0600:
  kek                      the key-encryption key of every sealing key (losing it loses every VM's data)
  broker-signing-key.pem   ECDSA P-384 key signing 0.2.0 responses; guests pin broker-signing-key.pem.pub
  admin-token              the bearer token of the admin API (vouchsafe instance --token-file ...)
  vouchsafe.db             the SQLite store (unless --database)

Examples:
  vouchsafe serve --listen 0.0.0.0:8443 --data /var/lib/vouchsafe --tls-cert cert.pem --tls-key key.pem
  VOUCHSAFE_DATABASE_URL=postgres://vouchsafe@db/vouchsafe vouchsafe serve --data /var/lib/vouchsafe
  vouchsafe serve --data ./demo --trust-sim-root Milan:<sha256 of the simulator ARK> --no-kds`,
    )
    .action(async (o: ServeOptions) => {
      let running: RunningBroker | undefined;
      try {
        if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
          throw new InvalidArgument('cli.tls', '--tls-cert and --tls-key go together');
        }
        running = await startBroker({
          listen: o.listen,
          dataDir: o.data,
          ...(o.database ? { databaseUrl: o.database } : {}),
          trustedRoots: parseTrustedRoots(o.trustSimRoot ?? []),
          kds: o.kds ? { baseUrl: o.kdsUrl, offline: o.kdsOffline ?? false } : 'none',
          crl: o.crl,
          ...(o.tlsCert && o.tlsKey ? { tls: { certPath: o.tlsCert, keyPath: o.tlsKey } } : {}),
          logger: pino({ name: 'vouchsafe-broker', level: o.logLevel }),
        });
      } catch (e) {
        process.exitCode = reportError(e, false);
        return;
      }
      const r = running;
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
        `vouchsafe broker listening on ${r.url} (${r.store.engine})\n` +
          `  data directory:     ${r.dataDir}\n` +
          `  admin token:        ${r.adminTokenPath}\n` +
          `  broker public key:  ${r.signingKeyPath}.pub (pin this in 0.2.0 guests)\n`,
      );
      await stopped;
      await r.close();
      process.exitCode = 0;
    });
}
