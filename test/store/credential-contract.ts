/**
 * Admin credentials in the store (migration 6) and the broker's credential operations on top of them: one
 * suite, run against every engine (credential-sqlite.test.ts, credential-postgres.test.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { runAsActor } from '../../src/broker/actor.js';
import {
  authenticateCredential,
  createCredential,
  credentialIdOf,
  revokeCredential,
} from '../../src/broker/credentials.js';
import { verifyAuditChain } from '../../src/store/audit-verify.js';
import { openStore } from '../../src/store/open.js';
import type { CredentialRecord, Store } from '../../src/store/types.js';
import { rejectsCode } from '../helpers/assert-error.js';
import type { StoreHarness } from './contract.js';

const record = (over: Partial<CredentialRecord> = {}): CredentialRecord => ({
  id: '0123456789abcdef',
  name: 'ci deployer',
  role: 'operate',
  projects: ['proj-a', 'proj-b'],
  secretHash: new Uint8Array(createHash('sha256').update('s').digest()),
  createdAt: 1_700_000_000_000,
  revokedAt: null,
  ...over,
});

export function runCredentialContract(h: StoreHarness): void {
  describe(`credential store contract: ${h.engine}`, () => {
    const opened: Store[] = [];
    const open = async () => {
      const s = await openStore(await h.fresh());
      opened.push(s);
      return s;
    };
    before(async () => h.setup?.());
    after(async () => {
      for (const s of opened) await s.close().catch(() => {});
      await h.teardown?.();
    });

    it('migration 6 creates the credentials table; a row round-trips; a second insert of an id is refused', async () => {
      const loc = await h.fresh();
      const s = await openStore(loc);
      opened.push(s);
      const rows = await h.query(loc, 'SELECT version FROM schema_migrations WHERE version = 6');
      assert.equal(rows.length, 1);
      const rec = record();
      assert.equal(await s.transaction((tx) => tx.insertCredential(rec)), true);
      assert.equal(await s.transaction((tx) => tx.insertCredential(record({ name: 'other' }))), false);
      assert.deepEqual(await s.getCredential(rec.id), rec);
      assert.equal(await s.getCredential('ffffffffffffffff'), undefined);
      const two = record({
        id: 'fedcba9876543210',
        role: 'host',
        projects: ['*'],
        createdAt: rec.createdAt + 1,
      });
      await s.transaction((tx) => tx.insertCredential(two));
      assert.deepEqual(await s.listCredentials(), [rec, two]);
      // The secret is stored only as its hash.
      const raw = await h.query(loc, 'SELECT * FROM credentials');
      assert.deepEqual(Object.keys(raw[0]!).sort(), [
        'created_at',
        'id',
        'name',
        'projects',
        'revoked_at',
        'role',
        'secret_hash',
      ]);
    });

    it('revoking keeps the first revocation time; an unknown id is undefined; a bad role is refused by the table', async () => {
      const loc = await h.fresh();
      const s = await openStore(loc);
      opened.push(s);
      await s.transaction((tx) => tx.insertCredential(record()));
      const r1 = await s.transaction((tx) => tx.revokeCredential('0123456789abcdef', 5));
      assert.equal(r1?.revokedAt, 5);
      const r2 = await s.transaction((tx) => tx.revokeCredential('0123456789abcdef', 9));
      assert.equal(r2?.revokedAt, 5);
      assert.equal(await s.transaction((tx) => tx.revokeCredential('ffffffffffffffff', 9)), undefined);
      await assert.rejects(
        h.query(
          loc,
          "INSERT INTO credentials (id, name, role, projects, secret_hash, created_at) VALUES ('x', 'x', 'root', '[]', x'00', 1)",
        ),
      );
    });

    it('create, authenticate, revoke: the token works until revoked; a wrong secret, an unknown id or a malformed token never does', async () => {
      const s = await open();
      const { credential, token } = await runAsActor({ actor: 'bootstrap', audited: false }, () =>
        createCredential(s, { name: 'dash', role: 'read', projects: ['b', 'a', 'a'] }, 1000),
      );
      assert.deepEqual(credential.projects, ['a', 'b']);
      assert.equal(credentialIdOf(token), credential.id);
      assert.equal('secretHash' in credential, false);
      assert.deepEqual(await authenticateCredential(s, token), credential);

      const secret = token.slice(token.lastIndexOf('_') + 1);
      const flipped = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
      assert.equal(await authenticateCredential(s, flipped), undefined);
      assert.equal(await authenticateCredential(s, `vsc_ffffffffffffffff_${secret}`), undefined);
      for (const bad of ['', token.slice(0, -1), `${token}x`, token.toUpperCase(), `Bearer ${token}`]) {
        assert.equal(await authenticateCredential(s, bad), undefined, bad);
      }

      const revoked = await revokeCredential(s, credential.id, 2000);
      assert.equal(revoked.revokedAt, 2000);
      assert.equal(await authenticateCredential(s, token), undefined);
      await rejectsCode(
        revokeCredential(s, 'ffffffffffffffff', 3000),
        'ERR_INVALID_ARGUMENT',
        'credential.not_found',
      );

      // Both are in the hash chain, the creation with the acting credential.
      const log = await s.readAudit(0, 10);
      assert.deepEqual(
        log.map((e) => [e.kind, e.details.credential, e.details.actor ?? null]),
        [
          ['credential_create', credential.id, 'bootstrap'],
          ['credential_revoke', credential.id, null],
        ],
      );
      assert.equal((await verifyAuditChain(s)).ok, true);
    });

    it('refuses a credential with no project, an unknown role or a bad name; "*" covers every project', async () => {
      const s = await open();
      await rejectsCode(
        createCredential(s, { name: 'x', role: 'read', projects: [] }, 1),
        'ERR_INVALID_ARGUMENT',
        'credential.projects',
      );
      await rejectsCode(
        createCredential(s, { name: 'x', role: 'root' as 'read', projects: ['a'] }, 1),
        'ERR_INVALID_ARGUMENT',
        'credential.role',
      );
      await rejectsCode(
        createCredential(s, { name: '', role: 'read', projects: ['a'] }, 1),
        'ERR_INVALID_ARGUMENT',
        'credential.name',
      );
      await rejectsCode(
        createCredential(s, { name: 'x', role: 'read', projects: ['a b'] }, 1),
        'ERR_INVALID_ARGUMENT',
        'credential.projects',
      );
      const all = await createCredential(s, { name: 'ops', role: 'admin', projects: ['a', '*'] }, 1);
      assert.deepEqual(all.credential.projects, ['*']);
      assert.deepEqual(await s.listCredentials().then((l) => l.length), 1);
    });
  });
}
