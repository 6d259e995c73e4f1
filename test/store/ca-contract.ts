/**
 * The platform CA's store contract: one suite, run against both engines of the broker's store
 * (ca-sqlite.test.ts, ca-postgres.test.ts), as contract.ts is for the broker's tables. Each test gets a
 * fresh, empty location. Last, the whole CA (PlatformCa) runs on the engine.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyIssuanceLog } from '../../src/ca/issuance-log.js';
import { PlatformCa } from '../../src/ca/platform-ca.js';
import { encodePublic } from '../../src/formats/tpm/index.js';
import { openCaRepository } from '../../src/store/ca-open.js';
import type { ActivationRecord, CaRepository, CertificateRecord } from '../../src/store/ca-types.js';
import { openStore } from '../../src/store/open.js';
import type { AuditDraft, Store } from '../../src/store/types.js';
import { identity, softEk } from '../ca/fixtures.js';
import { errorWith } from '../helpers/assert-error.js';
import { sibling } from '../helpers/paths.js';
import type { StoreHarness } from './contract.js';
import { raceChildren } from './race.js';

const CHILD = sibling(import.meta.url, 'ca-child.ts');

const sha256 = (s: string | Uint8Array) => new Uint8Array(createHash('sha256').update(s).digest());

function certificate(over: Partial<CertificateRecord> = {}): CertificateRecord {
  return {
    serial: randomBytes(16).toString('hex'),
    kind: 'ek',
    instanceId: '7000000000000000001',
    identityJson: '{"zone":"z"}',
    spkiSha256: Buffer.from(sha256(randomBytes(8))).toString('hex'),
    ekPublic: new Uint8Array(randomBytes(40)),
    notBefore: 1_700_000_000_000,
    notAfter: 2_000_000_000_000,
    issuedAt: 1_700_000_000_000,
    der: new Uint8Array(randomBytes(300)),
    c509: null,
    revokedAt: null,
    revocationReason: null,
    ...over,
  };
}

function logDraft(over: Partial<AuditDraft> = {}): AuditDraft {
  return {
    time: 1_700_000_000_000,
    kind: 'ca.test',
    instance: null,
    decision: 'accept',
    reasons: ['ca.ok'],
    evidenceDigest: null,
    details: {},
    ...over,
  };
}

function activation(over: Partial<ActivationRecord> = {}): ActivationRecord {
  return {
    id: randomUUID(),
    instanceId: '42',
    akPublic: new Uint8Array(randomBytes(90)),
    ekPublic: new Uint8Array(randomBytes(300)),
    secretDigest: sha256('secret'),
    csr: null,
    format: 'x509',
    expiresAt: 5000,
    ...over,
  };
}

export function runCaStoreContract(h: StoreHarness): void {
  describe(`CA store contract: ${h.engine}`, () => {
    const opened: { close(): Promise<void> }[] = [];
    const open = async (location?: string): Promise<CaRepository> => {
      const r = await openCaRepository(location ?? (await h.fresh()));
      opened.push(r);
      return r;
    };
    const openBroker = async (location: string): Promise<Store> => {
      const s = await openStore(location);
      opened.push(s);
      return s;
    };
    /** Direct SQL with the CA log's append-only triggers out of the way (SQLite drops them; PostgreSQL's
     * tamper runs in replica mode, which skips them). */
    const tamper = (loc: string, sql: string) =>
      h.tamper(
        loc,
        h.engine === 'sqlite'
          ? `DROP TRIGGER IF EXISTS ca_log_no_update; DROP TRIGGER IF EXISTS ca_log_no_delete; ${sql}`
          : sql,
      );
    before(async () => h.setup?.());
    after(async () => {
      for (const r of opened) await r.close().catch(() => {});
      await h.teardown?.();
    });

    describe('migrations', () => {
      it('creates the CA tables as migration 3 of the broker store; reopening is idempotent', async () => {
        const loc = await h.fresh();
        const a = await open(loc);
        assert.equal(a.engine, h.engine);
        const b = await open(loc);
        assert.equal((await b.logHead()).seq, 0);
        const versions = (await h.query(loc, 'SELECT version FROM schema_migrations ORDER BY version')).map(
          (r) => Number(r.version),
        );
        assert.ok(versions.includes(1) && versions.includes(3), `applied: ${versions}`);
        assert.equal(new Set(versions).size, versions.length, 'each migration recorded once');
      });

      it('shares a database with the broker: two logs, each with its own chain and head', async () => {
        const loc = await h.fresh();
        const ca = await open(loc);
        const broker = await openBroker(loc);
        await ca.appendLog(logDraft());
        await ca.appendLog(logDraft());
        await broker.transaction((tx) => tx.appendAudit(logDraft({ kind: 'broker.test' })));
        assert.equal((await ca.logHead()).seq, 2);
        assert.equal((await broker.auditHead()).seq, 1);
        assert.deepEqual(
          (await ca.readLog(0, 10)).map((e) => e.kind),
          ['ca.test', 'ca.test'],
        );
        assert.equal((await verifyIssuanceLog(ca)).ok, true);
      });

      it('is safe when several processes open a fresh location at once', async () => {
        const loc = await h.fresh();
        assert.deepEqual(await raceChildren<number>(CHILD, [loc, 'open'], [null, null, null]), [0, 0, 0]);
        const rows = await h.query(loc, 'SELECT version FROM schema_migrations WHERE version = 3');
        assert.equal(rows.length, 1);
      });
    });

    describe('certificates', () => {
      it('round-trips every field, null or not', async () => {
        const r = await open();
        const full = certificate({ c509: new Uint8Array([1, 2, 3]), revokedAt: 5, revocationReason: 1 });
        const bare = certificate({
          kind: 'root',
          instanceId: null,
          identityJson: null,
          ekPublic: null,
          notAfter: Number.MAX_SAFE_INTEGER,
        });
        await r.insertCertificate(full, logDraft());
        await r.insertCertificate(bare, logDraft());
        assert.deepEqual(await r.getCertificate(full.serial), full);
        assert.deepEqual(await r.getCertificate(bare.serial), bare);
        assert.equal(await r.getCertificate('00'), undefined);
      });

      it('lists by kind and instance, oldest first', async () => {
        const r = await open();
        const ek1 = certificate({ issuedAt: 1, instanceId: '1' });
        const ak1 = certificate({ issuedAt: 2, instanceId: '1', kind: 'ak' });
        const ek2 = certificate({ issuedAt: 3, instanceId: '2' });
        const root = certificate({ issuedAt: 0, kind: 'root', instanceId: null });
        for (const c of [ek2, ak1, root, ek1]) await r.insertCertificate(c, logDraft());
        const serials = (xs: CertificateRecord[]) => xs.map((x) => x.serial);
        assert.deepEqual(serials(await r.listCertificates()), serials([root, ek1, ak1, ek2]));
        assert.deepEqual(serials(await r.listCertificates({ kind: 'ek' })), serials([ek1, ek2]));
        assert.deepEqual(serials(await r.listCertificates({ instanceId: '1' })), serials([ek1, ak1]));
        assert.deepEqual(serials(await r.listCertificates({ kind: 'ek', instanceId: '2' })), serials([ek2]));
        assert.deepEqual(await r.listCertificates({ kind: 'ak', instanceId: '2' }), []);
      });

      it('refuses a second certificate with a serial, and then logs nothing (one transaction)', async () => {
        const r = await open();
        const c = certificate();
        const logged = await r.insertCertificate(c, logDraft());
        await assert.rejects(r.insertCertificate({ ...c, kind: 'ak' }, logDraft({ reasons: ['ca.second'] })));
        assert.equal((await r.getCertificate(c.serial))?.kind, 'ek');
        assert.deepEqual(await r.logHead(), { seq: 1, hash: logged.hash });
        assert.equal((await verifyIssuanceLog(r)).ok, true);
      });
    });

    describe('revocation', () => {
      it('revokes once and logs it; a second revocation changes and logs nothing', async () => {
        const r = await open();
        const c = certificate();
        await r.insertCertificate(c, logDraft());
        assert.equal(await r.revoke(c.serial, 10, 1, logDraft({ kind: 'ca.revoke' })), 'revoked');
        assert.equal(await r.revoke(c.serial, 20, 4, logDraft({ kind: 'ca.revoke' })), 'already_revoked');
        assert.equal(await r.revoke('ff', 20, 0, logDraft({ kind: 'ca.revoke' })), 'unknown');
        const got = await r.getCertificate(c.serial);
        assert.deepEqual([got?.revokedAt, got?.revocationReason], [10, 1]);
        assert.deepEqual(
          (await r.readLog(0, 10)).map((e) => e.kind),
          ['ca.test', 'ca.revoke'],
        );
      });

      it('lists revoked certificates in revocation order', async () => {
        const r = await open();
        const [a, b, c] = [certificate(), certificate(), certificate()];
        for (const x of [a, b, c]) await r.insertCertificate(x, logDraft());
        await r.revoke(c.serial, 10, 0, logDraft());
        await r.revoke(a.serial, 20, 0, logDraft());
        assert.deepEqual(
          (await r.listRevoked()).map((x) => x.serial),
          [c.serial, a.serial],
        );
      });

      it('of two concurrent revocations of one certificate, exactly one revokes', async () => {
        const loc = await h.fresh();
        const [r1, r2] = [await open(loc), await open(loc)];
        const c = certificate();
        await r1.insertCertificate(c, logDraft());
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 ? r1 : r2).revoke(c.serial, i, 0, logDraft())),
        );
        assert.equal(results.filter((x) => x === 'revoked').length, 1);
        assert.equal((await r1.logHead()).seq, 2);
      });
    });

    describe('CRLs', () => {
      it('numbers CRLs 1, 2, 3 and returns the latest', async () => {
        const r = await open();
        assert.equal(await r.latestCrl(), undefined);
        assert.deepEqual(
          [await r.nextCrlNumber(), await r.nextCrlNumber(), await r.nextCrlNumber()],
          [1, 2, 3],
        );
        const crl = { number: 3, thisUpdate: 100, nextUpdate: 200, der: new Uint8Array([0x30, 0]) };
        await r.insertCrl({ ...crl, number: 2 }, logDraft());
        await r.insertCrl(crl, logDraft({ kind: 'ca.crl' }));
        assert.deepEqual(await r.latestCrl(), crl);
        await assert.rejects(r.insertCrl(crl, logDraft()));
        assert.equal((await r.logHead()).seq, 2, 'the refused insert logged nothing');
      });

      it('gives distinct numbers to concurrent callers and to two processes', async () => {
        const loc = await h.fresh();
        const r = await open(loc);
        const here = await Promise.all(Array.from({ length: 20 }, () => r.nextCrlNumber()));
        const [a, b] = await raceChildren<number[]>(CHILD, [loc, 'crl'], [25, 25]);
        const all = [...here, ...a!, ...b!].sort((x, y) => x - y);
        assert.deepEqual(
          all,
          Array.from({ length: 70 }, (_, i) => i + 1),
        );
      });
    });

    describe('nonces', () => {
      it('consumes a nonce exactly once, with its instance and expiry', async () => {
        const r = await open();
        const d = sha256('n1');
        await r.insertNonce(d, '42', 5000);
        assert.deepEqual(await r.consumeNonce(d), { instanceId: '42', expiresAt: 5000 });
        assert.equal(await r.consumeNonce(d), undefined);
        assert.equal(await r.consumeNonce(sha256('never issued')), undefined);
      });

      it('consumes once among concurrent callers, and across two processes', async () => {
        const loc = await h.fresh();
        const r = await open(loc);
        const d = sha256('n2');
        await r.insertNonce(d, '42', 5000);
        const got = await Promise.all(Array.from({ length: 20 }, () => r.consumeNonce(d)));
        assert.equal(got.filter((g) => g !== undefined).length, 1);

        const hexes: string[] = [];
        for (let i = 0; i < 60; i++) {
          const n = sha256(randomBytes(32));
          await r.insertNonce(n, '42', Date.now() + 60_000);
          hexes.push(Buffer.from(n).toString('hex'));
        }
        const [a, b] = await raceChildren<string[]>(CHILD, [loc, 'nonce'], [hexes, hexes]);
        const all = [...a!, ...b!];
        assert.equal(all.length, 60, 'every nonce consumed exactly once in total');
        assert.deepEqual(new Set(all), new Set(hexes));
      });

      it('purges only nonces that expired before the cut-off', async () => {
        const r = await open();
        await r.insertNonce(sha256('old'), '1', 1000);
        await r.insertNonce(sha256('new'), '1', 3000);
        assert.equal(await r.purgeNonces(2000), 1);
        assert.equal(await r.consumeNonce(sha256('old')), undefined);
        assert.deepEqual(await r.consumeNonce(sha256('new')), { instanceId: '1', expiresAt: 3000 });
      });
    });

    describe('activations', () => {
      it('round-trips a pending activation and consumes it exactly once', async () => {
        const r = await open();
        const plain = activation();
        const withCsr = activation({ csr: new Uint8Array([0x30, 1, 0]), format: 'c509-type2' });
        await r.insertActivation(plain);
        await r.insertActivation(withCsr);
        const got = await Promise.all([r.consumeActivation(plain.id), r.consumeActivation(plain.id)]);
        assert.deepEqual(
          got.filter((g) => g !== undefined),
          [plain],
        );
        assert.deepEqual(await r.consumeActivation(withCsr.id), withCsr);
        assert.equal(await r.consumeActivation(randomUUID()), undefined);
      });
    });

    describe('issuance log', () => {
      it('links entries into a hash chain that verifies, across pages, and round-trips every field', async () => {
        const r = await open();
        const first = await r.appendLog(
          logDraft({
            instance: '42',
            decision: 'refuse',
            reasons: ['ca.nonce_unknown', 'ca.x'],
            evidenceDigest: 'ab'.repeat(32),
            details: { n: 1, s: 'x', b: true, z: null },
          }),
        );
        for (let i = 0; i < 6; i++) await r.appendLog(logDraft({ reasons: [`r${i}`] }));
        const entries = await r.readLog(0, 100);
        assert.equal(entries.length, 7);
        assert.deepEqual(entries[0], first);
        assert.equal(entries[1]!.prevHash, first.hash);
        assert.deepEqual(await r.readLog(6, 10), [entries[6]]);
        assert.deepEqual(await verifyIssuanceLog(r, 3), { ok: true, entries: 7, headHash: entries[6]!.hash });
      });

      it('does not fork under concurrent appends in one process or from two processes', async () => {
        const loc = await h.fresh();
        const [r1, r2] = [await open(loc), await open(loc)];
        await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? r1 : r2).appendLog(logDraft({ reasons: [`r${i}`] }))),
        );
        const [a, b] = await raceChildren<number[]>(
          CHILD,
          [loc, 'log'],
          [
            { count: 30, tag: 'a' },
            { count: 30, tag: 'b' },
          ],
        );
        assert.deepEqual(
          [...a!, ...b!].sort((x, y) => x - y),
          Array.from({ length: 60 }, (_, i) => i + 21),
        );
        const v = await verifyIssuanceLog(r1);
        assert.deepEqual([v.ok, v.entries], [true, 80]);
      });

      it('rejects UPDATE and DELETE on the log at the SQL level (append-only triggers)', async () => {
        const loc = await h.fresh();
        const r = await open(loc);
        await r.appendLog(logDraft());
        await assert.rejects(h.query(loc, "UPDATE ca_log SET kind = 'x'"), /append-only/);
        await assert.rejects(h.query(loc, 'DELETE FROM ca_log'), /append-only/);
        assert.equal((await verifyIssuanceLog(r)).ok, true);
      });

      describe('detects tampering done directly in the database', () => {
        const seeded = async () => {
          const loc = await h.fresh();
          const r = await open(loc);
          for (let i = 1; i <= 4; i++) await r.appendLog(logDraft({ reasons: [`r${i}`], instance: `${i}` }));
          assert.equal((await verifyIssuanceLog(r)).ok, true);
          return { loc, r };
        };

        it('a modified entry', async () => {
          const { loc, r } = await seeded();
          await tamper(loc, `UPDATE ca_log SET decision = 'refuse' WHERE seq = 2`);
          assert.deepEqual(await verifyIssuanceLog(r), {
            ok: false,
            entries: 1,
            seq: 2,
            problem: 'audit.hash',
          });
        });

        it('a deleted entry in the middle', async () => {
          const { loc, r } = await seeded();
          await tamper(loc, 'DELETE FROM ca_log WHERE seq = 2');
          assert.deepEqual(await verifyIssuanceLog(r), {
            ok: false,
            entries: 1,
            seq: 3,
            problem: 'audit.sequence',
          });
        });

        it('a truncated tail', async () => {
          const { loc, r } = await seeded();
          await tamper(loc, 'DELETE FROM ca_log WHERE seq = 4');
          assert.deepEqual(await verifyIssuanceLog(r), {
            ok: false,
            entries: 3,
            seq: 4,
            problem: 'audit.head',
          });
        });

        it('a head row edited to a value the CA never writes: reported, and nothing is appended after it', async () => {
          const { loc, r } = await seeded();
          await tamper(loc, "UPDATE ca_log_head SET hash = 'zz'");
          assert.deepEqual(await verifyIssuanceLog(r), {
            ok: false,
            entries: 4,
            seq: 4,
            problem: 'audit.head',
          });
          await assert.rejects(r.appendLog(logDraft()), errorWith('ERR_MALFORMED', 'audit.value_invalid'));
          assert.equal((await r.readLog(0, 10)).length, 4);
        });
      });
    });

    describe('PlatformCa on this engine', () => {
      const dirs: string[] = [];
      const tmp = () => {
        const d = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-engine-'));
        dirs.push(d);
        return d;
      };
      after(() => {
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      });

      it('issues, revokes and signs CRLs; reopens on the same database with its log intact', async () => {
        const loc = await h.fresh();
        const dir = tmp();
        const ca = await PlatformCa.init({ dir, repository: await openCaRepository(loc) });
        const ek = await ca.issueEk({ ekPublic: encodePublic(softEk().pub), identity: identity(1) });
        assert.equal(await ca.revoke(ek.serial, 1), 'revoked');
        const crl = await ca.generateCrl();
        assert.equal(crl.number, 1);
        await ca.close();

        const again = await PlatformCa.open(dir, { repository: await openCaRepository(loc) });
        try {
          assert.equal((await again.repository.getCertificate(ek.serial))?.revocationReason, 1);
          assert.deepEqual(
            (await again.readLog()).map((e) => e.kind),
            ['ca.init', 'ca.issue_ek', 'ca.revoke', 'ca.crl'],
          );
          assert.deepEqual((await again.verifyLog()).ok, true);
          assert.equal((await again.generateCrl()).number, 2);
        } finally {
          await again.close();
        }
      });

      it("refuses to open on a database that does not hold this CA's certificate", async () => {
        const dir = tmp();
        await (await PlatformCa.init({ dir, repository: await openCaRepository(await h.fresh()) })).close();
        const empty = await open();
        await assert.rejects(
          PlatformCa.open(dir, { repository: empty }),
          errorWith('ERR_INVALID_ARGUMENT', 'ca.database_mismatch'),
        );
        const other = tmp();
        const otherLoc = await h.fresh();
        await (await PlatformCa.init({ dir: other, repository: await openCaRepository(otherLoc) })).close();
        await assert.rejects(
          PlatformCa.open(dir, { repository: await open(otherLoc) }),
          errorWith('ERR_INVALID_ARGUMENT', 'ca.database_mismatch'),
        );
        await assert.rejects(
          PlatformCa.open(dir),
          errorWith('ERR_INVALID_ARGUMENT', 'ca.open'),
          'without --database, a directory with no ca.db does not open (on a new, empty database)',
        );
      });

      it('refuses to create a second CA in a database that holds one', async () => {
        const loc = await h.fresh();
        await (await PlatformCa.init({ dir: tmp(), repository: await openCaRepository(loc) })).close();
        await assert.rejects(
          PlatformCa.init({ dir: tmp(), repository: await open(loc) }),
          errorWith('ERR_INVALID_ARGUMENT', 'ca.init.exists'),
        );
      });
    });
  });
}
