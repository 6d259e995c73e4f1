import assert from 'node:assert/strict';
import { test } from 'node:test';
import type pg from 'pg';
import { MemberConnection } from '../../src/store/pg-member-connection.js';

/**
 * A client that records each statement it is asked to send, and each flush of its socket (an uncork that
 * brings the cork count back to 0). `answer` says how a statement is answered.
 */
function fakeClient(answer: (sql: string) => Promise<unknown> = () => Promise.resolve({ rows: [] })) {
  const log: string[] = [];
  let corked = 0;
  const stream = {
    cork: () => {
      corked++;
    },
    uncork: () => {
      corked--;
      if (corked === 0) log.push('flush');
    },
  };
  const client = {
    connection: { stream },
    query: (sql: string | { text: string }) => {
      const text = typeof sql === 'string' ? sql : sql.text;
      log.push(corked > 0 ? `held ${text}` : `sent ${text}`);
      const p = answer(text);
      p.catch(() => {});
      return p;
    },
  } as unknown as pg.PoolClient;
  return { client, log, corked: () => corked };
}

const refused = (message: string, code: string) =>
  Promise.reject(Object.assign(new Error(message), { code }));

test('the opening statement and the first read leave in one flush', async () => {
  const { client, log, corked } = fakeClient();
  const conn = new MemberConnection(client, 'BEGIN');
  await conn.read('SELECT 1');
  assert.deepEqual(log, ['held BEGIN', 'held SELECT 1', 'flush']);
  assert.equal(corked(), 0);
});

test('after a failed BEGIN no write reaches the server; a read sent behind it reports the BEGIN error', async () => {
  const begin = (sql: string) =>
    sql === 'BEGIN' ? refused('BEGIN refused', '57P01') : Promise.resolve({ rows: [] });
  const { client, log } = fakeClient(begin);
  const conn = new MemberConnection(client, 'BEGIN');
  await assert.rejects(conn.write('UPDATE a SET b = 1'), { message: 'BEGIN refused' });
  await assert.rejects(conn.send('UPDATE a SET b = 2'), { message: 'BEGIN refused' });
  assert.deepEqual(log, ['held BEGIN', 'flush'], 'a write must not run outside the transaction');

  const conn2 = new MemberConnection(client, 'BEGIN');
  await assert.rejects(conn2.read('SELECT 1'), { message: 'BEGIN refused' });
  assert.deepEqual(log.slice(2), ['held BEGIN', 'held SELECT 1', 'flush'], 'the read went out with BEGIN');
});

test('a sent write is held until the next statement that waits; a failure is reported first, by that statement', async () => {
  const { client, log } = fakeClient((sql) =>
    sql.startsWith('UPDATE') ? refused('write refused', '23502') : Promise.resolve({ rows: [{ n: 1 }] }),
  );
  const conn = new MemberConnection(client);
  await conn.send('UPDATE a SET b = NULL');
  await assert.rejects(conn.read('SELECT n'), { code: '23502' });
  assert.deepEqual(log, ['held UPDATE a SET b = NULL', 'held SELECT n', 'flush']);
  await conn.send('UPDATE a SET b = NULL');
  await assert.rejects(conn.answered(), { code: '23502' });
  await conn.answered(); // nothing left unanswered
  assert.deepEqual(log.slice(3), ['held UPDATE a SET b = NULL', 'flush']);
});

test('a held write leaves by the next turn of the event loop even if nothing else is sent', async () => {
  const { client, log, corked } = fakeClient();
  const conn = new MemberConnection(client);
  await conn.send('UPDATE a SET b = 1');
  assert.equal(corked(), 1);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ['held UPDATE a SET b = 1', 'flush']);
  assert.equal(corked(), 0);
});

test('a closed member connection refuses to send, and what it held has left', async () => {
  const { client, log, corked } = fakeClient();
  const conn = new MemberConnection(client, 'SAVEPOINT member');
  conn.close();
  assert.equal(corked(), 0);
  await assert.rejects(conn.read('SELECT 1'), /used after it ended/);
  await assert.rejects(conn.write('UPDATE a SET b = 1'), /used after it ended/);
  assert.deepEqual(log, ['held SAVEPOINT member', 'flush']);
});
