/**
 * The KBS's state in the store (migration 7) on one engine, as two broker replicas see it: two stores
 * opened on one location stand for two replicas on one database. Sessions, held keys and token keys made
 * through one are used through the other; every "once" holds when both try at the same moment; secrets
 * are ciphertext in the database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { AesGcmKek } from '../../src/broker/kek.js';
import { openSharedTokenKeys, StoreGrants, StoreSessions } from '../../src/kbs/index.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { rejectsCode } from '../helpers/assert-error.js';
import type { StoreHarness } from './contract.js';

const kekOf = (seed: number) => new AesGcmKek(new Uint8Array(32).fill(seed));

export function runKbsStateContract(h: StoreHarness): void {
  describe(`KBS state shared by replicas (${h.engine})`, () => {
    const opened: Store[] = [];
    before(async () => {
      await h.setup?.();
    });
    after(async () => {
      for (const s of opened) await s.close();
      await h.teardown?.();
    });

    /** Two stores on one fresh database: replica A and replica B. */
    async function replicas(): Promise<{ location: string; a: Store; b: Store }> {
      const location = await h.fresh();
      const a = await openStore(location);
      const b = await openStore(location);
      opened.push(a, b);
      return { location, a, b };
    }

    let t = 1_000_000;
    const now = () => t;
    const sessionsOn = (s: Store, o: { max?: number; perSource?: number; kek?: AesGcmKek } = {}) =>
      new StoreSessions({
        state: s.kbsState(),
        kek: o.kek ?? kekOf(1),
        ttlMs: 1000,
        maxSessions: o.max ?? 100,
        maxPendingPerSource: o.perSource ?? 16,
        now,
      });
    const nonce = () => randomBytes(32).toString('base64');

    it('a session made on A is attested on B and read on A; the cookie and the token are not stored', async () => {
      const { location, a, b } = await replicas();
      const A = sessionsOn(a);
      const B = sessionsOn(b);
      const n = nonce();
      const { id } = await A.create('10.0.0.1', n, Buffer.from(n, 'base64'), 'snp');
      const onB = await B.get(id);
      assert.equal(onB.status, 'ok');
      assert.ok(onB.status === 'ok' && onB.session.phase === 'authed');
      assert.deepEqual(onB.session.challenge, new Uint8Array(Buffer.from(n, 'base64')));
      const token = `header.${'p'.repeat(40)}.signature`;
      assert.equal(await B.attest(id, token), true);
      const onA = await A.get(id);
      assert.ok(onA.status === 'ok' && onA.session.phase === 'attested');
      assert.equal(onA.session.token, token);

      const rows = await h.query(location, 'SELECT * FROM kbs_sessions');
      assert.equal(rows.length, 1);
      const raw = JSON.stringify(rows, (_k, v) => (Buffer.isBuffer(v) ? v.toString('latin1') : v));
      assert.equal(raw.includes(id), false, 'the session id is stored only as its digest');
      assert.equal(raw.includes('p'.repeat(40)), false, 'the token is stored only encrypted');
    });

    it('of two replicas attesting one session at once, exactly one moves it', async () => {
      const { a, b } = await replicas();
      const A = sessionsOn(a);
      const B = sessionsOn(b);
      for (let i = 0; i < 8; i++) {
        const n = nonce();
        const { id } = await A.create('10.0.0.2', n, Buffer.from(n, 'base64'), 'snp');
        const won = await Promise.all([A.attest(id, 'a.a.a'), B.attest(id, 'b.b.b')]);
        assert.equal(won.filter(Boolean).length, 1, `round ${i}: ${won}`);
        const s = await A.get(id);
        assert.ok(s.status === 'ok' && s.session.phase === 'attested');
        assert.equal(s.session.token, won[0] ? 'a.a.a' : 'b.b.b');
      }
    });

    it('expiry: expired sessions are answered as expired (and cannot attest), then forgotten', async () => {
      const { a, b } = await replicas();
      const A = sessionsOn(a);
      const n = nonce();
      const { id } = await A.create('10.0.0.3', n, Buffer.from(n, 'base64'), 'tdx');
      t += 1000;
      assert.equal((await sessionsOn(b).get(id)).status, 'expired');
      assert.equal(await A.attest(id, 'x.y.z'), false);
      t += 1001;
      assert.equal(await b.kbsState().purgeSessions(t - 1000), 1);
      assert.equal((await A.get(id)).status, 'unknown');
      assert.equal((await A.get('not-an-id')).status, 'unknown');
    });

    it('limits are counted in the database: per source across replicas, then the heaviest source', async () => {
      const { a, b } = await replicas();
      const A = sessionsOn(a, { max: 5, perSource: 3 });
      const B = sessionsOn(b, { max: 5, perSource: 3 });
      const made: string[] = [];
      for (let i = 0; i < 4; i++) {
        const n = nonce();
        t += 1;
        made.push((await (i % 2 ? B : A).create('198.51.100.7', n, Buffer.from(n, 'base64'), 'snp')).id);
      }
      // Four made on two replicas, three allowed: the source's own oldest went.
      assert.equal((await B.get(made[0]!)).status, 'unknown');
      for (const id of made.slice(1)) assert.equal((await A.get(id)).status, 'ok');
      const other: string[] = [];
      for (let i = 0; i < 3; i++) {
        const n = nonce();
        t += 1;
        other.push((await B.create(`203.0.113.${i}`, n, Buffer.from(n, 'base64'), 'snp')).id);
      }
      // Six wanted, five allowed: the oldest pending session of the heaviest source went.
      assert.equal((await A.get(made[1]!)).status, 'unknown');
      for (const id of [...made.slice(2), ...other]) assert.equal((await A.get(id)).status, 'ok');
      // Attested sessions are never evicted: with all five attested, /auth is refused.
      for (const id of [...made.slice(2), ...other]) assert.equal(await A.attest(id, 't.t.t'), true);
      await assert.rejects(A.create('192.0.2.1', nonce(), new Uint8Array(32), 'snp'), (e: unknown) => {
        assert.equal((e as { reason?: string }).reason, 'kbs.sessions_full');
        return true;
      });
    });

    it('at the limit, expired sessions go first, before anyone is refused; live attested ones are never evicted', async () => {
      const { a, b } = await replicas();
      const A = sessionsOn(a, { max: 3 });
      const B = sessionsOn(b, { max: 3 });
      const make = async (on: StoreSessions, source: string) => {
        const n = nonce();
        const { id } = await on.create(source, n, Buffer.from(n, 'base64'), 'snp');
        assert.equal(await on.attest(id, 't.t.t'), true);
        return id;
      };
      const first = await make(A, '198.51.100.1');
      t += 500;
      const live = [await make(B, '198.51.100.2'), await make(A, '198.51.100.3')];
      await assert.rejects(A.create('192.0.2.1', nonce(), new Uint8Array(32), 'snp'), {
        reason: 'kbs.sessions_full',
      });
      t += 500; // the first has expired (it would answer "expired" for one more lifetime), the others have not
      assert.equal((await B.get(first)).status, 'expired');
      const n = nonce();
      const { id } = await B.create('192.0.2.1', n, Buffer.from(n, 'base64'), 'snp');
      assert.equal((await A.get(first)).status, 'unknown', 'the expired session made room');
      for (const s of [...live, id]) assert.equal((await A.get(s)).status, 'ok');
      assert.equal(await A.attest(id, 't.t.t'), true);
      await assert.rejects(B.create('192.0.2.2', nonce(), new Uint8Array(32), 'snp'), {
        reason: 'kbs.sessions_full',
      });
    });

    it('a key held on A is read on B; the database holds only ciphertext bound to grant and instance', async () => {
      const { location, a, b } = await replicas();
      const key = new Uint8Array(randomBytes(32));
      await new StoreGrants(a.kbsState(), kekOf(1), now).put('grant-1', 'inst-1', key, t + 5000);
      const got = await new StoreGrants(b.kbsState(), kekOf(1), now).get('grant-1');
      assert.ok(got);
      assert.deepEqual(got.key, key);
      assert.equal(got.instanceId, 'inst-1');
      const rows = await h.query(location, 'SELECT * FROM kbs_grants');
      const wrapped = rows[0]!.wrapped as Buffer;
      assert.equal(Buffer.from(wrapped).includes(Buffer.from(key)), false);
      assert.equal(await new StoreGrants(b.kbsState(), kekOf(1), now).get('grant-2'), undefined);
      // Another KEK cannot read it; a row relabelled with another instance does not decrypt.
      await rejectsCode(
        new StoreGrants(b.kbsState(), kekOf(2), now).get('grant-1'),
        'ERR_INVALID_ARGUMENT',
        'broker.kek.mismatch',
      );
      await h.tamper(location, `UPDATE kbs_grants SET instance_id = 'inst-2' WHERE grant_id = 'grant-1'`);
      await rejectsCode(
        new StoreGrants(b.kbsState(), kekOf(1), now).get('grant-1'),
        'ERR_INVALID_ARGUMENT',
        'broker.kek.unwrap_failed',
      );
    });

    it('token keys: two replicas starting together share one ring; rotations on either reach both', async () => {
      const { location, a, b } = await replicas();
      const opts = { maxTokenLifetimeMs: 300_000 };
      const [A, B] = await Promise.all([
        openSharedTokenKeys({ state: a.kbsState(), kek: kekOf(1), options: opts }),
        openSharedTokenKeys({ state: b.kbsState(), kek: kekOf(1), options: opts }),
      ]);
      assert.equal(A.ring.current.kid, B.ring.current.kid);
      assert.equal(A.generation, 1);
      const first = A.ring.current.kid;

      const k = await A.rotate();
      assert.equal(A.generation, 2);
      assert.equal(B.ring.current.kid, first, 'B has not looked yet');
      await B.sync();
      assert.equal(B.ring.current.kid, k.kid);
      assert.deepEqual(
        B.ring.jwks().keys.map((j) => j.kid),
        [k.kid, first],
      );

      // Two rotations at once are two rotations: the loser re-reads and rotates the winner's ring.
      const [x, y] = await Promise.all([A.rotate(), B.rotate()]);
      assert.notEqual(x.kid, y.kid);
      await Promise.all([A.sync(), B.sync()]);
      assert.equal(A.generation, 4);
      assert.equal(B.generation, 4);
      assert.equal(A.ring.current.kid, B.ring.current.kid);
      assert.deepEqual(new Set(A.ring.jwks().keys.map((j) => j.kid)), new Set([first, k.kid, x.kid, y.kid]));

      const rows = await h.query(location, 'SELECT * FROM kbs_token_keys');
      assert.equal(rows.length, 1);
      assert.equal(Buffer.from(rows[0]!.wrapped as Buffer).includes('PRIVATE KEY'), false);
      await rejectsCode(
        openSharedTokenKeys({ state: b.kbsState(), kek: kekOf(2), options: opts }),
        'ERR_INVALID_ARGUMENT',
        'broker.kek.mismatch',
      );
    });
  });
}
