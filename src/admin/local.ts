import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runAsActor } from '../broker/actor.js';
import { Broker } from '../broker/broker.js';
import { type KekSource, openFileKek } from '../broker/kek.js';
import { InvalidArgument, NotSupported } from '../errors.js';
import { checkTeePolicy } from '../policy/tees.js';
import { openStore } from '../store/open.js';
import type { JsonValue } from '../store/types.js';
import { fromHex } from '../util/bytes.js';
import { instanceJson } from '../wire/instance.js';
import type { AdminApi, AuditEntryJson, InstanceJson } from './types.js';

export interface LocalAdminOptions {
  readonly dataDir: string;
  /** PostgreSQL URL; default the SQLite database in dataDir. */
  readonly databaseUrl?: string;
  /** Default `<dataDir>/kek`; needed only to rotate keys. */
  readonly kekPath?: string;
}

/**
 * The admin operations directly on a broker's store (SQLite in `dataDir`, or PostgreSQL), e.g. before the
 * first `serve` with PostgreSQL or without network access to the broker. Every operation is decided and
 * audited by the Broker exactly as over HTTP, and answers with the same JSON (wire/instance.ts). Refuses a
 * data directory without a database (InvalidArgument `admin.data_dir`), so a mistyped path does not
 * silently create an empty registry; `store.location` for an unusable database URL.
 */
export async function localAdmin(o: LocalAdminOptions): Promise<AdminApi> {
  if (o.databaseUrl === undefined && !existsSync(join(o.dataDir, 'vouchsafe.db'))) {
    throw new InvalidArgument(
      'admin.data_dir',
      `no broker database in ${o.dataDir} (start the broker once with --data ${o.dataDir}, or pass --database)`,
    );
  }
  const store = await openStore({ dataDir: o.dataDir, databaseUrl: o.databaseUrl });
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
  // Audited as actor `local` (docs/access.md): whoever can open the data directory acts without a credential.
  const local = <T>(fn: () => Promise<T>): Promise<T> => runAsActor({ actor: 'local', audited: false }, fn);
  return {
    register: async ({ hostData, ...r }) => {
      checkTeePolicy(r.tee ?? 'snp', r.policy);
      return instanceJson(
        await local(() =>
          broker.registerInstance({
            ...r,
            policy: r.policy as JsonValue,
            ...(hostData !== undefined ? { hostData: fromHex(hostData) ?? new Uint8Array(0) } : {}),
          }),
        ),
      );
    },
    list: async () => (await broker.listInstances()).map(instanceJson),
    show,
    setPolicy: async (id, policy) => {
      checkTeePolicy((await broker.getInstance(id))?.tee ?? 'snp', policy);
      await local(() => broker.setInstancePolicy(id, policy as JsonValue));
    },
    setNewLaunch: (id, newLaunch) => local(() => broker.setNewLaunch(id, newLaunch)),
    rotateKey: (id) => local(() => broker.rotateKey(id)),
    resetBoot: (id, note) => local(() => broker.resetBoot(id, note)),
    readAudit: async (after, limit) => {
      const entries = (await broker.readAudit(after, limit)) as AuditEntryJson[];
      return { entries, next: entries.length === limit ? entries[entries.length - 1]!.seq : null };
    },
    verifyAudit: () => broker.verifyAuditChain(),
    close: () => store.close(),
  };
}
