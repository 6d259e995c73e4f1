import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { Broker } from '../broker/broker.js';
import { type KekSource, openFileKek } from '../broker/kek.js';
import {
  AttestationError,
  CollateralUnavailable,
  type ErrorCode,
  InvalidArgument,
  NotSupported,
  type PolicyFailure,
  PolicyRejected,
} from '../errors.js';
import { parseSnpPolicy } from '../policy/snp/index.js';
import type { JsonValue, Store } from '../store/types.js';
import { instanceJson } from './codec.js';
import { openStoreFor } from './start.js';

/** An instance as the admin API returns it (HOST_DATA hex, times in ms). */
export type InstanceJson = ReturnType<typeof instanceJson> & {
  keyVersions?: { version: number; createdAt: number; kekId: string }[];
};

export interface RegisterInput {
  readonly project: string;
  readonly zone: string;
  readonly instanceId: string;
  readonly instanceName: string;
  readonly policy: unknown;
}

export interface AuditEntryJson {
  readonly seq: number;
  readonly time: number;
  readonly kind: string;
  readonly instance: string | null;
  readonly decision: 'accept' | 'refuse';
  readonly reasons: readonly string[];
  readonly evidenceDigest: string | null;
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
  readonly prevHash: string;
  readonly hash: string;
}

export type AuditVerificationJson =
  | { readonly ok: true; readonly entries: number; readonly headHash: string }
  | { readonly ok: false; readonly entries: number; readonly seq: number; readonly problem: string };

/**
 * The control plane's operations, over the admin HTTP API ({@link httpAdmin}) or directly on a broker's
 * data directory / database ({@link localAdmin}); the `vouchsafe instance` and `vouchsafe audit` commands
 * use either. Failures are AttestationErrors with the broker's code and reason.
 */
export interface AdminApi {
  register(r: RegisterInput): Promise<InstanceJson>;
  list(): Promise<InstanceJson[]>;
  show(id: string): Promise<InstanceJson>;
  setPolicy(id: string, policy: unknown): Promise<void>;
  rotateKey(id: string): Promise<{ keyVersion: number }>;
  resetBoot(id: string, note?: string): Promise<{ hadActiveBoot: boolean }>;
  readAudit(after: number, limit: number): Promise<{ entries: AuditEntryJson[]; next: number | null }>;
  verifyAudit(): Promise<AuditVerificationJson>;
  close(): Promise<void>;
}

export interface HttpAdminOptions {
  /** The broker's base URL, e.g. https://broker.example:8443 */
  readonly url: string;
  readonly token: string;
  /** PEM CA for an https broker. */
  readonly ca?: string | Uint8Array;
  readonly timeoutMs?: number;
}

/** Largest admin reply read (an audit page of 1000 entries is well under this). */
const MAX_ADMIN_REPLY = 8 << 20;

/**
 * One admin API call over HTTP(S) with the bearer token: resolves with the JSON of a 2xx answer, rejects
 * with the broker's typed error otherwise. Throws InvalidArgument `admin.url`; transport failures are
 * CollateralUnavailable `admin.unreachable` / `admin.bad_response`.
 */
export function adminCaller(
  o: HttpAdminOptions,
): <T>(method: string, path: string, body?: unknown) => Promise<T> {
  let base: URL;
  try {
    base = new URL(o.url);
  } catch {
    throw new InvalidArgument('admin.url', `not a URL: ${o.url}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new InvalidArgument('admin.url', 'the broker URL must be http(s)://...');
  }
  const prefix = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
  return <T>(method: string, path: string, body?: unknown): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
      const url = new URL(`${prefix}${path}`);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        url,
        {
          method,
          timeout: o.timeoutMs ?? 30_000,
          ...(o.ca !== undefined ? { ca: Buffer.from(o.ca) } : {}),
          headers: {
            authorization: `Bearer ${o.token}`,
            accept: 'application/json',
            ...(payload
              ? { 'content-type': 'application/json', 'content-length': payload.length }
              : { 'content-length': 0 }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_ADMIN_REPLY) req.destroy(new Error('reply too large'));
            else chunks.push(c);
          });
          res.on('error', () =>
            reject(new CollateralUnavailable('admin.unreachable', 'connection to the broker failed')),
          );
          res.on('end', () => {
            let json: unknown;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              reject(
                new CollateralUnavailable(
                  'admin.bad_response',
                  `the broker answered HTTP ${res.statusCode} without JSON`,
                ),
              );
              return;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(json as T);
            else reject(errorFromBody(status, json));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) =>
        reject(
          new CollateralUnavailable('admin.unreachable', `cannot reach ${prefix}: ${e.code ?? e.message}`),
        ),
      );
      req.end(payload);
    });
}

/** The admin API over HTTP(S). Transport failures: CollateralUnavailable `admin.unreachable` / `admin.bad_response`. */
export function httpAdmin(o: HttpAdminOptions): AdminApi {
  const call = adminCaller(o);
  const id = (s: string) => encodeURIComponent(s);
  return {
    register: (r) => call('POST', '/v1/admin/instances', r),
    list: async () => (await call<{ instances: InstanceJson[] }>('GET', '/v1/admin/instances')).instances,
    show: (i) => call('GET', `/v1/admin/instances/${id(i)}`),
    setPolicy: async (i, policy) => {
      await call('PUT', `/v1/admin/instances/${id(i)}/policy`, { policy });
    },
    rotateKey: (i) => call('POST', `/v1/admin/instances/${id(i)}/rotate-key`),
    resetBoot: (i, note) =>
      call('POST', `/v1/admin/instances/${id(i)}/reset-boot`, note === undefined ? {} : { note }),
    readAudit: (after, limit) => call('GET', `/v1/admin/audit?after=${after}&limit=${limit}`),
    verifyAudit: () => call('GET', '/v1/admin/audit/verify'),
    close: async () => {},
  };
}

function errorFromBody(status: number, body: unknown): AttestationError {
  const b = body as { code?: unknown; reason?: unknown; message?: unknown; failures?: unknown };
  if (typeof b?.code === 'string' && typeof b.reason === 'string') {
    if (Array.isArray(b.failures)) return new PolicyRejected(b.failures as PolicyFailure[]);
    return new AttestationError(b.code as ErrorCode, b.reason, String(b.message ?? `HTTP ${status}`));
  }
  return new CollateralUnavailable('admin.bad_response', `the broker answered HTTP ${status}`);
}

export interface LocalAdminOptions {
  readonly dataDir: string;
  /** PostgreSQL URL; default the SQLite database in dataDir. */
  readonly databaseUrl?: string;
  /** Default `<dataDir>/kek`; needed only to rotate keys. */
  readonly kekPath?: string;
}

/**
 * The same operations directly on a broker's store (SQLite in `dataDir`, or PostgreSQL), e.g. before the
 * first `serve` with PostgreSQL or without network access to the broker. Every operation is decided and
 * audited by the Broker exactly as over HTTP. Refuses a data directory without a database
 * (InvalidArgument `admin.data_dir`), so a mistyped path does not silently create an empty registry.
 */
export async function localAdmin(o: LocalAdminOptions): Promise<AdminApi> {
  if (o.databaseUrl === undefined && !existsSync(join(o.dataDir, 'vouchsafe.db'))) {
    throw new InvalidArgument(
      'admin.data_dir',
      `no broker database in ${o.dataDir} (start the broker once with --data ${o.dataDir}, or pass --database)`,
    );
  }
  const store: Store = await openStoreFor(o.databaseUrl, o.dataDir);
  const kekPath = o.kekPath ?? join(o.dataDir, 'kek');
  let kek: KekSource | undefined;
  const lazyKek: KekSource = {
    get id() {
      kek ??= openFileKek(kekPath, { create: false });
      return kek.id;
    },
    encrypt: (p, a) => {
      kek ??= openFileKek(kekPath, { create: false });
      return kek.encrypt(p, a);
    },
    decrypt: (w, a) => {
      kek ??= openFileKek(kekPath, { create: false });
      return kek.decrypt(w, a);
    },
  };
  const broker = new Broker({
    store,
    kek: lazyKek,
    // This broker handle only administers: it never releases, so it refuses evidence outright.
    verifyEvidence: () =>
      Promise.reject(new NotSupported('admin.local_release', 'local admin does not release keys')),
    appraise: () => [{ code: 'admin.local_release', message: 'local admin does not release keys' }],
  });
  const show = async (id: string): Promise<InstanceJson> => {
    const v = await broker.getInstance(id);
    if (!v) throw new InvalidArgument('broker.instance_not_found', `no instance ${id}`);
    return { ...instanceJson(v), keyVersions: await broker.keyVersions(v.id) };
  };
  return {
    register: async (r) => {
      parseSnpPolicy(r.policy);
      return instanceJson(await broker.registerInstance({ ...r, policy: r.policy as JsonValue }));
    },
    list: async () => (await broker.listInstances()).map(instanceJson),
    show,
    setPolicy: async (id, policy) => {
      parseSnpPolicy(policy);
      await broker.setInstancePolicy(id, policy as JsonValue);
    },
    rotateKey: (id) => broker.rotateKey(id),
    resetBoot: (id, note) => broker.resetBoot(id, note),
    readAudit: async (after, limit) => {
      const entries = (await broker.readAudit(after, limit)) as AuditEntryJson[];
      return { entries, next: entries.length === limit ? entries[entries.length - 1]!.seq : null };
    },
    verifyAudit: () => broker.verifyAuditChain(),
    close: () => store.close(),
  };
}

/** Reads a token file (first line, trimmed). Throws InvalidArgument `admin.token_file`. */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch {
    throw new InvalidArgument('admin.token_file', `cannot read the token file ${path}`);
  }
  const token = text.split('\n')[0]!.trim();
  if (!/^[\x21-\x7e]{32,256}$/.test(token)) {
    throw new InvalidArgument('admin.token_file', `${path} does not hold an admin token`);
  }
  return token;
}
