/**
 * PostgreSQL for tests. With DATABASE_URL set, databases are created on that server. Without it, a
 * throwaway cluster is started for this test process: initdb into a temp dir, pg_ctl start on a free
 * 127.0.0.1 port with fsync on, and stopped and deleted afterwards (also on process exit). As root,
 * initdb/pg_ctl run as the `postgres` user (initdb refuses root). Missing binaries fail the test with the
 * Debian package to install; a server already listening on 5432 is never used.
 *
 * Each `createDatabase()` returns a fresh, empty database; `createSchema()` a fresh, empty schema (in one
 * database per test process), selected through the standard `options=-c search_path=...` URL parameter.
 * Creating a database costs ~250 ms with fsync on, a schema ~1 ms: tests that want a clean store each
 * use a schema. Test files do not share state either way.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** A new, empty database; returns its connection URL. */
  createDatabase(): Promise<string>;
  /** A new, empty schema in this process's test database; returns a URL that selects it. */
  createSchema(): Promise<string>;
  /** Drops the databases created here (DATABASE_URL) or stops and deletes the throwaway cluster. */
  stop(): Promise<void>;
  /**
   * Restarts the throwaway cluster (`pg_ctl restart -m fast -w`: open sessions are terminated, the server
   * is back on the same port when this resolves); undefined with DATABASE_URL (not our server to restart).
   * With `whileDown`: `pg_ctl stop -m fast -w`, then `whileDown()`, then `pg_ctl start -w`, so that what the
   * test waits for in `whileDown` happens while the server is certainly gone.
   */
  readonly restart?: (whileDown?: () => Promise<unknown>) => Promise<void>;
}

const MISSING =
  'PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package postgresql';

export async function startTestPostgres(opts: { readonly ownCluster?: boolean } = {}): Promise<TestPostgres> {
  const external = opts.ownCluster ? undefined : process.env.DATABASE_URL;
  return external ? onServer(external, undefined) : startCluster();
}

async function onServer(
  adminUrl: string,
  onStop: (() => void) | undefined,
  restart?: () => Promise<void>,
): Promise<TestPostgres> {
  const created: string[] = [];
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  let shared: Promise<string> | undefined;
  const t: TestPostgres = {
    ...(restart ? { restart } : {}),
    async createDatabase() {
      const name = `vouchsafe_test_${randomBytes(6).toString('hex')}`;
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      created.push(name);
      const u = new URL(adminUrl);
      u.pathname = `/${name}`;
      return u.toString();
    },
    async createSchema() {
      shared ??= t.createDatabase();
      const db = await shared;
      const schema = `s_${randomBytes(6).toString('hex')}`;
      const c = new pg.Client({ connectionString: db });
      await c.connect();
      try {
        await c.query(`CREATE SCHEMA ${schema}`);
      } finally {
        await c.end();
      }
      const u = new URL(db);
      u.searchParams.set('options', `-c search_path=${schema}`);
      return u.toString();
    },
    async stop() {
      if (onStop) {
        onStop();
        return;
      }
      await admin(async (c) => {
        for (const name of created) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
    },
  };
  return t;
}

function findBinDir(): string {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const candidates: string[] = [];
  if (onPath.status === 0 && onPath.stdout.trim()) candidates.push(join(onPath.stdout.trim(), '..'));
  const lib = '/usr/lib/postgresql';
  if (existsSync(lib)) {
    const versions = readdirSync(lib)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(join(lib, v, 'bin'));
  }
  for (const dir of candidates) {
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  throw new Error(MISSING);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function startCluster(): Promise<TestPostgres> {
  const bin = findBinDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-pg-'));
  const data = join(dir, 'data');
  const run = (tool: string, args: string[]) => {
    const cmd = join(bin, tool);
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
    return execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  };
  if (asRoot) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (ids.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`running as root but there is no postgres user: ${MISSING}`);
    }
    chownSync(dir, Number(ids.stdout), Number(gids.stdout));
  }
  // max_connections: a suite holds many stores at once (each up to 10 decision and 4 challenge connections,
  // src/store/postgres.ts) plus child brokers; 100 (the default) was too few.
  const options = (port: number) =>
    `-k ${dir} -p ${port} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=400`;
  let started = false;
  const stopSync = () => {
    if (started) {
      try {
        run('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w']);
      } catch {
        // already stopped
      }
      started = false;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // If the test process dies without calling stop(), do not leave a server running.
  process.once('exit', stopSync);
  try {
    run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C']);
    let lastError: unknown;
    for (let attempt = 0; attempt < 3 && !started; attempt++) {
      const port = await freePort();
      try {
        run('pg_ctl', [
          'start',
          '-w',
          '-t',
          '60',
          '-D',
          data,
          '-l',
          join(dir, 'server.log'),
          '-o',
          options(port),
        ]);
        started = true;
        // Asynchronous, so that this process's own clients see the server go away while it restarts.
        const ctl = (args: string[]) =>
          new Promise<void>((resolve, reject) => {
            const cmd = join(bin, 'pg_ctl');
            const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
            execFile(file, argv, (e, _out, err) =>
              e ? reject(new Error(`pg_ctl ${args[0]} failed: ${err || e.message}`)) : resolve(),
            );
          });
        const log = join(dir, 'server.log');
        const restart = async (whileDown?: () => Promise<unknown>) => {
          if (!whileDown) return ctl(['restart', '-w', '-t', '60', '-m', 'fast', '-D', data, '-l', log]);
          await ctl(['stop', '-w', '-t', '60', '-m', 'fast', '-D', data]);
          try {
            await whileDown();
          } finally {
            await ctl(['start', '-w', '-t', '60', '-D', data, '-l', log, '-o', options(port)]);
          }
        };
        const t = await onServer(
          `postgres://postgres@127.0.0.1:${port}/postgres`,
          () => {
            stopSync();
            process.removeListener('exit', stopSync);
          },
          restart,
        );
        return t;
      } catch (e) {
        lastError = e; // most likely the port was taken between freePort() and start: try another
      }
    }
    throw lastError;
  } catch (e) {
    stopSync();
    process.removeListener('exit', stopSync);
    const err = e as { stderr?: string; message: string };
    throw new Error(`could not start a throwaway PostgreSQL: ${err.stderr || err.message}`);
  }
}
