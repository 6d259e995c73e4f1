import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { challengeConnectionString } from '../../src/store/postgres.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * The challenge pool's sessions commit with synchronous_commit off (src/store/postgres.ts), set as a startup
 * parameter beside whatever the store's URL already sets (the tests' schemas are chosen by search_path there).
 */
let server: TestPostgres;
let url: string;

before(async () => {
  server = await startTestPostgres();
  url = await server.createSchema();
});
after(async () => {
  await server?.stop();
});

test('the option is added after the URL options already there; a string that is not a URL is kept', () => {
  const u = new URL(
    challengeConnectionString('postgres://h/db?options=-c%20search_path%3Ds1&sslmode=disable'),
  );
  assert.equal(u.searchParams.get('options'), '-c search_path=s1 -c synchronous_commit=off');
  assert.equal(u.searchParams.get('sslmode'), 'disable');
  assert.equal(
    new URL(challengeConnectionString('postgres://h/db')).searchParams.get('options'),
    '-c synchronous_commit=off',
  );
  assert.equal(challengeConnectionString('host=/tmp dbname=x'), 'host=/tmp dbname=x');
});

test("a session of the challenge pool has synchronous_commit off and keeps the store's search_path", async () => {
  const store = new pg.Pool({ connectionString: url, max: 1 });
  const challenges = new pg.Pool({ connectionString: challengeConnectionString(url), max: 1 });
  try {
    const show = async (p: pg.Pool, what: string) => (await p.query(`SHOW ${what}`)).rows[0][what] as string;
    assert.equal(await show(challenges, 'synchronous_commit'), 'off');
    assert.equal(await show(store, 'synchronous_commit'), 'on');
    assert.equal(await show(challenges, 'search_path'), await show(store, 'search_path'));
  } finally {
    await Promise.all([store.end(), challenges.end()]);
  }
});
