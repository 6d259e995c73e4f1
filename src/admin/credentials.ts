import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runAsActor } from '../broker/actor.js';
import {
  type CreateCredentialRequest,
  type CreatedCredential,
  type CredentialView,
  createCredential,
  revokeCredential,
  viewOf,
} from '../broker/credentials.js';
import { InvalidArgument } from '../errors.js';
import { openStore } from '../store/open.js';
import {
  CreatedCredential as CreatedSchema,
  CredentialList,
  CredentialView as ViewSchema,
} from '../wire/credentials.js';
import { adminCaller, type HttpAdminOptions } from './http.js';

/**
 * Admin credentials (docs/access.md) over the admin API or directly on a data directory, as the other
 * admin operations (admin/http.ts, admin/local.ts). `vouchsafe credential` uses either.
 */
export interface CredentialAdmin {
  /** The token is in the answer only: it is never stored and cannot be shown again. */
  create(r: CreateCredentialRequest): Promise<CreatedCredential>;
  list(): Promise<CredentialView[]>;
  revoke(id: string): Promise<CredentialView>;
  close(): Promise<void>;
}

/** Over HTTP (POST/GET /v1/admin/credentials, POST /v1/admin/credentials/:id/revoke); errors as adminCaller. */
export function httpCredentials(o: HttpAdminOptions): CredentialAdmin {
  const { call, close } = adminCaller(o);
  return {
    create: async (r) => (await call('POST', '/v1/admin/credentials', CreatedSchema, r)) as CreatedCredential,
    list: async () =>
      (await call('GET', '/v1/admin/credentials', CredentialList)).credentials as CredentialView[],
    revoke: async (id) =>
      (await call(
        'POST',
        `/v1/admin/credentials/${encodeURIComponent(id)}/revoke`,
        ViewSchema,
      )) as CredentialView,
    close: async () => close(),
  };
}

/**
 * On the broker's store directly (the data directory's SQLite, or PostgreSQL): e.g. the first scoped
 * credentials before the broker is exposed. Audited with the actor `local` (whoever can read the data
 * directory is already everything the broker is). InvalidArgument `admin.data_dir` for a directory
 * without a database.
 */
export async function localCredentials(o: {
  dataDir: string;
  databaseUrl?: string;
}): Promise<CredentialAdmin> {
  if (o.databaseUrl === undefined && !existsSync(join(o.dataDir, 'vouchsafe.db'))) {
    throw new InvalidArgument(
      'admin.data_dir',
      `no broker database in ${o.dataDir} (start the broker once with --data ${o.dataDir}, or pass --database)`,
    );
  }
  const store = await openStore({ dataDir: o.dataDir, databaseUrl: o.databaseUrl });
  const local = <T>(fn: () => Promise<T>) => runAsActor({ actor: 'local', audited: false }, fn);
  return {
    create: (r) => local(() => createCredential(store, r, Date.now())),
    list: async () => (await store.listCredentials()).map(viewOf),
    revoke: (id) => local(() => revokeCredential(store, id, Date.now())),
    close: () => store.close(),
  };
}
