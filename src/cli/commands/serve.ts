import { type Command, Option } from 'commander';
import { pino } from 'pino';
import { rotateTokenKeyOverHttp } from '../../admin/http.js';
import { readTokenFile } from '../../admin/token-file.js';
import { parseRateLimitConfig, type RateLimitConfig } from '../../api/rate-limits.js';
import { type RunningBroker, type StartBrokerOptions, startBroker } from '../../api/start.js';
import { InvalidArgument } from '../../errors.js';
import type { TrustedRoot } from '../../evidence/snp/index.js';
import { SnpProducts } from '../../formats/snp/index.js';
import { APROXY_RESOURCE_PATH, type KbsServeOptions } from '../../kbs/index.js';
import { isPkcs11Ref } from '../../keys/provider.js';
import { preferYoungAllocation } from '../../util/collector.js';
import { dashboardExtend, dashboardUrl, dashboardWanted } from '../dashboard.js';
import { Exit, readInput, reportError } from '../io.js';

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
  crl?: 'kds' | 'none';
  checkRevocation: boolean;
  crlGraceHours?: number;
  kbs: boolean;
  publicUrl?: string;
  kbsAproxyPath?: boolean;
  kbsSecrets?: string;
  kbsResourcePolicy?: string;
  kbsMaxSessions?: number;
  logLevel: string;
  maxConnections?: number;
  ecdhThreads?: number;
  kek?: string;
  signingKey?: string;
  tokenKeysPkcs11?: string;
  headersTimeout?: number;
  requestTimeout?: number;
  rateLimits?: string | false;
  caDir?: string;
  caDatabase?: string;
  dashboard?: string;
}

/** `--rate-limits FILE` (JSON, src/api/rate-limits.ts) or `--no-rate-limits`. Throws InvalidArgument. */
export function rateLimitsOf(v: string | false | undefined): RateLimitConfig | false | undefined {
  if (v === false || v === undefined) return v;
  const text = Buffer.from(readInput(v, '--rate-limits')).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InvalidArgument('cli.rate_limits', `--rate-limits: ${v} is not JSON`);
  }
  return parseRateLimitConfig(json);
}

/** A positive integer CLI value (`--max-connections`, `--*-timeout` in ms). */
function positiveInt(name: string): (v: string) => number {
  return (v) => {
    if (!/^[1-9][0-9]{0,9}$/.test(v))
      throw new InvalidArgument('cli.options', `${name}: expected a positive integer`);
    return Number(v);
  };
}

/** `--public-url`: an absolute http(s) URL, without a trailing slash (it is compared exactly as `iss`). */
export function parsePublicUrl(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidArgument('cli.public_url', `--public-url: not a URL: ${v}`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash || u.username) {
    throw new InvalidArgument('cli.public_url', '--public-url must be http(s)://HOST[:PORT][/PATH]');
  }
  return v.replace(/\/+$/, '');
}

/** The KBS part of `serve`'s options (false: not served). */
export function kbsOptionsOf(
  o: Pick<
    ServeOptions,
    'kbs' | 'publicUrl' | 'kbsAproxyPath' | 'kbsSecrets' | 'kbsResourcePolicy' | 'kbsMaxSessions'
  >,
): KbsServeOptions | false {
  if (!o.kbs) {
    if (
      o.kbsAproxyPath ||
      o.kbsSecrets !== undefined ||
      o.kbsResourcePolicy !== undefined ||
      o.kbsMaxSessions !== undefined ||
      o.publicUrl !== undefined
    ) {
      throw new InvalidArgument('cli.options', '--kbs-* and --public-url need the KBS (drop --no-kbs)');
    }
    return false;
  }
  if (o.kbsResourcePolicy !== undefined && o.kbsSecrets === undefined) {
    throw new InvalidArgument('cli.options', '--kbs-resource-policy goes with --kbs-secrets');
  }
  return {
    ...(o.publicUrl !== undefined ? { issuer: parsePublicUrl(o.publicUrl) } : {}),
    ...(o.kbsAproxyPath ? { aproxyResourcePath: true } : {}),
    ...(o.kbsSecrets !== undefined ? { secretsDir: o.kbsSecrets } : {}),
    ...(o.kbsResourcePolicy !== undefined ? { resourcePolicyPath: o.kbsResourcePolicy } : {}),
    ...(o.kbsMaxSessions !== undefined ? { maxSessions: o.kbsMaxSessions } : {}),
  };
}

/**
 * Where the keys are (docs/keys.md): `--kek` and `--signing-key` take a file or a `pkcs11:` URI (RFC 7512);
 * `--token-keys-pkcs11` a URI whose token gets the KBS token keys. The PIN is never an option: it comes from
 * the URI's pin-source file or VOUCHSAFE_PKCS11_PIN. Throws InvalidArgument `cli.options`.
 */
export function keyOptionsOf(
  o: Pick<ServeOptions, 'kek' | 'signingKey' | 'tokenKeysPkcs11' | 'kbs'>,
): Partial<StartBrokerOptions> {
  if (o.tokenKeysPkcs11 !== undefined && !o.kbs) {
    throw new InvalidArgument('cli.options', '--token-keys-pkcs11 needs the KBS (drop --no-kbs)');
  }
  if (o.tokenKeysPkcs11 !== undefined && !isPkcs11Ref(o.tokenKeysPkcs11)) {
    throw new InvalidArgument('cli.options', '--token-keys-pkcs11 takes a pkcs11: URI');
  }
  return {
    ...(o.kek !== undefined ? { kekPath: o.kek } : {}),
    ...(o.signingKey !== undefined ? { signingKeyPath: o.signingKey } : {}),
  };
}

/** The revocation part of `serve`'s options. */
export function crlOptionsOf(o: Pick<ServeOptions, 'crl' | 'checkRevocation' | 'crlGraceHours'>): {
  crl?: 'kds' | 'none';
  crlGraceMs?: number;
} {
  if (!o.checkRevocation && o.crl === 'kds') {
    throw new InvalidArgument('cli.options', '--no-check-revocation contradicts --crl kds');
  }
  if (o.crlGraceHours !== undefined && (!o.checkRevocation || o.crl === 'none')) {
    throw new InvalidArgument('cli.options', '--crl-grace needs revocation checking');
  }
  const crl = o.checkRevocation ? o.crl : 'none';
  return {
    ...(crl ? { crl } : {}),
    ...(o.crlGraceHours !== undefined ? { crlGraceMs: o.crlGraceHours * 3_600_000 } : {}),
  };
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

/**
 * `vouchsafe serve`: runs the key broker (native API, KBS, admin API, metrics) until SIGINT/SIGTERM; and
 * `vouchsafe token-keys rotate`, which rotates a running broker's KBS token signing key.
 */
export function register(program: Command): void {
  registerTokenKeys(program);
  program
    .command('serve')
    .description(
      'run the key broker: native /v1 API, Trustee KBS /kbs/v0, admin API, /healthz, /metrics, /v1/openapi.json',
    )
    .option('--listen <host:port>', 'address to listen on (port 0: any free port)', '127.0.0.1:8443')
    .option(
      '--data <dir>',
      'data directory: KEK, signing key, admin token, SQLite database, KDS cache',
      'vouchsafe-data',
    )
    .option(
      '--kek <file|pkcs11-uri>',
      'the key-encryption key: a file (default <data>/kek) or a pkcs11: URI, the key kept in a PKCS#11 token (docs/keys.md)',
    )
    .option(
      '--signing-key <file|pkcs11-uri>',
      'the P-384 response-signing key: a PEM file (default <data>/broker-signing-key.pem) or a pkcs11: URI',
    )
    .option(
      '--token-keys-pkcs11 <uri>',
      'KBS: generate the token signing keys in this PKCS#11 token (object= is the label prefix)',
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
      new Option(
        '--crl <source>',
        'AMD CRLs: kds (checked, from the KDS cache; the default unless --no-kds) or none',
      ).choices(['kds', 'none']),
    )
    .option(
      '--no-check-revocation',
      'do not check AMD CRLs (same as --crl none; logged at warn at every start)',
    )
    .option(
      '--crl-grace <hours>',
      'accept a CRL up to this many hours past its nextUpdate while KDS cannot give a fresher one (default 0)',
      positiveInt('--crl-grace'),
    )
    .option('--no-kbs', 'do not serve the Trustee KBS protocol (/kbs/v0, token JWKS, token-key rotation)')
    .option(
      '--public-url <url>',
      'the URL clients reach this broker at (behind a proxy or on 0.0.0.0): the KBS token issuer (default: the listen URL)',
    )
    .option(
      '--kbs-aproxy-path',
      `KBS: also serve each guest's own sealing key at ${APROXY_RESOURCE_PATH}, the only path an unmodified COCONUT aproxy fetches`,
    )
    .option(
      '--kbs-secrets <dir>',
      'KBS: serve operator secrets from DIR/<repository>/<type>/<tag> (files mode 0600), as resource-policy.json allows',
    )
    .option(
      '--kbs-resource-policy <file>',
      'KBS: the resource-policy file for --kbs-secrets (default <dir>/resource-policy.json; re-read when it changes)',
    )
    .option(
      '--kbs-max-sessions <n>',
      'KBS: sessions held at once, all replicas together (default 10000). Live attested sessions are never evicted, so more than this many guests attesting within a session lifetime (5 min) are refused too-many-sessions: raise it for a larger fleet',
      positiveInt('--kbs-max-sessions'),
    )
    .option(
      '--max-connections <n>',
      'open client connections at once; more are closed on accept (default 512)',
      positiveInt('--max-connections'),
    )
    .option(
      '--ecdh-threads <n>',
      "worker threads for the releases' P-521 ECDH, 0 to run it on the event loop (default: the cores but one, at most 4)",
      (v: string) => {
        if (!/^(0|[1-9][0-9]?)$/.test(v) || Number(v) > 64)
          throw new InvalidArgument('cli.options', '--ecdh-threads: expected an integer in 0..64');
        return Number(v);
      },
    )
    .option(
      '--headers-timeout <ms>',
      "a request's headers must arrive within this (default 10000)",
      positiveInt('--headers-timeout'),
    )
    .option(
      '--request-timeout <ms>',
      'a whole request must arrive within this (default 30000)',
      positiveInt('--request-timeout'),
    )
    .addOption(
      new Option(
        '--dashboard <on|off>',
        'the operator dashboard at /ui/ (default: on when listening on loopback only)',
      ).choices(['on', 'off']),
    )
    .option('--ca-dir <dir>', 'serve the platform CA in this directory at /v1/ca (docs/ca.md)')
    .option(
      '--ca-database <url>',
      "the CA's database when not <ca-dir>/ca.db (postgres://… or sqlite:<file>)",
    )
    .option(
      '--rate-limits <file>',
      'request rate limits, JSON over the defaults: per source on challenge, attest, KBS auth/attest and ' +
        'failed admin authentications, per instance on attest (docs/access.md)',
    )
    .option('--no-rate-limits', 'no request rate limits (e.g. behind a proxy that limits)')
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
  admin-token              the bootstrap admin credential (role admin, every project; --token-file ...);
                           scoped ones: vouchsafe credential create (docs/access.md)
  vouchsafe.db             the SQLite store (unless --database)
Keys in a PKCS#11 token instead (docs/keys.md): --kek and --signing-key take
  'pkcs11:token=LABEL;object=NAME?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/vouchsafe/pin'
(made in the token on first run, never extractable); the PIN comes from the pin-source file (0600) or
VOUCHSAFE_PKCS11_PIN, never from the command line.
The KBS token signing keys (JWKS at /kbs/v0/.well-known/jwks and /.well-known/jwks.json; rotate with
vouchsafe token-keys rotate), KBS sessions and released keys are in the store, under the KEK: replicas on one
--database share them (give each the same kek, broker-signing-key.pem, admin-token and --public-url).
A token-keys.json left in the data directory by an older broker is imported on the first start.

KBS (Trustee RCAR, on unless --no-kbs): POST /kbs/v0/auth, /kbs/v0/attest, GET /kbs/v0/resource/<path>.
Each guest gets its own sealing key at vouchsafe/sealing-key/current (and ${APROXY_RESOURCE_PATH} with
--kbs-aproxy-path); every successful attest starts a boot lease, like any release. Operator secrets:
  DIR/apps/db/password            the secret (mode 0600)
  DIR/resource-policy.json        {"apps/db/password": {"instances": "any", "projects": ["proj-a"],
                                                        "measurements": ["<96 hex>"]}}
A secret without a policy entry is never served; edits take effect at the next request.

Examples:
  vouchsafe serve --listen 0.0.0.0:8443 --data /var/lib/vouchsafe --tls-cert cert.pem --tls-key key.pem
  VOUCHSAFE_DATABASE_URL=postgres://vouchsafe@db/vouchsafe vouchsafe serve --data /var/lib/vouchsafe
  vouchsafe serve --data ./demo --trust-sim-root Milan:<sha256 of the simulator ARK> --no-kds
  vouchsafe serve --public-url https://kbs.example --kbs-aproxy-path --kbs-secrets /etc/vouchsafe/secrets`,
    )
    .action(async (o: ServeOptions) => {
      let running: RunningBroker | undefined;
      try {
        if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
          throw new InvalidArgument('cli.tls', '--tls-cert and --tls-key go together');
        }
        const kbsBase = kbsOptionsOf(o);
        const kbs =
          kbsBase && o.tokenKeysPkcs11 !== undefined
            ? { ...kbsBase, tokenKeysPkcs11: o.tokenKeysPkcs11 }
            : kbsBase;
        const dashboard = dashboardWanted(o.dashboard, o.listen);
        // Before serving: fewer Mark-Compacts in the release latency tail (src/util/collector.ts).
        preferYoungAllocation();
        running = await startBroker({
          ...(dashboard ? { extend: dashboardExtend({}, o.dashboard === 'on') } : {}),
          listen: o.listen,
          dataDir: o.data,
          ...keyOptionsOf(o),
          ...(o.caDir ? { ca: { dir: o.caDir, ...(o.caDatabase ? { database: o.caDatabase } : {}) } } : {}),
          ...(o.database ? { databaseUrl: o.database } : {}),
          trustedRoots: parseTrustedRoots(o.trustSimRoot ?? []),
          kds: o.kds ? { baseUrl: o.kdsUrl, offline: o.kdsOffline ?? false } : 'none',
          ...crlOptionsOf(o),
          kbs,
          ...(o.rateLimits !== undefined ? { rateLimits: rateLimitsOf(o.rateLimits) ?? {} } : {}),
          ...(o.tlsCert && o.tlsKey ? { tls: { certPath: o.tlsCert, keyPath: o.tlsKey } } : {}),
          logger: pino({ name: 'vouchsafe-broker', level: o.logLevel }),
          ...(o.ecdhThreads !== undefined ? { ecdhThreads: o.ecdhThreads } : {}),
          httpLimits: {
            ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
            ...(o.headersTimeout !== undefined ? { headersTimeoutMs: o.headersTimeout } : {}),
            ...(o.requestTimeout !== undefined ? { requestTimeoutMs: o.requestTimeout } : {}),
          },
        });
      } catch (e) {
        process.exitCode = reportError(listenError(e, o.listen), false);
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
          (r.ca ? `  platform CA:        ${r.url}/v1/ca (${r.ca.dir})\n` : '') +
          `  admin token:        ${r.adminTokenPath}\n` +
          `  broker public key:  ${isPkcs11Ref(r.signingKeyPath) ? `${r.url}/v1/broker-key (the key is in the PKCS#11 token)` : `${r.signingKeyPath}.pub`} (pin this in 0.2.0 guests)\n` +
          (r.kbs
            ? `  KBS:                ${r.url}/kbs/v0 (token issuer ${r.kbs.tokens.issuer}; at most ${r.kbs.maxSessions} sessions; resources: ${r.kbs.sealingKeyPaths.join(', ')}${r.kbs.secrets ? ', operator secrets' : ''})\n` +
              `  token keys:         in the store (${r.store.engine}), under the KEK\n`
            : '  KBS:                off\n') +
          (dashboardWanted(o.dashboard, o.listen)
            ? `  dashboard:          ${dashboardUrl(r.url)} (sign in with the admin token)\n`
            : '  dashboard:          off\n'),
      );
      await stopped;
      await r.close();
      process.exitCode = 0;
    });
}

interface TokenKeysOptions {
  broker: string;
  tokenFile: string;
  brokerCa?: string;
  json?: boolean;
}

/** `vouchsafe token-keys rotate`: a new KBS token signing key on a running broker. */
function registerTokenKeys(program: Command): void {
  const tk = program.command('token-keys').description('the KBS token signing keys of a running broker');
  tk.command('rotate')
    .description(
      'make a new token signing key; the old one stays in the JWKS until the tokens it signed have expired',
    )
    .requiredOption('--broker <url>', 'broker base URL (admin API)')
    .requiredOption('--token-file <file>', 'file holding the admin bearer token (<data>/admin-token)')
    .option('--broker-ca <file>', 'CA certificate (PEM) of an https broker')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
The broker stores the new key (in its database, under the KEK) before it signs with it; every replica on
the same database signs with it from its next token (POST /v1/admin/token-keys/rotate).

Example:
  vouchsafe token-keys rotate --broker https://broker:8443 --token-file /var/lib/vouchsafe/admin-token`,
    )
    .action(async (o: TokenKeysOptions) => {
      try {
        const r = await rotateTokenKeyOverHttp({
          url: o.broker,
          token: readTokenFile(o.tokenFile),
          ...(o.brokerCa !== undefined ? { ca: readInput(o.brokerCa, '--broker-ca') } : {}),
        });
        process.stdout.write(
          o.json
            ? `${JSON.stringify(r, null, 2)}\n`
            : `signing key ${r.kid} (${r.alg}); published: ${r.published.join(' ')}\n`,
        );
        process.exitCode = Exit.Ok;
      } catch (e) {
        process.exitCode = reportError(e, o.json ?? false);
      }
    });
}

/**
 * A listen that fails for a reason of the machine (port taken, not allowed, no such address) is the operator's
 * to fix, not a bug: it is reported as `cli.listen` with the address, without a stack trace.
 */
function listenError(e: unknown, listen: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const why: Record<string, string> = {
    EADDRINUSE: 'the address is already in use (another broker or service is listening there)',
    EACCES: 'not permitted (a port below 1024 needs privileges)',
    EADDRNOTAVAIL: 'no interface of this machine has that address',
  };
  if (code === undefined || !(code in why)) return e;
  return new InvalidArgument('cli.listen', `cannot listen on ${listen}: ${why[code]}`);
}
