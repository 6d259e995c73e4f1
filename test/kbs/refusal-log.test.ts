/**
 * The KBS routes log each refusal as the /v1 routes do: a typed refusal at info with its code, reason and
 * status; an untyped error (ours) at error level. What must never reach the log: the error message, a policy
 * failure's expected and actual values, the request body. The broker behind the routes is a stub that
 * refuses as told, so each case is one catch site of src/kbs/routes.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { pino } from 'pino';
import { CollateralUnavailable, ErrorCode, PolicyRejected } from '../../src/errors.js';
import type { KbsBroker, KbsTokens } from '../../src/kbs/deps.js';
import { kbsRoutes } from '../../src/kbs/index.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { IndependentKbsClient, makeTeeKey } from './independent-client.js';

const SECRET_EXPECTED = 'expected-value-that-must-not-be-logged';
const SECRET_ACTUAL = 'actual-value-that-must-not-be-logged';
const MESSAGE_ONLY = 'message-text-that-must-not-be-logged';

let refusal: () => Error = () => new Error('unset');
const lines: Record<string, unknown>[] = [];
const raw: string[] = [];
let app: { close(): Promise<unknown> } | undefined;
let base: string;
let fw: SimSnpFirmware;

before(async () => {
  fw = new SimSnpFirmware(await sharedSimChain('Milan'), {
    measurement: SIM_DEFAULT_MEASUREMENT,
    policy: SIM_DEFAULT_POLICY,
    hostData: new Uint8Array(32),
  });
  const broker: KbsBroker = {
    issueChallenge: async () => ({
      challenge: new Uint8Array(randomBytes(32)),
      expiresAt: Date.now() + 60_000,
    }),
    attest: async () => {
      throw refusal();
    },
    readResource: async () => {
      throw refusal();
    },
  };
  const logger = pino(
    { level: 'info' },
    {
      write: (s: string) => {
        raw.push(s);
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  const server = Fastify({ loggerInstance: logger });
  app = server;
  await server.register(kbsRoutes, { broker, tokens: {} as KbsTokens });
  base = await server.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await app?.close();
});

/** The refusal lines logged since `since`. */
const refusedSince = (since: number) => lines.slice(since).filter((l) => l.msg === 'kbs request refused');

async function attestRefused(): Promise<number> {
  const c = new IndependentKbsClient(base);
  assert.equal((await c.auth()).status, 200);
  const body = await c.attestation({
    key: await makeTeeKey('P-256'),
    evidence: async (rd) => ({ report: (await fw.getReport(rd)).report }),
  });
  return (await c.attest(body)).status;
}

describe('KBS refusals are logged with code and reason only', () => {
  it('a policy refusal at /attest: code, reason and status; no expected/actual values, no message', async () => {
    refusal = () =>
      new PolicyRejected([
        {
          code: 'policy.measurement',
          message: MESSAGE_ONLY,
          expected: SECRET_EXPECTED,
          actual: SECRET_ACTUAL,
        },
      ]);
    const since = lines.length;
    const rawSince = raw.length;
    assert.equal(await attestRefused(), 401);
    const got = refusedSince(since);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.code, ErrorCode.PolicyRejected);
    assert.equal(got[0]!.reason, 'policy.measurement');
    assert.equal(got[0]!.status, 401);
    assert.equal(got[0]!.level, 30, 'info: a refusal is not a server fault');
    const text = raw.slice(rawSince).join('');
    for (const s of [SECRET_EXPECTED, SECRET_ACTUAL, MESSAGE_ONLY]) assert.ok(!text.includes(s), s);
  });

  it('a collateral refusal at /attest: its reason (what an operator needs to fix KDS or the cache)', async () => {
    refusal = () => new CollateralUnavailable('kds.offline_missing', MESSAGE_ONLY);
    const since = lines.length;
    assert.equal(await attestRefused(), 503);
    const got = refusedSince(since);
    assert.deepEqual(
      got.map((l) => [l.code, l.reason, l.status]),
      [[ErrorCode.CollateralUnavailable, 'kds.offline_missing', 503]],
    );
  });

  it('a session refusal at /resource (no cookie, no token) is logged too', async () => {
    const since = lines.length;
    const r = await new IndependentKbsClient(base).resource('default/key/1', { cookie: null });
    assert.equal(r.status, 401);
    assert.deepEqual(
      refusedSince(since).map((l) => l.reason),
      ['kbs.session.missing'],
    );
  });

  it("a body the parser refuses (bad JSON) is logged with fastify's code, not the body", async () => {
    const since = lines.length;
    const rawSince = raw.length;
    const res = await fetch(`${base}/kbs/v0/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"${MESSAGE_ONLY}`,
    });
    assert.equal(res.status, 400);
    const got = refusedSince(since);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.status, 400);
    assert.equal(typeof got[0]!.code, 'string');
    assert.ok(!raw.slice(rawSince).join('').includes(MESSAGE_ONLY));
  });

  it('an untyped error is ours: logged at error level, answered 500 with nothing of it', async () => {
    refusal = () => new Error('internal detail');
    const since = lines.length;
    assert.equal(await attestRefused(), 500);
    const errs = lines.slice(since).filter((l) => l.msg === 'internal error');
    assert.equal(errs.length, 1);
    assert.equal(errs[0]!.level, 50);
  });
});
