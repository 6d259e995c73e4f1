/**
 * Request rate limits as configuration (src/api/rate-limits.ts; docs/access.md "Rate limits"): each limit
 * turns requests away with 429 and a Retry-After, and the configuration parser refuses what it does not
 * know. The limiters' clock is the broker's, frozen here, so no bucket refills while a test runs, however
 * slow the machine.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_RATE_LIMITS, parseRateLimitConfig, RateLimits } from '../../src/api/rate-limits.js';
import { rejectsCode, throwsCode } from '../helpers/assert-error.js';
import { type Json, startTestBroker, type TestBroker } from './helpers.js';

const T0 = Date.now();
const frozen = () => T0;
const one = { burst: 1, perMinute: 1 };

function assert429(r: { status: number; body: Json; headers: Headers }): void {
  assert.equal(r.status, 429, JSON.stringify(r.body));
  const after = r.headers.get('retry-after');
  assert.match(after ?? '', /^[1-9][0-9]*$/, 'Retry-After in whole seconds');
  assert.equal(r.body.reason, 'api.rate_limited');
}

describe('rate limits per source', () => {
  let t: TestBroker;
  before(async () => {
    t = await startTestBroker({
      now: frozen,
      rateLimits: {
        challenge: { perSource: { burst: 2, perMinute: 1 } },
        attest: { perSource: one, perInstance: false },
        kbsAuth: { perSource: one },
        kbsAttest: { perSource: one },
        adminAuthFailures: { perSource: { burst: 2, perMinute: 1 } },
      },
    });
  });
  after(() => t?.close());

  it('challenge', async () => {
    const body = { tee: 'snp', version: '0.2.0' };
    assert.equal((await t.call('POST', '/v1/challenge', body)).status, 200);
    assert.equal((await t.call('POST', '/v1/challenge', body)).status, 200);
    assert429(await t.call('POST', '/v1/challenge', body));
  });

  it('attest (counted before the body is even validated)', async () => {
    assert.equal((await t.call('POST', '/v1/attest', {})).status, 400);
    assert429(await t.call('POST', '/v1/attest', {}));
  });

  it('KBS auth and KBS attest, as problem documents', async () => {
    for (const path of ['/kbs/v0/auth', '/kbs/v0/attest']) {
      const first = await t.call('POST', path, {});
      assert.notEqual(first.status, 429, path);
      const r = await t.call('POST', path, {});
      assert.equal(r.status, 429, `${path}: ${JSON.stringify(r.body)}`);
      assert.match(r.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
      assert.match(r.body.type, /rate-limited$/);
      assert.equal(r.body.reason, 'api.rate_limited');
    }
  });

  it('failed admin authentications: over the limit even the right token waits', async () => {
    const bad = { authorization: `Bearer ${'x'.repeat(64)}` };
    assert.equal((await t.call('GET', '/v1/admin/instances', undefined, bad)).status, 401);
    assert.equal((await t.call('GET', '/v1/admin/instances', undefined, bad)).status, 401);
    assert429(await t.call('GET', '/v1/admin/instances', undefined, bad));
    assert429((await t.admin('GET', '/v1/admin/instances')) as never);
    const metrics = (await t.call('GET', '/metrics')).body as string;
    assert.match(
      metrics,
      /vouchsafe_refusals_total\{[^}]*operation="admin"[^}]*reason="api.rate_limited"[^}]*\} [1-9]/,
    );
  });
});

describe('rate limit per instance', () => {
  let t: TestBroker;
  before(async () => {
    t = await startTestBroker({
      now: frozen,
      rateLimits: {
        challenge: { perSource: false },
        attest: { perSource: false, perInstance: one },
        adminAuthFailures: { perSource: false },
      },
    });
  });
  after(() => t?.close());

  it("an instance's second release is turned away with 429, not audited; another instance is not affected", async () => {
    const inst = await t.register();
    const fw = t.firmware(inst.hostData);
    const first = await t.call('POST', '/v1/attest', (await t.attestBody(fw, { version: '0.1.0' })).body);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const before = (await t.admin('GET', '/v1/admin/audit?limit=1000')).body.entries.length;
    const again = await t.call('POST', '/v1/attest', (await t.attestBody(fw, { version: '0.1.0' })).body);
    assert.equal(again.status, 429, JSON.stringify(again.body));
    assert.match(again.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    assert.equal((await t.admin('GET', '/v1/admin/audit?limit=1000')).body.entries.length, before);

    const other = await t.register();
    const fw2 = t.firmware(other.hostData);
    const r = await t.call('POST', '/v1/attest', (await t.attestBody(fw2, { version: '0.1.0' })).body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
});

describe('rate-limit configuration', () => {
  it('parses a file over the defaults; false turns a limit off', () => {
    const c = parseRateLimitConfig({
      attest: { perInstance: { burst: 10, perMinute: 30 } },
      challenge: { perSource: false },
    });
    assert.deepEqual(c, {
      attest: { perInstance: { burst: 10, perMinute: 30 } },
      challenge: { perSource: false },
    });
    assert.ok(DEFAULT_RATE_LIMITS.adminAuthFailures.perSource.burst > 0);
  });

  it('refuses unknown sections and keys, non-integers and out-of-range numbers', () => {
    for (const bad of [
      null,
      [],
      'x',
      { chalenge: {} },
      { challenge: { perInstance: one } },
      { challenge: { perSource: { burst: 1 } } },
      { challenge: { perSource: { burst: 0, perMinute: 1 } } },
      { challenge: { perSource: { burst: 1.5, perMinute: 1 } } },
      { challenge: { perSource: { burst: 1, perMinute: 1, extra: 1 } } },
      { challenge: { perSource: true } },
      { __proto__: { x: 1 }, constructor: {} },
    ]) {
      throwsCode(() => parseRateLimitConfig(bad), 'ERR_INVALID_ARGUMENT', 'api.rate_limits');
    }
  });

  it('a limiter turns a key away once its burst is spent, and only that key', async () => {
    const l = new RateLimits({ challenge: { perSource: { burst: 2, perMinute: 1 } } }, frozen);
    l.take('challenge', 'a');
    l.take('challenge', 'a');
    await rejectsCode(async () => l.take('challenge', 'a'), 'ERR_REFUSED', 'api.rate_limited');
    l.take('challenge', 'b');
  });
});
