/**
 * The broker's HTTP API over a real socket: the /v1 guest routes with the real verifier and appraiser
 * (simulator root trusted), the status table as clients see it, request validation, the body limit, the
 * admin API and its token, /healthz, /metrics and /v1/openapi.json.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { STATUS_BY_CODE } from '../../src/api/http-errors.js';
import { KdsClient } from '../../src/collateral/kds-client.js';
import { ErrorCode } from '../../src/errors.js';
import { parseSecretPayload } from '../../src/formats/aproxy/secret-payload.js';
import type { AesGcmData } from '../../src/formats/aproxy/types.js';
import { verifyAttestationResponse, verifyCommit } from '../../src/native/broker-signature.js';
import { unwrapSecret } from '../../src/native/jwe-ecdh-es.js';
import { toHex } from '../../src/util/bytes.js';
import { simKds } from '../helpers/broker.js';
import { GOOD_POLICY, type Json, startTestBroker, type TestBroker } from './helpers.js';

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const decryptionOf = (d: Json): AesGcmData => ({
  epk: { x: bytes(d.epk.x), y: bytes(d.epk.y) },
  wrappedCek: bytes(d.wrappedCek),
  aad: bytes(d.aad),
  iv: bytes(d.iv),
  tag: bytes(d.tag),
});
/** Only these keys ever reach a client in an error. */
const assertErrorShape = (body: Json) => {
  for (const k of Object.keys(body)) assert.ok(['code', 'reason', 'message', 'failures'].includes(k), k);
  assert.equal(typeof body.code, 'string');
  assert.equal(typeof body.reason, 'string');
  assert.equal(typeof body.message, 'string');
};

describe('broker HTTP API', () => {
  let t: TestBroker;
  before(async () => {
    t = await startTestBroker();
  });
  after(() => t?.close());

  describe('guest routes (/v1)', () => {
    it('0.2.0: seals the key payload to the guest key, signs the response and the commit; 0.1.0 gets the same key bare', async () => {
      const inst = await t.register();
      const fw = t.firmware(inst.hostData);

      // 0.1.0 first (the instance has no committed counter yet): the bare key, unsigned, boot ended at once.
      const v1 = await t.attestBody(fw, { version: '0.1.0' });
      const r1 = await t.call('POST', '/v1/attest', v1.body);
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      assert.equal(r1.body.signature, null);
      assert.equal(r1.body.leaseExpiresAt, null);
      const bare = unwrapSecret(v1.privateKey, {
        decryption: decryptionOf(r1.body.decryption),
        ciphertext: bytes(r1.body.ciphertext),
      });
      assert.equal(bare.length, 32);
      assert.equal((await t.admin('GET', `/v1/admin/instances/${inst.id}`)).body.activeBoot, null);

      const { body, privateKey, key, challenge } = await t.attestBody(fw);
      const r = await t.call('POST', '/v1/attest', body);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.instance, inst.id);
      assert.equal(r.body.committedCounter, null);
      assert.ok(r.body.leaseExpiresAt > Date.now());
      const decryption = decryptionOf(r.body.decryption);
      const ciphertext = bytes(r.body.ciphertext);
      const pin = await t.call('GET', '/v1/broker-key');
      const pub = createPublicKey({ key: Buffer.from(pin.body.spki, 'base64'), format: 'der', type: 'spki' });
      assert.ok(pub.equals(t.b.publicKey));
      const identity = {
        project: inst.project,
        zone: inst.zone,
        instanceId: inst.instanceId,
        instanceName: inst.instanceName,
      };
      assert.deepEqual(r.body.identity, identity);
      verifyAttestationResponse(
        pub,
        { challenge, key, decryption, ciphertext, identity, stateCounter: null, stateDigest: null },
        bytes(r.body.signature),
      );
      // A signature over anything else (here: another state counter) does not verify.
      assert.throws(
        () =>
          verifyAttestationResponse(
            pub,
            { challenge, key, decryption, ciphertext, identity, stateCounter: 0n, stateDigest: null },
            bytes(r.body.signature),
          ),
        { code: 'ERR_SIGNATURE_INVALID' },
      );
      const payload = parseSecretPayload(unwrapSecret(privateKey, { decryption, ciphertext }));
      assert.deepEqual(payload.secret, bare);
      assert.equal(payload.bootId, r.body.bootId);
      const token = Buffer.from(payload.commitToken).toString('base64');

      const stateDigest = new Uint8Array(32).fill(0x5d);
      const c = await t.call('POST', '/v1/commit', {
        bootId: payload.bootId,
        commitToken: token,
        counter: '1',
        stateDigest: Buffer.from(stateDigest).toString('base64'),
        challenge: body.challenge,
      });
      assert.equal(c.status, 200, JSON.stringify(c.body));
      assert.equal(c.body.committedCounter, 1);
      verifyCommit(
        pub,
        { challenge, bootId: payload.bootId, counter: 1n, stateDigest },
        bytes(c.body.signature),
      );
      const again = await t.call('POST', '/v1/commit', {
        bootId: payload.bootId,
        commitToken: token,
        counter: '1',
        stateDigest: Buffer.from(stateDigest).toString('base64'),
        challenge: body.challenge,
      });
      assert.deepEqual([again.status, again.body.reason], [409, 'broker.counter_mismatch']);

      const bad = await t.call('POST', '/v1/heartbeat', {
        bootId: payload.bootId,
        commitToken: Buffer.alloc(32).toString('base64'),
      });
      assert.deepEqual([bad.status, bad.body.reason], [403, 'broker.commit_token']);
      const hb = await t.call('POST', '/v1/heartbeat', { bootId: payload.bootId, commitToken: token });
      assert.equal(hb.status, 200);
      assert.ok(hb.body.leaseExpiresAt > Date.now());
      const end = await t.call('POST', '/v1/end', { bootId: payload.bootId, commitToken: token });
      assert.deepEqual([end.status, end.body], [200, { ended: true }]);
      const ended = await t.call('POST', '/v1/heartbeat', { bootId: payload.bootId, commitToken: token });
      assert.deepEqual([ended.status, ended.body.reason], [409, 'broker.boot_unknown']);

      // Once a counter is committed, a 0.1.0 guest (no counter) is a rollback: no downgrade.
      const down = await t.call('POST', '/v1/attest', (await t.attestBody(fw, { version: '0.1.0' })).body);
      assert.deepEqual([down.status, down.body.reason], [409, 'broker.rollback']);
    });

    it('a refused policy is 403 ERR_POLICY_REJECTED listing every failed check', async () => {
      const inst = await t.register({ ...GOOD_POLICY, measurements: [toHex(new Uint8Array(48).fill(7))] });
      const { encodeGuestPolicy } = await import('../../src/formats/snp/index.js');
      const fw = t.firmware(inst.hostData, {
        policy: encodeGuestPolicy({ abiMinor: 31, smt: true, debug: true }),
      });
      const r = await t.call('POST', '/v1/attest', (await t.attestBody(fw)).body);
      assert.equal(r.status, 403);
      assertErrorShape(r.body);
      assert.equal(r.body.code, ErrorCode.PolicyRejected);
      assert.deepEqual(r.body.failures.map((f: Json) => f.code).sort(), [
        'snp.measurement',
        'snp.policy.debug',
      ]);
      assert.ok(r.body.failures.every((f: Json) => typeof f.message === 'string'));
    });

    it("a policy refusal names the failed checks, never the policy's expected values; the broker's log has them", async () => {
      const lines: string[] = [];
      const logged = await startTestBroker({
        logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
      });
      try {
        const measurement = toHex(new Uint8Array(48).fill(0x5a));
        const chipId = 'c1'.repeat(64);
        const tcb = { bootloader: 99, tee: 98, snp: 97, microcode: 251 };
        const inst = await logged.register({
          measurements: [measurement],
          chipId,
          minimumTcb: { Milan: tcb },
        });
        const fw = logged.firmware(inst.hostData);
        const r = await logged.call(
          'POST',
          '/v1/attest',
          (await logged.attestBody(fw, { version: '0.1.0' })).body,
        );
        assert.equal(r.status, 403, JSON.stringify(r.body));
        assertErrorShape(r.body);
        assert.deepEqual(r.body.failures.map((f: Json) => f.code).sort(), [
          'snp.chip_id',
          'snp.measurement',
          'snp.tcb.minimum',
        ]);
        for (const f of r.body.failures) assert.deepEqual(Object.keys(f).sort(), ['code', 'message']);
        const text = JSON.stringify(r.body);
        for (const v of [measurement, chipId, 'snp=97', 'microcode=251']) assert.ok(!text.includes(v), v);
        // What the caller is not told is in the broker's log, for the operator.
        const refusal = lines.map((l) => JSON.parse(l)).find((l: Json) => l.msg === 'request refused');
        assert.equal(refusal?.code, ErrorCode.PolicyRejected);
        const byCode = new Map(refusal.failures.map((f: Json) => [f.code, f]));
        assert.equal((byCode.get('snp.measurement') as Json).expected, measurement);
        assert.equal((byCode.get('snp.chip_id') as Json).expected, chipId);
        assert.match((byCode.get('snp.tcb.minimum') as Json).expected, /snp=97 microcode=251/);
        // And in the refusal's audit entry.
        const audit = await logged.admin('GET', '/v1/admin/audit?limit=1000');
        const entry = audit.body.entries.findLast(
          (x: Json) => x.kind === 'release' && x.decision === 'refuse',
        );
        assert.match(
          entry.details['failure.snp.measurement'],
          new RegExp(`^expected ${measurement}; actual `),
        );
        assert.match(entry.details['failure.snp.chip_id'], new RegExp(`^expected ${chipId}; actual `));
        assert.match(entry.details['failure.snp.tcb.minimum'], /snp=97 microcode=251/);
      } finally {
        await logged.close();
      }
    });

    it('status per refusal: 403 replay, 409 clone and rollback, 503 missing collateral, 501 other TEEs', async () => {
      const inst = await t.register();
      const nl = await t.admin('PUT', `/v1/admin/instances/${inst.id}/new-launch`, { newLaunch: 'refuse' });
      assert.equal(nl.status, 200);
      const fw = t.firmware(inst.hostData);
      const first = await t.attestBody(fw);
      assert.equal((await t.call('POST', '/v1/attest', first.body)).status, 200);
      const replay = await t.call('POST', '/v1/attest', first.body);
      assert.deepEqual(
        [replay.status, replay.body.code, replay.body.reason],
        [403, 'ERR_REFUSED', 'broker.challenge_unknown'],
      );
      // Another launch (a new firmware: a new REPORT_ID) while the first holds its lease, under `refuse`.
      const clone = await t.call('POST', '/v1/attest', (await t.attestBody(t.firmware(inst.hostData))).body);
      assert.deepEqual([clone.status, clone.body.reason], [409, 'broker.clone']);
      const ahead = await t.call('POST', '/v1/attest', (await t.attestBody(fw, { stateCounter: '5' })).body);
      assert.deepEqual([ahead.status, ahead.body.reason], [409, 'broker.state_ahead']);
      const noCerts = await t.call('POST', '/v1/attest', (await t.attestBody(fw, { certTable: false })).body);
      assert.deepEqual(
        [noCerts.status, noCerts.body.code, noCerts.body.reason],
        [503, 'ERR_COLLATERAL_UNAVAILABLE', 'api.collateral.certs_missing'],
      );
      const tdx = await t.call('POST', '/v1/challenge', { tee: 'sgx', version: '0.2.0' });
      assert.deepEqual([tdx.status, tdx.body.code, tdx.body.reason], [501, 'ERR_NOT_SUPPORTED', 'api.tee']);
      for (const r of [replay, clone, ahead, noCerts, tdx]) assertErrorShape(r.body);
    });

    it('a report signed by an untrusted root is 403 ERR_CHAIN_INVALID', async () => {
      const inst = await t.register();
      const { createSimChain, SimSnpFirmware, SIM_DEFAULT_MEASUREMENT, SIM_DEFAULT_POLICY } = await import(
        '../../src/sim/snp/index.js'
      );
      const keys = {
        ark: t.chain.ark,
        ask: t.chain.ask,
        asvk: t.chain.asvk,
        vcek: t.chain.vcek,
        vlek: t.chain.vlek,
      };
      const other = await createSimChain({ product: 'Milan', keys, now: new Date(Date.now() - 60_000) });
      assert.notEqual(other.rootSha256, t.chain.rootSha256);
      const fw = new SimSnpFirmware(other, {
        measurement: SIM_DEFAULT_MEASUREMENT,
        policy: SIM_DEFAULT_POLICY,
        hostData: new Uint8Array(Buffer.from(inst.hostData, 'hex')),
      });
      const r = await t.call('POST', '/v1/attest', (await t.attestBody(fw)).body);
      assert.deepEqual(
        [r.status, r.body.code, r.body.reason],
        [403, 'ERR_CHAIN_INVALID', 'snp.chain.root_untrusted'],
      );
    });

    it('an invalid guest key is 400 and does not consume the challenge', async () => {
      const inst = await t.register();
      const fw = t.firmware(inst.hostData);
      const good = await t.attestBody(fw);
      const notOnCurve = Buffer.alloc(66, 1).toString('base64');
      const bad = await t.call('POST', '/v1/attest', { ...good.body, key: { x: notOnCurve, y: notOnCurve } });
      assert.deepEqual(
        [bad.status, bad.body.code, bad.body.reason],
        [400, 'ERR_MALFORMED', 'crypto.p521.point'],
      );
      assert.equal((await t.call('POST', '/v1/attest', good.body)).status, 200);
    });

    it('version rules: 0.1.0 carries no counter, 0.2.0 must state one (or null)', async () => {
      const inst = await t.register();
      const fw = t.firmware(inst.hostData);
      const v1 = await t.attestBody(fw, { version: '0.1.0' });
      const r1 = await t.call('POST', '/v1/attest', { ...v1.body, stateCounter: null });
      assert.deepEqual([r1.status, r1.body.reason], [400, 'api.state_counter']);
      const v2 = await t.attestBody(fw);
      const { stateCounter: _drop, ...noCounter } = v2.body;
      const r2 = await t.call('POST', '/v1/attest', noCounter);
      assert.deepEqual([r2.status, r2.body.reason], [400, 'api.state_counter']);
      const huge = await t.call('POST', '/v1/attest', {
        ...(await t.attestBody(fw)).body,
        stateCounter: '9007199254740992',
      });
      assert.deepEqual([huge.status, huge.body.reason], [400, 'api.state_counter']);
    });

    it('requests are validated: schema, unknown fields, base64, JSON, content type, size, routes', async () => {
      const cases: [string, unknown, number, string, Record<string, string>?][] = [
        ['missing field', { tee: 'snp' }, 400, 'api.schema'],
        ['unknown field', { tee: 'snp', version: '0.2.0', extra: 1 }, 400, 'api.schema'],
        ['unknown version', { tee: 'snp', version: '0.3.0' }, 400, 'api.schema'],
        ['wrong type', { tee: 1, version: '0.2.0' }, 400, 'api.schema'],
        ['bad JSON', '{"tee":', 400, 'api.request'],
        ['text/plain', 'hello', 415, 'api.content_type', { 'content-type': 'text/plain' }],
        ['prototype poisoning', '{"tee":"snp","version":"0.2.0","__proto__":{"x":1}}', 400, 'api.request'],
      ];
      for (const [what, body, status, reason, headers] of cases) {
        const r = await t.call('POST', '/v1/challenge', body, headers);
        assert.equal(r.status, status, what);
        assert.equal(r.body.reason, reason, what);
        assert.equal(r.body.code, ErrorCode.Malformed, what);
        assertErrorShape(r.body);
      }
      const inst = await t.register();
      const { body } = await t.attestBody(t.firmware(inst.hostData));
      const pattern = await t.call('POST', '/v1/attest', { ...body, report: 'not base64!' });
      assert.deepEqual([pattern.status, pattern.body.reason], [400, 'api.schema']);
      // Passes the pattern but is not canonical (trailing bits set): decoded strictly.
      const canonical = await t.call('POST', '/v1/attest', { ...body, challenge: 'AB==' });
      assert.deepEqual([canonical.status, canonical.body.reason], [400, 'api.base64']);
      const big = await t.call('POST', '/v1/attest', { ...body, report: 'A'.repeat(70 * 1024) });
      assert.deepEqual(
        [big.status, big.body.code, big.body.reason],
        [413, 'ERR_MALFORMED', 'api.body_too_large'],
      );
      const nf = await t.call('GET', '/v1/nothing');
      assert.deepEqual([nf.status, nf.body.reason], [404, 'api.not_found']);
    });

    it('fetches the certificates a report lacks (as from a real SVSM) from AMD KDS', async () => {
      const { chain } = t;
      const served: string[] = [];
      const k = await startTestBroker({
        kds: simKds(chain, served),
        crl: 'none', // this test counts certificate fetches only
      });
      try {
        const inst = await k.register();
        const fw = k.firmware(inst.hostData);
        const r = await k.call('POST', '/v1/attest', (await k.attestBody(fw, { certTable: false })).body);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(served.length, 2);
        assert.ok(served.includes('/vcek/v1/Milan/cert_chain'));
      } finally {
        await k.close();
      }
    });

    it('with crl: kds, checks the chain against the CRL and refuses a revoked intermediate', async () => {
      const { chain } = t;
      const { createCrl } = await import('../../src/sim/snp/index.js');
      const { X509Certificate } = await import('node:crypto');
      const askSerial = BigInt(`0x${new X509Certificate(Buffer.from(chain.ask.der)).serialNumber}`);
      for (const [revoked, expected] of [
        [[], 200],
        [[askSerial], 403],
      ] as const) {
        const crl = await createCrl(chain, { revokedSerials: [...revoked] });
        const fetchKds: typeof fetch = async (input) =>
          new URL(String(input)).pathname === '/vcek/v1/Milan/crl'
            ? new Response(Buffer.from(crl))
            : new Response('', { status: 404 });
        const k = await startTestBroker({
          kds: new KdsClient({ fetch: fetchKds, minIntervalMs: 0 }),
          crl: 'kds',
        });
        try {
          const inst = await k.register();
          const r = await k.call('POST', '/v1/attest', (await k.attestBody(k.firmware(inst.hostData))).body);
          assert.equal(r.status, expected, JSON.stringify(r.body));
          if (expected === 403)
            assert.deepEqual([r.body.code, r.body.reason], ['ERR_CHAIN_INVALID', 'snp.intermediate_revoked']);
        } finally {
          await k.close();
        }
      }
    });
  });

  describe('admin API', () => {
    it('requires the bearer token, compared as a whole', async () => {
      const r0 = await t.call('GET', '/v1/admin/instances');
      assert.equal(r0.status, 401);
      assert.match(r0.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.deepEqual([r0.body.code, r0.body.reason], ['ERR_REFUSED', 'api.admin.unauthorized']);
      for (const h of [
        `Bearer ${t.b.adminToken.slice(0, -1)}`,
        `Bearer ${t.b.adminToken}x`,
        `bearer ${t.b.adminToken}`,
        t.b.adminToken,
        `Basic ${t.b.adminToken}`,
      ]) {
        const r = await t.call('GET', '/v1/admin/instances', undefined, { authorization: h });
        assert.equal(r.status, 401, h.slice(0, 8));
      }
      const unauth = await t.call('POST', '/v1/admin/instances', { project: 'x' });
      assert.equal(unauth.status, 401, 'authentication comes before validation');
      assert.equal((await t.admin('GET', '/v1/admin/instances')).status, 200);
    });

    it('registers (HOST_DATA hex), lists, shows, sets policy, rotates, resets; refuses bad input', async () => {
      const reg = await t.admin('POST', '/v1/admin/instances', {
        project: 'p',
        zone: 'z',
        instanceId: 'admin-1',
        instanceName: 'n',
        policy: GOOD_POLICY,
      });
      assert.equal(reg.status, 201);
      assert.match(reg.body.hostData, /^[0-9a-f]{64}$/);
      const dup = await t.admin('POST', '/v1/admin/instances', {
        project: 'p',
        zone: 'z',
        instanceId: 'admin-1',
        instanceName: 'other',
        policy: GOOD_POLICY,
      });
      assert.deepEqual([dup.status, dup.body.reason], [409, 'broker.instance_exists']);
      const badPolicy = await t.admin('POST', '/v1/admin/instances', {
        project: 'p',
        zone: 'z',
        instanceId: 'admin-2',
        instanceName: 'n',
        policy: { measurements: ['zz'] },
      });
      assert.deepEqual(
        [badPolicy.status, badPolicy.body.code, badPolicy.body.reason],
        [400, 'ERR_INVALID_ARGUMENT', 'policy.invalid'],
      );
      const list = await t.admin('GET', '/v1/admin/instances');
      assert.ok(list.body.instances.some((i: Json) => i.id === reg.body.id));
      const show = await t.admin('GET', `/v1/admin/instances/${reg.body.id}`);
      assert.deepEqual(show.body.keyVersions, []);
      const missing = await t.admin('GET', '/v1/admin/instances/no-such-id');
      assert.deepEqual([missing.status, missing.body.reason], [404, 'broker.instance_not_found']);
      const setBad = await t.admin('PUT', `/v1/admin/instances/${reg.body.id}/policy`, {
        policy: { allowDebug: 'yes' },
      });
      assert.deepEqual([setBad.status, setBad.body.reason], [400, 'policy.invalid']);
      const set = await t.admin('PUT', `/v1/admin/instances/${reg.body.id}/policy`, {
        policy: { ...GOOD_POLICY, allowSmt: true },
      });
      assert.deepEqual([set.status, set.body], [200, { ok: true }]);
      const rot = await t.admin('POST', `/v1/admin/instances/${reg.body.id}/rotate-key`);
      assert.deepEqual([rot.status, rot.body], [200, { keyVersion: 1 }]);
      const rst = await t.admin('POST', `/v1/admin/instances/${reg.body.id}/reset-boot`, { note: 'stopped' });
      assert.deepEqual([rst.status, rst.body], [200, { hadActiveBoot: false }]);
      const after = await t.admin('GET', `/v1/admin/instances/${reg.body.id}`);
      assert.deepEqual(after.body.policy, { ...GOOD_POLICY, allowSmt: true });
      assert.equal(after.body.keyVersions.length, 1);
    });

    it('reads the audit log in pages and verifies its chain', async () => {
      const p1 = await t.admin('GET', '/v1/admin/audit?limit=2');
      assert.equal(p1.status, 200);
      assert.equal(p1.body.entries.length, 2);
      assert.equal(p1.body.next, p1.body.entries[1].seq);
      const p2 = await t.admin('GET', `/v1/admin/audit?after=${p1.body.next}&limit=1000`);
      assert.equal(p2.body.entries[0].seq, p1.body.next + 1);
      assert.equal(p2.body.entries[0].prevHash, p1.body.entries[1].hash);
      assert.equal(p2.body.next, null);
      const bad = await t.admin('GET', '/v1/admin/audit?limit=5000');
      assert.equal(bad.status, 400);
      const v = await t.admin('GET', '/v1/admin/audit/verify');
      assert.equal(v.body.ok, true);
      assert.equal(v.body.entries, p1.body.entries.length + p2.body.entries.length);
      assert.match(v.body.headHash, /^[0-9a-f]{64}$/);
    });
  });

  describe('operations', () => {
    it('/healthz, /metrics (releases and refusals by reason), /v1/openapi.json', async () => {
      assert.deepEqual((await t.call('GET', '/healthz')).body, { status: 'ok' });
      const m = await t.call('GET', '/metrics');
      assert.equal(m.status, 200);
      assert.match(m.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(m.body, /^vouchsafe_releases_total\{version="0\.2\.0"\} [1-9]/m);
      assert.match(
        m.body,
        /^vouchsafe_refusals_total\{operation="attest",code="ERR_REFUSED",reason="broker\.clone"\} [1-9]/m,
      );
      assert.match(
        m.body,
        /^vouchsafe_refusals_total\{operation="attest",code="ERR_POLICY_REJECTED",reason="snp\.measurement"\} [1-9]/m,
      );
      assert.match(m.body, /^# TYPE vouchsafe_commits_total counter$/m);

      const doc = (await t.call('GET', '/v1/openapi.json')).body;
      assert.equal(doc.openapi, '3.1.0');
      const ops: string[] = [];
      for (const [path, methods] of Object.entries<Json>(doc.paths)) {
        for (const [method, op] of Object.entries<Json>(methods)) {
          ops.push(`${method.toUpperCase()} ${path}`);
          assert.ok(op.responses['4XX'], `${path} documents its errors`);
          if (path.startsWith('/v1/admin/')) assert.deepEqual(op.security, [{ adminToken: [] }]);
          if (method === 'post' && !/rotate|revoke/.test(path))
            assert.ok(op.requestBody, `${path} has a body schema`);
        }
      }
      assert.deepEqual(ops.sort(), [
        'GET /healthz',
        'GET /metrics',
        'GET /v1/admin/audit',
        'GET /v1/admin/audit/verify',
        'GET /v1/admin/credentials',
        'GET /v1/admin/instances',
        'GET /v1/admin/instances/{id}',
        'GET /v1/broker-key',
        'GET /v1/openapi.json',
        'POST /v1/admin/credentials',
        'POST /v1/admin/credentials/{id}/revoke',
        'POST /v1/admin/instances',
        'POST /v1/admin/instances/{id}/reset-boot',
        'POST /v1/admin/instances/{id}/rotate-key',
        'POST /v1/admin/token-keys/rotate',
        'POST /v1/attest',
        'POST /v1/challenge',
        'POST /v1/commit',
        'POST /v1/end',
        'POST /v1/heartbeat',
        'PUT /v1/admin/instances/{id}/new-launch',
        'PUT /v1/admin/instances/{id}/policy',
      ]);
      assert.equal(
        doc.paths['/v1/attest'].post.requestBody.content['application/json'].schema.additionalProperties,
        false,
      );
      assert.deepEqual(Object.keys(doc.components.schemas.Error.properties).sort(), [
        'code',
        'failures',
        'message',
        'reason',
      ]);
    });

    it('every error code has one status', () => {
      for (const code of Object.values(ErrorCode)) assert.ok(STATUS_BY_CODE[code], code);
    });
  });
});
