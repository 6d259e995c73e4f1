/**
 * Who may do what (docs/access.md), over a real socket, for EVERY route the server has: the table below
 * must hold a case for each credentialed route (a new route without one fails here) and each public route
 * must be listed as public. For every credentialed route: no credential is 401; each role is allowed or
 * refused as the route declares; a credential for project A cannot see or touch project B (an instance of
 * B is a 404 identical to a missing one; lists leave B out); changes are audited with the credential id.
 */
import assert from 'node:assert/strict';

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { declaredRoutes, declareScope } from '../../src/api/access.js';
import type { RoleAuth } from '../../src/api/route-auth.js';
import { routeConfig } from '../../src/api/route-book.js';
import { buildBrokerServer } from '../../src/api/server.js';
import { roleAllows } from '../../src/broker/credentials.js';
import { PlatformCa } from '../../src/ca/index.js';
import { sharedSimChain } from '../../src/sim/snp/index.js';
import type { CredentialRole } from '../../src/store/types.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { type BrokerStack, GOOD_POLICY, type Json, startBrokerStack } from '../helpers/broker.js';

const ROLES: readonly CredentialRole[] = ['read', 'operate', 'admin', 'host'];

/** The ids a case builds its request from. */
interface Ids {
  /** An instance of the caller's project (A). */
  readonly mine: string;
  /** An instance of project B. */
  readonly theirs: string;
  /** A credential that may be revoked. */
  readonly victim: () => Promise<string>;
}

interface Request {
  readonly path: string;
  readonly body?: unknown;
}

/** How to call a route on A's side (`own`) and, for a route scoped to a resource, on B's (`other`). */
interface Case {
  readonly own: (ids: Ids) => Promise<Request> | Request;
  readonly other?: (ids: Ids) => Promise<Request> | Request;
  /**
   * The route refuses this request's body after access is granted (the CA relays need real evidence): an
   * allowed caller gets past authorization (not 401/403) rather than a 2xx.
   */
  readonly bodyRefused?: boolean;
  /**
   * The route learns the project only from verified evidence (the CA relays find the instance by the
   * report's HOST_DATA): its isolation test is the named file, which shows another project's host refused.
   */
  readonly isolationIn?: string;
}

let n = 0;
const registration = (project: string) => ({
  project,
  zone: 'z1',
  instanceId: `acc-${Date.now()}-${++n}`,
  instanceName: `vm-${n}`,
  policy: GOOD_POLICY,
});

const CA_ISOLATION = 'test/api/ca-service.test.ts';

const CASES: Readonly<Record<string, Case>> = {
  'POST /v1/admin/instances': {
    own: () => ({ path: '/v1/admin/instances', body: registration('pa') }),
    other: () => ({ path: '/v1/admin/instances', body: registration('pb') }),
  },
  'GET /v1/admin/instances': { own: () => ({ path: '/v1/admin/instances' }) },
  'GET /v1/admin/instances/:id': {
    own: (i) => ({ path: `/v1/admin/instances/${i.mine}` }),
    other: (i) => ({ path: `/v1/admin/instances/${i.theirs}` }),
  },
  'PUT /v1/admin/instances/:id/policy': {
    own: (i) => ({ path: `/v1/admin/instances/${i.mine}/policy`, body: { policy: GOOD_POLICY } }),
    other: (i) => ({ path: `/v1/admin/instances/${i.theirs}/policy`, body: { policy: GOOD_POLICY } }),
  },
  'PUT /v1/admin/instances/:id/new-launch': {
    own: (i) => ({ path: `/v1/admin/instances/${i.mine}/new-launch`, body: { newLaunch: 'refuse' } }),
    other: (i) => ({ path: `/v1/admin/instances/${i.theirs}/new-launch`, body: { newLaunch: 'refuse' } }),
  },
  'POST /v1/admin/instances/:id/rotate-key': {
    own: (i) => ({ path: `/v1/admin/instances/${i.mine}/rotate-key` }),
    other: (i) => ({ path: `/v1/admin/instances/${i.theirs}/rotate-key` }),
  },
  'POST /v1/admin/instances/:id/reset-boot': {
    own: (i) => ({ path: `/v1/admin/instances/${i.mine}/reset-boot`, body: { note: 'vm stopped' } }),
    other: (i) => ({ path: `/v1/admin/instances/${i.theirs}/reset-boot`, body: {} }),
  },
  'GET /v1/admin/audit': { own: () => ({ path: '/v1/admin/audit?limit=1000' }) },
  'GET /v1/admin/audit/verify': { own: () => ({ path: '/v1/admin/audit/verify' }) },
  'POST /v1/admin/token-keys/rotate': { own: () => ({ path: '/v1/admin/token-keys/rotate' }) },
  'POST /v1/admin/credentials': {
    own: () => ({ path: '/v1/admin/credentials', body: { name: 'x', role: 'read', projects: ['pa'] } }),
  },
  'GET /v1/admin/credentials': { own: () => ({ path: '/v1/admin/credentials' }) },
  'POST /v1/admin/credentials/:id/revoke': {
    own: async (i) => ({ path: `/v1/admin/credentials/${await i.victim()}/revoke` }),
  },
  // The platform CA's relays (src/api/routes-ca.ts): the instance is found from the evidence, inside.
  'POST /v1/ca/nonce': {
    own: () => ({ path: '/v1/ca/nonce', body: { call: 'ek' } }),
    isolationIn: CA_ISOLATION,
  },
  'POST /v1/ca/certify-ek': {
    own: () => ({ path: '/v1/ca/certify-ek', body: { nonce: 'AA==', report: 'AA==', manifest: 'AA==' } }),
    bodyRefused: true,
    isolationIn: CA_ISOLATION,
  },
  'POST /v1/ca/certify-ak': {
    own: () => ({
      path: '/v1/ca/certify-ak',
      body: { nonce: 'AA==', report: 'AA==', manifest: 'AA==', csr: 'AA==' },
    }),
    bodyRefused: true,
    isolationIn: CA_ISOLATION,
  },
};

/** Routes anyone may call: the guest API, the KBS, health, metrics, OpenAPI, the JWKS. */
const PUBLIC = new Set([
  'GET /healthz',
  'HEAD /healthz',
  'GET /metrics',
  'HEAD /metrics',
  'GET /v1/openapi.json',
  'HEAD /v1/openapi.json',
  'GET /v1/broker-key',
  'HEAD /v1/broker-key',
  'POST /v1/challenge',
  'POST /v1/attest',
  'POST /v1/commit',
  'POST /v1/heartbeat',
  'POST /v1/end',
  'POST /kbs/v0/auth',
  'POST /kbs/v0/attest',
  'GET /kbs/v0/resource/:repository/:type/:tag',
  'HEAD /kbs/v0/resource/:repository/:type/:tag',
  'GET /kbs/v0/.well-known/jwks',
  'HEAD /kbs/v0/.well-known/jwks',
  'GET /.well-known/jwks.json',
  'HEAD /.well-known/jwks.json',
  'GET /v1/ca/chain',
  'HEAD /v1/ca/chain',
  'GET /v1/ca/crl',
  'HEAD /v1/ca/crl',
]);

/** An allowed caller: a 2xx, or past authorization when the case's body is refused by the route. */
function assertAllowed(c: Case, r: { status: number; body: Json }): void {
  if (c.bodyRefused) {
    assert.ok(
      !/^api\.(admin|auth)\./.test(String(r.body.reason ?? '')),
      `${r.status} ${JSON.stringify(r.body)}`,
    );
  } else {
    assert.ok(r.status >= 200 && r.status < 300, `${r.status} ${JSON.stringify(r.body)}`);
  }
}

const METHOD = (key: string) => key.split(' ')[0]!;

describe('access control: every route, every role, every project', () => {
  let s: BrokerStack;
  /** Tokens by role, each for project A only; `all` is an admin for every project. */
  const tokenA = new Map<CredentialRole, string>();
  const idOf = new Map<string, string>();
  let allAdmin: string;
  let ids: Ids;

  const as = (token: string | undefined, method: string, r: Request) =>
    s.call(method, r.path, r.body, token === undefined ? {} : { authorization: `Bearer ${token}` });

  before(async () => {
    // Rate limits off: this suite sends many refused credentials on purpose (rate-limits.test.ts tests them).
    const chain = await sharedSimChain('Milan');
    const caDir = join(mkdtempSync(join(tmpdir(), 'vouchsafe-access-ca-')), 'ca');
    const ca = await PlatformCa.init({
      dir: caDir,
      config: { snp: { trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }], policy: {} } },
    });
    await ca.close();
    s = await startBrokerStack({
      identity: { project: 'pa', zone: 'z1' },
      tmpPrefix: 'vouchsafe-access-',
      broker: { rateLimits: false, ca: { dir: caDir, rateLimit: false } },
    });
    for (const role of ROLES) {
      const r = await s.admin('POST', '/v1/admin/credentials', {
        name: `${role} of pa`,
        role,
        projects: ['pa'],
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      tokenA.set(role, r.body.token);
      idOf.set(r.body.token, r.body.credential.id);
    }
    const all = await s.admin('POST', '/v1/admin/credentials', {
      name: 'ops',
      role: 'admin',
      projects: ['*'],
    });
    allAdmin = all.body.token;
    idOf.set(allAdmin, all.body.credential.id);
    const mine = (await s.register({ project: 'pa' })).id;
    const theirs = (await s.register({ project: 'pb' })).id;
    ids = {
      mine,
      theirs,
      victim: async () =>
        (await s.admin('POST', '/v1/admin/credentials', { name: 'victim', role: 'read', projects: ['pa'] }))
          .body.credential.id,
    };
  });
  after(() => s?.close());

  it('every route declares its auth; every credentialed route has a case here and every public one is listed', () => {
    const routes = declaredRoutes(s.b.app);
    assert.ok(routes.length > 20);
    const seen = new Set<string>();
    for (const r of routes) {
      const key = `${r.method} ${r.url}`;
      seen.add(key);
      assert.notEqual(r.auth, undefined, `${key} declares no auth`);
      if (r.auth === 'public') assert.ok(PUBLIC.has(key), `${key} is public but not listed as public`);
      else if (r.method !== 'HEAD') assert.ok(CASES[key], `${key} needs a case in test/api/access.test.ts`);
    }
    for (const key of [...Object.keys(CASES), ...PUBLIC]) assert.ok(seen.has(key), `${key} is not a route`);
  });

  for (const [key, c] of Object.entries(CASES)) {
    describe(key, () => {
      const auth = () => {
        const r = declaredRoutes(s.b.app).find((x) => `${x.method} ${x.url}` === key);
        return r?.auth as RoleAuth;
      };

      it('no credential, a wrong one, or a revoked one: 401', async () => {
        const req = await c.own(ids);
        for (const token of [undefined, 'x'.repeat(40), `vsc_0000000000000000_${'A'.repeat(43)}`]) {
          const r = await as(token, METHOD(key), req);
          assert.equal(r.status, 401, `${token}: ${JSON.stringify(r.body)}`);
          assert.equal(r.body.reason, 'api.admin.unauthorized');
        }
      });

      for (const role of ROLES) {
        it(`role ${role} (projects: pa)`, async () => {
          const a = auth();
          const r = await as(tokenA.get(role), METHOD(key), await c.own(ids));
          if (!roleAllows(role, a.role)) {
            assert.equal(r.status, 403, JSON.stringify(r.body));
            assert.equal(r.body.reason, 'api.auth.role');
          } else if (a.project === 'all') {
            assert.equal(r.status, 403, JSON.stringify(r.body));
            assert.equal(r.body.reason, 'api.auth.project');
          } else {
            assertAllowed(c, r);
          }
        });
      }

      it('an admin for every project may call it', async () => {
        assertAllowed(c, await as(allAdmin, METHOD(key), await c.own(ids)));
      });

      it('project isolation: B is invisible to a credential for A', async () => {
        const a = auth();
        // The weakest role the route allows, for project A.
        const role = ROLES.find((x) => roleAllows(x, a.role))!;
        const token = tokenA.get(role)!;
        if (c.isolationIn) {
          assert.ok(existsSync(c.isolationIn), `${key}: ${c.isolationIn} does not exist`);
          assert.match(readFileSync(c.isolationIn, 'utf8'), /another project|other project/i);
        } else if (c.other) {
          const r = await as(token, METHOD(key), await c.other(ids));
          if (key === 'POST /v1/admin/instances') {
            assert.equal(r.status, 403, JSON.stringify(r.body));
            assert.equal(r.body.reason, 'api.auth.project');
          } else {
            // Exactly what a missing instance gets: its existence does not leak.
            const missing = await as(token, METHOD(key), {
              ...(await c.other(ids)),
              path: (await c.other(ids)).path.replace(ids.theirs, 'no-such-instance'),
            });
            assert.equal(r.status, 404, JSON.stringify(r.body));
            assert.equal(r.body.reason, 'broker.instance_not_found');
            assert.equal(missing.status, 404);
            assert.deepEqual(
              { ...r.body, message: r.body.message.replace(ids.theirs, '?') },
              { ...missing.body, message: missing.body.message.replace('no-such-instance', '?') },
            );
          }
        } else if (a.project === 'listed') {
          const r = await as(token, METHOD(key), await c.own(ids));
          assert.equal(r.status, 200, JSON.stringify(r.body));
          const text = JSON.stringify(r.body);
          assert.ok(!text.includes(ids.theirs), `${key} shows B's instance to A`);
          assert.ok(!text.includes('"pb"'), `${key} shows project B to A`);
          assert.ok(text.includes(ids.mine), `${key} should show A's instance`);
        } else {
          assert.equal(a.project, 'all', `${key}: a resource-scoped route needs an "other" case`);
          const r = await as(token, METHOD(key), await c.own(ids));
          assert.equal(r.status, 403);
          assert.equal(r.body.reason, 'api.auth.project');
        }
      });
    });
  }

  it('a host credential ends boots but cannot register, read instances or keys', async () => {
    const host = tokenA.get('host')!;
    assert.equal(
      (await as(host, 'POST', { path: `/v1/admin/instances/${ids.mine}/reset-boot`, body: {} })).status,
      200,
    );
    for (const [m, r] of [
      ['POST', { path: '/v1/admin/instances', body: registration('pa') }],
      ['GET', { path: '/v1/admin/instances' }],
      ['GET', { path: `/v1/admin/instances/${ids.mine}` }],
      ['POST', { path: `/v1/admin/instances/${ids.mine}/rotate-key` }],
      ['GET', { path: '/v1/admin/audit' }],
    ] as const) {
      assert.equal((await as(host, m, r)).status, 403, `${m} ${r.path}`);
    }
  });

  it('every change is audited with the credential id; the log stays intact', async () => {
    const op = tokenA.get('operate')!;
    assert.equal((await as(op, 'POST', { path: `/v1/admin/instances/${ids.mine}/rotate-key` })).status, 200);
    // A refused change by an authenticated caller is audited too (here: B's instance, answered 404).
    assert.equal(
      (await as(op, 'POST', { path: `/v1/admin/instances/${ids.theirs}/rotate-key` })).status,
      404,
    );
    // Not a Broker decision (token keys): audited by the access layer.
    assert.equal((await as(allAdmin, 'POST', { path: '/v1/admin/token-keys/rotate' })).status, 200);
    const log = (await s.admin('GET', '/v1/admin/audit?limit=1000')).body.entries as Json[];
    const rotate = log.filter((e) => e.kind === 'rotate' && e.details.actor === idOf.get(op));
    assert.ok(rotate.some((e) => e.instance === ids.mine && e.decision === 'accept'));
    assert.ok(
      log.some(
        (e) =>
          e.kind === 'admin' &&
          e.decision === 'refuse' &&
          e.details.actor === idOf.get(op) &&
          e.details.target === ids.theirs &&
          e.reasons[0] === 'broker.instance_not_found',
      ),
    );
    // Its own entry (token_key_rotate) if the KBS writes one, else the access layer's.
    assert.ok(
      log.some(
        (e) =>
          e.decision === 'accept' &&
          e.details.actor === idOf.get(allAdmin) &&
          (e.kind === 'token_key_rotate' || e.details.operation === 'POST /v1/admin/token-keys/rotate'),
      ),
      JSON.stringify(log.slice(-3)),
    );
    // The bootstrap token's own actions name it.
    assert.ok(log.some((e) => e.kind === 'register' && e.details.actor === 'bootstrap'));
    assert.ok(log.some((e) => e.kind === 'credential_create' && e.details.actor === 'bootstrap'));
    // Nothing without an actor but guest decisions.
    for (const e of log) if (e.kind !== 'release') assert.equal(typeof e.details.actor, 'string', e.kind);
    assert.equal((await s.admin('GET', '/v1/admin/audit/verify')).body.ok, true);
  });

  it('a revoked credential is refused at its next request', async () => {
    const r = await s.admin('POST', '/v1/admin/credentials', {
      name: 'temp',
      role: 'read',
      projects: ['pa'],
    });
    const token = r.body.token as string;
    assert.equal((await as(token, 'GET', { path: '/v1/admin/instances' })).status, 200);
    const listed = (await s.admin('GET', '/v1/admin/credentials')).body.credentials as Json[];
    assert.ok(listed.every((c) => !('secretHash' in c) && !('token' in c)));
    assert.equal((await s.admin('POST', `/v1/admin/credentials/${r.body.credential.id}/revoke`)).status, 200);
    assert.equal((await as(token, 'GET', { path: '/v1/admin/instances' })).status, 401);
    assert.equal((await s.admin('POST', '/v1/admin/credentials/ffffffffffffffff/revoke')).status, 404);
  });
});

describe('route declarations are enforced at start-up', () => {
  const server = () =>
    buildBrokerServer({
      broker: {} as never,
      signingKey: newKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
      adminToken: 'a'.repeat(64),
      logger: pino({ level: 'silent' }),
      checkPolicy: () => {},
      health: async () => ({}),
    });

  it('a route that declares nothing stops the server from starting', async () => {
    const app = server();
    app.get('/v1/admin/forgotten', async () => ({}));
    await assert.rejects(async () => app.ready(), /without an auth declaration.*GET \/v1\/admin\/forgotten/);
  });

  it('a malformed declaration stops it too', async () => {
    const app = server();
    app.get('/v1/admin/odd', { config: { auth: { role: 'root', project: 'all' } } }, async () => ({}));
    await assert.rejects(async () => app.ready(), /auth must be/);
  });

  it('a route declared in config, or by declareScope in its plugin, starts; admin: true is role admin for every project', async () => {
    const app = server();
    app.get('/v1/admin/x', { config: { auth: { role: 'read', project: 'all' } } }, async () => ({}));
    await app.register(
      async (scope) => {
        declareScope(scope, { selfAuthenticated: 'test session' });
        scope.get('/page', async () => ({}));
      },
      { prefix: '/ui' },
    );
    await app.ready();
    const routes = declaredRoutes(app);
    assert.deepEqual(routes.find((r) => r.url === '/ui/page' && r.method === 'GET')?.auth, {
      selfAuthenticated: 'test session',
    });
    assert.equal((await app.inject({ method: 'GET', url: '/v1/admin/x' })).statusCode, 401);
    await app.close();
    assert.deepEqual(routeConfig({ admin: true }), { auth: { role: 'admin', project: 'all' } });
    assert.deepEqual(routeConfig({}), {});
  });
});
