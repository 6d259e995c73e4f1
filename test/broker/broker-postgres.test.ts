import pg from 'pg';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { runBrokerSuite } from './suite.js';

let server: TestPostgres | undefined;

async function withClient<T>(location: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: location });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

runBrokerSuite({
  engine: 'postgres',
  async setup() {
    server = await startTestPostgres();
  },
  async teardown() {
    await server?.stop();
  },
  async fresh() {
    if (!server) throw new Error('PostgreSQL was not started');
    return server.createSchema();
  },
  async tamper(location, sql) {
    await withClient(location, (c) => c.query(`SET session_replication_role = replica; ${sql}`));
  },
  async query(location, sql) {
    return withClient(location, async (c) => (await c.query(sql)).rows);
  },
});
