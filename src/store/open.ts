import { InvalidArgument } from '../errors.js';
import { openPostgresStore } from './postgres.js';
import { openSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/**
 * Opens a store from a location string: `postgres://...` / `postgresql://...` (PostgreSQL) or
 * `sqlite:<file>` (SQLite). Throws InvalidArgument `store.location` for anything else.
 */
export function openStore(location: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(location)) return openPostgresStore({ connectionString: location });
  if (location.startsWith('sqlite:')) return openSqliteStore({ path: location.slice('sqlite:'.length) });
  throw new InvalidArgument('store.location', 'store location must be postgres://... or sqlite:<file>');
}
