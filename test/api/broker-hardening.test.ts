/**
 * Broker and protocol hardening through the HTTP API (docs/security-model.md "Key release"): 0.1.0/0.2.0
 * binding confusion, identity byte lengths, and the per-source limit on refusals that name nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { RateLimited, RefusalLimiter } from '../../src/api/refusal-limiter.js';
import {
  computeReportData,
  encodeStateCounterParam,
  REPORT_DATA_DOMAIN_BYTES,
} from '../../src/formats/aproxy/report-data.js';
import { parseSecretPayload } from '../../src/formats/aproxy/secret-payload.js';
import { unwrapSecret } from '../../src/native/jwe-ecdh-es.js';
import { generateP521KeyPair, p521PointOf } from '../../src/native/p521.js';
import { startTestBroker, type TestBroker } from './helpers.js';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

describe('broker hardening (HTTP API)', () => {
  let t: TestBroker;
  before(async () => {
    t = await startTestBroker();
  });
  after(() => t?.close());

  describe('0.1.0 / 0.2.0 binding confusion', () => {
    it('a 0.1.0 report over challenge||u64le(counter) is refused when presented as 0.2.0 with that counter', async () => {
      const inst = await t.register();
      const fw = t.firmware(inst.hostData);
      // The instance runs 0.2.0 and has committed counter 1 with the digest of its state file, so a 0.1.0
      // boot (which states no counter) would be refused as a rollback.
      const first = await t.attestBody(fw, { stateCounter: null });
      const r = await t.call('POST', '/v1/attest', first.body);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const payload = parseSecretPayload(
        unwrapSecret(first.privateKey, {
          decryption: {
            epk: { x: bytes(r.body.decryption.epk.x), y: bytes(r.body.decryption.epk.y) },
            wrappedCek: bytes(r.body.decryption.wrappedCek),
            aad: bytes(r.body.decryption.aad),
            iv: bytes(r.body.decryption.iv),
            tag: bytes(r.body.decryption.tag),
          },
          ciphertext: bytes(r.body.ciphertext),
        }),
      );
      const digest = new Uint8Array(32).fill(0x5d);
      const boot = { bootId: payload.bootId, commitToken: b64(payload.commitToken) };
      const commit = { ...boot, counter: '1', stateDigest: b64(digest), challenge: first.body.challenge };
      assert.equal((await t.call('POST', '/v1/commit', commit)).status, 200);
      assert.equal((await t.call('POST', '/v1/end', boot)).status, 200);
      const v1 = await t.attestBody(fw, { version: '0.1.0' });
      const rollback = await t.call('POST', '/v1/attest', v1.body);
      assert.deepEqual([rollback.status, rollback.body.reason], [409, 'broker.rollback']);

      // The attack: the proxy takes a 0.2.0 challenge C from the broker and hands an unmodified 0.1.0 guest
      // C || u64le(c) with the standard params; the guest hashes SHA-512(x || y || C || u64le(c)).
      const c = await t.call('POST', '/v1/challenge', { tee: 'snp', version: '0.2.0' });
      const challenge = new Uint8Array(Buffer.from(c.body.challenge, 'base64'));
      const key = p521PointOf((await generateP521KeyPair()).publicKey);
      const proxyChallenge = Uint8Array.from([...challenge, ...encodeStateCounterParam(1n)]);
      const guestRd = computeReportData(['EcPublicKeyBytes', 'Challenge'], {
        challenge: proxyChallenge,
        key,
      });
      // Under the old 0.2.0 binding (no domain label) that was exactly the 0.2.0 REPORT_DATA for counter 1.
      assert.deepEqual(
        computeReportData(['EcPublicKeyBytes', 'Challenge', 'StateCounter'], {
          challenge,
          key,
          stateCounter: 1n,
        }),
        guestRd,
      );
      const report = fw.getReport(guestRd);
      const forged = await t.call('POST', '/v1/attest', {
        tee: 'snp',
        version: '0.2.0',
        report: b64(report.report),
        certTable: b64(report.certTable),
        challenge: c.body.challenge,
        key: { x: b64(key.x), y: b64(key.y) },
        stateCounter: '1',
        stateDigest: b64(digest),
      });
      assert.deepEqual([forged.status, forged.body.reason], [403, 'broker.report_data_mismatch']);
      // The 0.2.0 params start with the domain label; 0.1.0's are unchanged (what COCONUT-SVSM hashes).
      assert.deepEqual(c.body.params, [
        'Domain',
        'EcPublicKeyBytes',
        'Challenge',
        'StateCounter',
        'StateDigest',
      ]);
      const c1 = await t.call('POST', '/v1/challenge', { tee: 'snp', version: '0.1.0' });
      assert.deepEqual(c1.body.params, ['EcPublicKeyBytes', 'Challenge']);
      assert.ok(REPORT_DATA_DOMAIN_BYTES[0]! > 1, 'the label cannot begin a P-521 coordinate');
    });
  });

  describe('identity byte lengths at registration', () => {
    const register = (o: Record<string, string>) =>
      t.admin('POST', '/v1/admin/instances', {
        project: 'p',
        zone: 'z',
        instanceId: `i-${randomBytes(4).toString('hex')}`,
        instanceName: 'n',
        policy: {},
        ...o,
      });

    it('refuses a field over 256 UTF-8 bytes even when it has at most 256 characters', async () => {
      // 255 three-byte characters: 765 bytes, which the 0.2.0 answer (<= 256 bytes a field) cannot carry.
      const wide = await register({ instanceName: '\u20ac'.repeat(255) });
      assert.deepEqual([wide.status, wide.body.reason], [400, 'broker.identity']);
      const long = await register({ instanceName: 'x'.repeat(257) });
      assert.deepEqual([long.status, long.body.code], [400, 'ERR_MALFORMED']);
      const ctl = await register({ instanceName: 'a\u0001b' });
      assert.equal(ctl.status, 400);
      const ok = await register({ instanceName: '\u20ac'.repeat(85), zone: 'z'.repeat(256) });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
    });
  });

  describe('refusals that name nothing', () => {
    it('are not audited; a source that keeps sending them gets 429 with Retry-After', async () => {
      const head = (await t.admin('GET', '/v1/admin/audit/verify')).body;
      const before = await t.b.broker.readAudit(0, 100_000);
      const unknown = {
        bootId: '00000000-0000-4000-8000-000000000000',
        commitToken: b64(new Uint8Array(32)),
      };
      let refused = 0;
      let limited: { status: number; headers: Headers; body: { reason: string } } | undefined;
      // The default budget is 64 refusals, refilled at one a second: keep going until the limiter answers.
      const t0 = Date.now();
      for (let i = 0; i < 1000 && !limited; i++) {
        const r = await t.call('POST', '/v1/heartbeat', unknown);
        if (r.status === 429) limited = r;
        else {
          assert.deepEqual([r.status, r.body.reason], [409, 'broker.boot_unknown']);
          refused++;
        }
      }
      assert.ok(limited, 'turned away');
      // At most the budget and what refilled meanwhile (earlier tests in this file charged a few from the same
      // address); a slow machine refills more, so the bound grows with the time the loop took.
      const refills = Math.ceil((Date.now() - t0) / 1000);
      assert.ok(refused >= 32 && refused <= 64 + 1 + refills, `${refused} refusals before the limit`);
      assert.equal(limited.body.reason, 'api.rate_limited');
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      // Nothing of it reached the audit log.
      const afterEntries = await t.b.broker.readAudit(0, 100_000);
      assert.equal(afterEntries.length, before.length);
      assert.ok(head);
      const metrics = await (await t.call('GET', '/metrics')).body;
      assert.match(String(metrics), /vouchsafe_refusals_total\{[^}]*reason="api\.rate_limited"\} [1-9]/);
      assert.match(String(metrics), /vouchsafe_refusals_total\{[^}]*reason="broker\.boot_unknown"\} [1-9]/);
    });

    it('the limiter: a bucket per source, refilled with time, forgetting the least recent source', () => {
      let now = 0;
      const l = new RefusalLimiter({ burst: 3, perMinute: 60, maxSources: 2, now: () => now });
      for (let i = 0; i < 3; i++) {
        l.check('a');
        l.charge('a');
      }
      assert.throws(
        () => l.check('a'),
        (e: unknown) => e instanceof RateLimited && e.retryAfterSeconds === 1,
      );
      l.check('b'); // another source is not affected
      now += 1000; // one refusal forgiven per second
      l.check('a');
      l.charge('a');
      assert.throws(() => l.check('a'), RateLimited);
      l.charge('b');
      l.charge('c'); // three sources, room for two: 'a' (least recently charged) is forgotten
      l.check('a');
    });
  });
});
