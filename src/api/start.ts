import type { KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type Logger, pino } from 'pino';
import { Broker } from '../broker/broker.js';
import { openFileKek } from '../broker/kek.js';
import { KdsClient } from '../collateral/kds-client.js';
import { InvalidArgument } from '../errors.js';
import { SnpVerifier, type TrustedRoot } from '../evidence/snp/index.js';
import type { SnpReport } from '../formats/snp/index.js';
import { appraiseSnp, parseSnpPolicy, type SnpPolicy } from '../policy/snp/index.js';
import { openPostgresStore } from '../store/postgres.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import { openAdminToken, openSigningKey } from './broker-keys.js';
import type { KbsDeps } from './kbs/index.js';
import { parseHostPort } from './listen-address.js';
import { Metrics } from './metrics.js';
import { buildBrokerServer } from './server.js';
import { createSnpEvidenceVerifier } from './snp-evidence.js';

/** Everything a KBS wiring needs from a started broker (see StartBrokerOptions.kbs). */
export interface KbsContext {
  readonly broker: Broker;
  readonly store: Store;
  readonly verifier: SnpVerifier;
  readonly trustedRoots: readonly TrustedRoot[];
  readonly dataDir: string;
  readonly url: string;
}

export interface StartBrokerOptions {
  /** `HOST:PORT` (port 0: a free port; see RunningBroker.url). */
  readonly listen: string;
  /** Holds the KEK, the signing key, the admin token, the SQLite database and the KDS cache. Default `./vouchsafe-data`. */
  readonly dataDir?: string;
  /** `postgres://...`: use PostgreSQL instead of SQLite under dataDir. */
  readonly databaseUrl?: string;
  /** Default `<dataDir>/kek` (created on first run, 0600). */
  readonly kekPath?: string;
  /** Default `<dataDir>/broker-signing-key.pem` (created on first run, 0600; public key at `<path>.pub`). */
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
  /** `'kds'`: check the chain's CRL from KDS; `'none'` (default): revocation is not checked (logged at start). */
  readonly crl?: 'kds' | 'none';
  /** Serve HTTPS with these PEM files. */
  readonly tls?: { readonly certPath: string; readonly keyPath: string };
  readonly logger?: Logger;
  readonly challengeTtlMs?: number;
  readonly leaseMs?: number;
  readonly now?: () => number;
  readonly bodyLimit?: number;
  /**
   * Builds the Trustee KBS routes' dependencies (src/api/kbs: broker adapter, EAR tokens) for this broker;
   * the routes are served only when given.
   */
  readonly kbs?: (ctx: KbsContext) => KbsDeps | Promise<KbsDeps>;
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
  /** Stops listening (in-flight requests finish) and closes the store. */
  close(): Promise<void>;
}

/**
 * Starts a broker: opens the store (SQLite `<dataDir>/vouchsafe.db`, created on first run, or PostgreSQL
 * when `databaseUrl` is given), the KEK file, the response-signing key and the admin token (each created
 * 0600 on first run), builds the Broker with the real SNP verifier (src/evidence/snp; certificate table
 * first, then AMD KDS) and the real appraiser (src/policy/snp appraiseSnp), and listens.
 *
 * Throws InvalidArgument (`api.listen`, `broker.kek.*`, `api.signing_key.*`, `api.admin_token.*`,
 * `store.location`) for unusable configuration.
 */
export async function startBroker(opts: StartBrokerOptions): Promise<RunningBroker> {
  const { host, port } = parseHostPort(opts.listen);
  const dataDir = resolve(opts.dataDir ?? 'vouchsafe-data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logger = opts.logger ?? pino({ name: 'vouchsafe-broker' });
  const now = opts.now ?? Date.now;
  const trustedRoots = opts.trustedRoots ?? [];

  const kek = openFileKek(opts.kekPath ?? join(dataDir, 'kek'));
  const signingKeyPath = opts.signingKeyPath ?? join(dataDir, 'broker-signing-key.pem');
  const { privateKey, publicKey } = openSigningKey(signingKeyPath);
  const adminTokenPath = opts.adminTokenPath ?? join(dataDir, 'admin-token');
  const adminToken = openAdminToken(adminTokenPath);
  const tls = opts.tls && { key: readFileSync(opts.tls.keyPath), cert: readFileSync(opts.tls.certPath) };

  const store = await openStoreFor(opts.databaseUrl, dataDir);
  try {
    const kdsOpts = opts.kds ?? {};
    const kds =
      kdsOpts === 'none' || kdsOpts instanceof KdsClient
        ? kdsOpts
        : new KdsClient({
            ...(kdsOpts.baseUrl ? { baseUrl: kdsOpts.baseUrl } : {}),
            cacheDir: kdsOpts.cacheDir ?? join(dataDir, 'kds-cache'),
            offline: kdsOpts.offline ?? false,
            now,
          });
    const crl = opts.crl ?? 'none';
    if (crl === 'none') logger.warn({ event: 'crl_off' }, 'AMD CRLs are not checked (crl: none)');
    const verifier = new SnpVerifier();
    const broker = new Broker({
      store,
      kek,
      verifyEvidence: createSnpEvidenceVerifier({ verifier, trustedRoots, kds, crl, now }),
      appraise: (report: SnpReport, product, policy) =>
        appraiseSnp(report, product, policy as unknown as SnpPolicy).failures,
      now,
      ...(opts.challengeTtlMs !== undefined ? { challengeTtlMs: opts.challengeTtlMs } : {}),
      ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
      onAuditFailure: (err) => logger.error({ event: 'audit_failed', err }, 'a refusal could not be audited'),
    });
    const scheme = tls ? 'https' : 'http';
    const metrics = new Metrics();
    // The KBS routes need the URL as their token issuer before the port is known: use the requested one.
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const kbs = opts.kbs
      ? await opts.kbs({
          broker,
          store,
          verifier,
          trustedRoots,
          dataDir,
          url: `${scheme}://${urlHost}:${port}`,
        })
      : undefined;
    const app = buildBrokerServer({
      broker,
      signingKey: privateKey,
      adminToken,
      logger,
      checkPolicy: (p) => void parseSnpPolicy(p),
      health: () => store.auditHead(),
      metrics,
      ...(opts.bodyLimit !== undefined ? { bodyLimit: opts.bodyLimit } : {}),
      ...(tls ? { https: tls } : {}),
      ...(kbs ? { kbs } : {}),
    });
    await app.listen({ host, port });
    const addr = app.server.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    const url = `${scheme}://${urlHost}:${bound}`;
    logger.info({ event: 'broker_listening', url, engine: store.engine }, 'broker listening');
    let closed: Promise<void> | undefined;
    return {
      url,
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
      close() {
        closed ??= (async () => {
          try {
            await app.close();
          } finally {
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

/** SQLite under `dataDir`, or PostgreSQL for a `postgres://` URL. */
export function openStoreFor(databaseUrl: string | undefined, dataDir: string): Promise<Store> {
  if (databaseUrl === undefined) return openSqliteStore({ dataDir });
  if (!/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new InvalidArgument(
      'store.location',
      'the database URL must be postgres://... or postgresql://...',
    );
  }
  return openPostgresStore({ connectionString: databaseUrl });
}
