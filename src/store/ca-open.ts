import { InvalidArgument } from '../errors.js';
import { openPostgresCaRepository } from './ca-postgres.js';
import { openSqliteCaRepository } from './ca-sqlite.js';
import type { CaRepository } from './ca-types.js';

/**
 * Opens the platform CA's repository from a location string, as {@link openStore} does for the broker:
 * `postgres://...` / `postgresql://...` (PostgreSQL) or `sqlite:<file>` (SQLite). The CA's tables may
 * share the broker's database (one CA per database). Throws InvalidArgument `store.location` for anything
 * else.
 */
export function openCaRepository(location: string): Promise<CaRepository> {
  if (/^postgres(ql)?:\/\//.test(location)) return openPostgresCaRepository({ connectionString: location });
  if (location.startsWith('sqlite:'))
    return openSqliteCaRepository({ path: location.slice('sqlite:'.length) });
  throw new InvalidArgument('store.location', 'store location must be postgres://... or sqlite:<file>');
}
