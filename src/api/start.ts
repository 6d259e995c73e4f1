import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import { Broker } from '../broker/broker.js';
import { nonDecreasingClock } from '../broker/clock.js';
import { openFileKek } from '../broker/kek.js';
import { PlatformCa } from '../ca/platform-ca.js';
import { storeRegistry } from '../ca/registry.js';
import { CrlKeeper } from '../collateral/crl-keeper.js';
import { KdsClient } from '../collateral/kds-client.js';
import { AttestationError, InvalidArgument } from '../errors.js';
import type { TrustedRoot } from '../evidence/snp/index.js';
import { type BrokerKbs, type KbsServeOptions, openBrokerKbs } from '../kbs/index.js';
import { isPkcs11Ref, pkcs11Keys } from '../keys/provider.js';
import { parseSnpPolicy } from '../policy/snp/index.js';
import { createTeeVerifier, type TdxTeeConfig, type VerifyEvidence } from '../policy/tees.js';
import { openCaRepository } from '../store/ca-open.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';
import { ensurePrivateFile, openPrivateDir } from '../util/private-dir.js';
import { openAdminToken, openSigningKey, tokenSigningKey } from './broker-keys.js';
import type { HttpLimits } from './http-limits.js';
import { parseHostPort } from './listen-address.js';
import { Metrics } from './metrics.js';
import { type RateLimitConfig, RateLimits } from './rate-limits.js';
import type { RefusalLimitOptions } from './refusal-limiter.js';
import { buildBrokerServer } from './server.js';

/** The KBS a started broker serves (RunningBroker.kbs): tokens, key ring, adapter, rotation. */
export type KbsContext = BrokerKbs;

export interface StartBrokerOptions {
  /** `HOST:PORT` (port 0: a free port; see RunningBroker.url). */
  readonly listen: string;
  /**
   * How TDX quotes are verified (collateral source, extra roots): without it every TDX quote is refused
   * `api.collateral.tdx_unconfigured` (src/policy/tees.ts).
   */
  readonly tdx?: TdxTeeConfig;
  /** Holds the KEK, the signing key, the admin token, the SQLite database and the KDS cache. Default `./vouchsafe-data`. */
  readonly dataDir?: string;
  /** `postgres://...`: use PostgreSQL instead of SQLite under dataDir. */
  readonly databaseUrl?: string;
  /**
   * Default `<dataDir>/kek` (created on first run, 0600). A `pkcs11:` URI names an AES-256 key in a PKCS#11
   * token instead (generated there on first run, not extractable; docs/keys.md).
   */
  readonly kekPath?: string;
  /**
   * Default `<dataDir>/broker-signing-key.pem` (created on first run, 0600; public key at `<path>.pub`). A
   * `pkcs11:` URI names a P-384 key pair in a PKCS#11 token instead (generated there on first run).
   */
  readonly signingKeyPath?: string;
  /** Default `<dataDir>/admin-token` (created on first run, 0600). */
  readonly adminTokenPath?: string;
  /** Roots trusted besides AMD's pinned ARKs, e.g. the simulator's. */
  readonly trustedRoots?: readonly TrustedRoot[];
  /**
   * AMD KDS for certificates a report's table lacks (a real SVSM sends none): `'none'`, a client, or client
   * options. Default: https://kdsintf.amd.com with an on-disk cache in `<dataDir>/kds-cache`.
   */
  readonly kds?:
    | 'none'
    | KdsClient
    | { readonly baseUrl?: string; readonly offline?: boolean; readonly cacheDir?: string };
  /**
   * `'kds'` (the default when a KDS client is configured): check the chain's CRL (ASK/ASVK revocation) from
   * KDS through the cache, refreshed in the background before its nextUpdate; `'none'` (the default with
   * `kds: 'none'`): revocation is not checked, logged at warn at start.
   */
  readonly crl?: 'kds' | 'none';
  /**
   * How long past its nextUpdate a CRL is still accepted while no fresher one can be fetched (ms). Default 0:
   * a stale CRL is refused `ERR_COLLATERAL_UNAVAILABLE api.collateral.crl_stale`.
   */
  readonly crlGraceMs?: number;
  /** Background CRL refresh: how long before nextUpdate (default 24 h). */
  readonly crlRefreshLeadMs?: number;
  /** Serve HTTPS with these PEM files. */
  readonly tls?: { readonly certPath: string; readonly keyPath: string };
  readonly logger?: Logger;
  readonly challengeTtlMs?: number;
  readonly leaseMs?: number;
  readonly now?: () => number;
  readonly bodyLimit?: number;
  /**
   * HTTP socket deadlines and the connection cap (src/api/http-limits.ts; defaults: headers 10 s, request
   * 30 s, idle socket 60 s, keep-alive 5 s, 1 000 requests a socket, 512 connections).
   */
  readonly httpLimits?: Partial<HttpLimits>;
  /** Worker threads for the releases' P-521 ECDH (BrokerServerOptions.ecdhThreads; 0: the event loop). */
  readonly ecdhThreads?: number;
  /**
   * The Trustee KBS protocol (docs/kbs.md): on by default (`true` or options), `false` to serve only the
   * native and admin APIs. On, the broker serves /kbs/v0/* and the token JWKS (also at
   * /.well-known/jwks.json), keeps its token signing keys, sessions and released keys in the store under the
   * KEK (shared by replicas on one database; docs/broker.md "Running several replicas") and offers
   * POST /v1/admin/token-keys/rotate.
   */
  readonly kbs?: boolean | KbsServeOptions;
  /**
   * Request rate limits over DEFAULT_RATE_LIMITS (src/api/rate-limits.ts; docs/access.md), `false` for
   * none: per source on challenge, attest, KBS auth/attest and failed admin authentications, per instance
   * on every release.
   */
  readonly rateLimits?: RateLimitConfig | false;
  /**
   * Serve the platform CA in `dir` (docs/ca.md "The CA as a service"): /v1/ca/* with the broker's registry
   * as the CA's instance lookup and the broker's AMD KDS client for report certificates. `database`: the
   * CA's database when it is not `ca.db` in `dir` (`postgres://…` or `sqlite:<file>`, e.g. the broker's).
   */
  readonly ca?: {
    readonly dir: string;
    readonly database?: string;
    readonly passphrase?: string;
    /** Requests per caller (src/api/routes-ca.ts; default burst 120, 600 a minute); `false`: none. */
    readonly rateLimit?: RefusalLimitOptions | false;
  };
  /**
   * Adds routes before the server listens, given the broker's parts: how a layer above the API (the
   * operator dashboard, src/web, wired by the CLI) plugs in without the API importing it.
   */
  readonly extend?: (app: FastifyInstance, parts: BrokerParts) => void | Promise<void>;
}

/** What {@link StartBrokerOptions.extend} is given: the running broker's parts, before it listens. */
export interface BrokerParts {
  readonly broker: Broker;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly adminToken: string;
  readonly logger: Logger;
  /** The deployment's evidence verifier (the broker's own: same roots, KDS, CRLs). */
  readonly verifyEvidence: VerifyEvidence;
  /** Whether the server speaks TLS (cookies are then Secure). */
  readonly tls: boolean;
  /** The KDS cache directory, when a KDS client with an on-disk cache is configured. */
  readonly kdsCacheDir: string | undefined;
  readonly crl: CrlKeeper | undefined;
  /** The platform CA this broker serves (`ca` option): the dashboard's certificates page. */
  readonly ca: PlatformCa | undefined;
}

/** Opens the CA a broker serves, on its own database or the one named; KDS for reports without certificates. */
async function openServedCa(
  o: NonNullable<StartBrokerOptions['ca']>,
  kds: KdsClient | undefined,
): Promise<PlatformCa> {
  const repository = o.database === undefined ? undefined : await openCaRepository(o.database);
  try {
    return await PlatformCa.open(o.dir, {
      ...(repository ? { repository } : {}),
      ...(kds ? { snpCollateral: kds } : {}),
      ...(o.passphrase !== undefined ? { passphrase: o.passphrase } : {}),
    });
  } catch (e) {
    await repository?.close();
    throw e;
  }
}

export interface RunningBroker {
  /** e.g. `http://127.0.0.1:40123` */
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  readonly broker: Broker;
  readonly store: Store;
  readonly metrics: Metrics;
  /** What 0.2.0 guests pin (also at `<signingKeyPath>.pub` and GET /v1/broker-key). */
  readonly publicKey: KeyObject;
  readonly signingKeyPath: string;
  readonly adminToken: string;
  readonly adminTokenPath: string;
  readonly dataDir: string;
  /** The KBS (undefined with `kbs: false`). */
  readonly kbs: KbsContext | undefined;
  /** The CRLs in use and their background refresh (undefined when revocation is not checked). */
  readonly crl: CrlKeeper | undefined;
  /** The platform CA this broker serves (`ca` option), else undefined. */
  readonly ca: PlatformCa | undefined;
  /** Stops listening (in-flight requests finish) and closes the store. */
  close(): Promise<void>;
}

/**
 * Starts a broker: opens the store (SQLite `<dataDir>/vouchsafe.db`, created on first run, or PostgreSQL
 * when `databaseUrl` is given), the KEK file, the response-signing key and the admin token (each created
 * 0600 on first run), builds the Broker with the TEE table's verifier and appraiser (src/policy/tees.ts;
 * SEV-SNP through src/evidence/snp verifySnpAttestation: certificate table first, then AMD KDS; the
 * CRL checked by default when KDS is configured, kept fresh by a CrlKeeper) and, unless `kbs: false`, the Trustee KBS on the same Broker (token keys
 * in the store under the KEK; docs/kbs.md "Running it"); then listens.
 *
 * Throws InvalidArgument (`api.listen`, `broker.kek.*`, `api.signing_key.*`, `api.admin_token.*`,
 * `store.location`, `kbs.token_keys.*`, `kbs.secrets.*`) for unusable configuration.
 */
export async function startBroker(opts: StartBrokerOptions): Promise<RunningBroker> {
  const { host, port } = parseHostPort(opts.listen);
  const dataDir = resolve(opts.dataDir ?? 'vouchsafe-data');
  // Refused when group- or world-accessible, like the KEK; the SQLite files are made 0600 before SQLite opens
  // them (it gives -wal and -shm the database's mode).
  openPrivateDir(dataDir, 'broker.data_dir');
  if (opts.databaseUrl === undefined) {
    ensurePrivateFile(join(dataDir, 'vouchsafe.db'));
    for (const f of ['vouchsafe.db-wal', 'vouchsafe.db-shm']) ensurePrivateFile(join(dataDir, f), false);
  }
  const logger = opts.logger ?? pino({ name: 'vouchsafe-broker' });
  const now = opts.now ?? Date.now;
  const trustedRoots = opts.trustedRoots ?? [];

  // A `pkcs11:` URI puts the KEK or the signing key in a PKCS#11 token (src/keys), made there on
  // first run like the files; the PIN comes from the URI's pin-source file or VOUCHSAFE_PKCS11_PIN.
  const kekRef = opts.kekPath ?? join(dataDir, 'kek');
  const kek = isPkcs11Ref(kekRef) ? pkcs11Keys.kek(kekRef, true) : openFileKek(kekRef);
  const signingKeyPath = opts.signingKeyPath ?? join(dataDir, 'broker-signing-key.pem');
  const { privateKey, publicKey } = isPkcs11Ref(signingKeyPath)
    ? tokenSigningKey(signingKeyPath)
    : openSigningKey(signingKeyPath);
  const adminTokenPath = opts.adminTokenPath ?? join(dataDir, 'admin-token');
  const adminToken = openAdminToken(adminTokenPath);
  const tls = opts.tls && { key: readFileSync(opts.tls.keyPath), cert: readFileSync(opts.tls.certPath) };

  const store = await openStore({ dataDir, databaseUrl: opts.databaseUrl });
  try {
    const metrics = new Metrics();
    const kdsOpts = opts.kds ?? {};
    const kds =
      kdsOpts === 'none' || kdsOpts instanceof KdsClient
        ? kdsOpts
        : new KdsClient({
            ...(kdsOpts.baseUrl ? { baseUrl: kdsOpts.baseUrl } : {}),
            cacheDir: kdsOpts.cacheDir ?? join(dataDir, 'kds-cache'),
            offline: kdsOpts.offline ?? false,
            now,
            counters: metrics,
          });
    const crl = opts.crl ?? (kds === 'none' ? 'none' : 'kds');
    if (crl === 'kds' && kds === 'none') throw new TypeError("crl: 'kds' needs a KDS client");
    const grace = opts.crlGraceMs ?? 0;
    if (!Number.isSafeInteger(grace) || grace < 0) {
      throw new InvalidArgument('api.crl_grace', 'crlGraceMs must be a non-negative integer');
    }
    if (crl === 'none') {
      logger.warn(
        { event: 'crl_off' },
        'REVOCATION NOT CHECKED: AMD CRLs are off (crl: none); a revoked ASK/ASVK would still be trusted',
      );
    } else if (grace > 0) {
      logger.warn({ event: 'crl_grace', graceMs: grace }, 'stale AMD CRLs are accepted for a grace period');
    }
    const keeper =
      crl === 'kds' && kds !== 'none'
        ? new CrlKeeper(kds, {
            now,
            ...(opts.crlRefreshLeadMs !== undefined ? { leadMs: opts.crlRefreshLeadMs } : {}),
            onRefreshError: (what, err) =>
              logger.warn(
                {
                  event: 'crl_refresh_failed',
                  ...what,
                  reason: err instanceof AttestationError ? err.reason : 'error',
                },
                'AMD CRL refresh failed; the CRL in hand is used until its nextUpdate',
              ),
          })
        : undefined;
    const tees = createTeeVerifier({
      now,
      snp: {
        trustedRoots,
        ...(keeper ? { getter: keeper } : kds === 'none' ? {} : { getter: kds }),
        checkRevocations: keeper !== undefined,
        ...(keeper && grace > 0 ? { crlGraceMs: grace } : {}),
      },
      ...(opts.tdx ? { tdx: opts.tdx } : {}),
    });
    const rateLimits = opts.rateLimits === false ? undefined : new RateLimits(opts.rateLimits ?? {}, now);
    const broker = new Broker({
      store,
      kek,
      ...(rateLimits ? { admitInstance: rateLimits.admitInstance } : {}),
      verifyEvidence: tees.verifyEvidence,
      appraise: tees.appraise,
      // Decisions (challenge lifetimes, leases, audit times) on a clock that never goes back; certificate
      // validity and token times use the clock as it is (docs/broker.md "When the clock goes backwards").
      now: nonDecreasingClock(now, (step) =>
        logger.warn(
          { event: 'clock_stepped_back', ...step },
          'the clock went backwards; the broker carries on',
        ),
      ),
      ...(opts.challengeTtlMs !== undefined ? { challengeTtlMs: opts.challengeTtlMs } : {}),
      ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
      onAuditFailure: (err) => logger.error({ event: 'audit_failed', err }, 'a refusal could not be audited'),
    });
    const scheme = tls ? 'https' : 'http';
    const urlHost = host.includes(':') ? `[${host}]` : host;
    // The token issuer is the broker's URL, known once it listens (port 0): read when tokens are issued.
    let url: string | undefined;
    const kbsOpts = opts.kbs ?? true;
    const kbs =
      kbsOpts === false
        ? undefined
        : await openBrokerKbs({
            broker,
            store,
            kek,
            dataDir,
            url: () => url ?? `${scheme}://${urlHost}:${port}`,
            now,
            options: kbsOpts === true ? {} : kbsOpts,
          });
    const ca = opts.ca && (await openServedCa(opts.ca, kds === 'none' ? undefined : kds));
    const app = buildBrokerServer({
      broker,
      signingKey: privateKey,
      adminToken,
      store,
      rateLimits: rateLimits ?? false,
      logger,
      checkPolicy: (p) => void parseSnpPolicy(p),
      health: () => store.auditHead(),
      metrics,
      ...(opts.bodyLimit !== undefined ? { bodyLimit: opts.bodyLimit } : {}),
      ...(opts.httpLimits ? { limits: opts.httpLimits } : {}),
      ...(opts.ecdhThreads !== undefined ? { ecdhThreads: opts.ecdhThreads } : {}),
      ...(tls ? { https: tls } : {}),
      ...(kbs ? { kbs: kbs.deps, rotateTokenKey: () => kbs.rotateTokenKey() } : {}),
      ...(ca
        ? {
            ca: {
              ca,
              registry: storeRegistry(store),
              ...(opts.ca?.rateLimit !== undefined ? { rateLimit: opts.ca.rateLimit } : {}),
            },
          }
        : {}),
    });
    await opts.extend?.(app, {
      broker,
      store,
      metrics,
      adminToken,
      logger,
      verifyEvidence: tees.verifyEvidence,
      tls: tls !== undefined,
      kdsCacheDir:
        kdsOpts === 'none' || kdsOpts instanceof KdsClient
          ? undefined
          : (kdsOpts.cacheDir ?? join(dataDir, 'kds-cache')),
      crl: keeper,
      ca,
    });
    await app.listen({ host, port });
    keeper?.start();
    const addr = app.server.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    url = `${scheme}://${urlHost}:${bound}`;
    logger.info(
      {
        event: 'broker_listening',
        url,
        engine: store.engine,
        kbs: kbs ? { issuer: kbs.tokens.issuer, sealingKeyPaths: kbs.sealingKeyPaths } : false,
      },
      'broker listening',
    );
    const boundUrl = url;
    let closed: Promise<void> | undefined;
    return {
      url: boundUrl,
      port: bound,
      app,
      broker,
      store,
      metrics,
      publicKey,
      signingKeyPath,
      adminToken,
      adminTokenPath,
      dataDir,
      kbs,
      crl: keeper,
      ca,
      close() {
        closed ??= (async () => {
          keeper?.stop();
          try {
            await app.close();
          } finally {
            kbs?.close();
            await ca?.close();
            await store.close();
          }
        })();
        return closed;
      },
    };
  } catch (e) {
    await store.close().catch(() => {});
    throw e;
  }
}
