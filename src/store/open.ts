import { InvalidArgument } from '../errors.js';
import { openPostgresStore } from './postgres.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/**
 * Where a store lives: a location string (`postgres://...` / `postgresql://...` for PostgreSQL,
 * `sqlite:<file>` for SQLite), or a broker's data directory, whose SQLite database is `<dataDir>/vouchsafe.db`
 * (directory created 0700), unless `databaseUrl` names another location.
 */
export type StoreLocation = string | { readonly dataDir: string; readonly databaseUrl?: string | undefined };

/**
 * The one store opener (broker start, local admin, tests). Throws InvalidArgument `store.location` for a
 * location that is neither PostgreSQL nor SQLite.
 */
export function openStore(location: StoreLocation): Promise<Store> {
  if (typeof location !== 'string') {
    if (location.databaseUrl === undefined) return openSqliteStore({ dataDir: location.dataDir });
    return openStore(location.databaseUrl);
  }
  if (/^postgres(ql)?:\/\//.test(location)) return openPostgresStore({ connectionString: location });
  if (location.startsWith('sqlite:')) return openSqliteStore({ path: location.slice('sqlite:'.length) });
  throw new InvalidArgument('store.location', 'store location must be postgres://... or sqlite:<file>');
}
