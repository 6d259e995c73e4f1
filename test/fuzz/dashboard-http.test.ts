/**
 * Every route of the operator dashboard (src/web), fuzzed in process through fastify `inject`, as
 * test/fuzz/http.test.ts does for the API (same oracle: a success or a typed refusal with a known `code`
 * and a dotted `reason`, never a 500; the dashboard logs "internal error" only with a 500): bodies grown from a valid seed,
 * odd content types, path parameters, query strings, and the session cookie, CSRF token and Origin each
 * right, wrong or absent. The route table comes from the server: a dashboard route with no seed here fails
 * the first test. Also the session-cookie reader (src/web/headers.ts readSessionCookie) on arbitrary
 * Cookie headers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { readSessionCookie } from '../../src/web/headers.js';
import { identity, softEk, testCa } from '../ca/fixtures.js';
import { type DashboardStack, startDashboardStack, type UiSession } from '../web/harness.js';
import {
  bytesFrom,
  CODES,
  type FuzzBudget,
  type FuzzRequest,
  fcOptions,
  hostileSegment,
  jsonFrom,
  REASON,
  routePath,
} from './kit.js';

// biome-ignore lint/suspicious/noExplicitAny: request seeds are arbitrary JSON
type Json = any;

const budget: FuzzBudget = { numRuns: 80, timeMs: 600 };

let s: DashboardStack;
let session: UiSession;
let instanceId: string;
let serial: string;
let cleanupCa: () => Promise<void>;

/** Valid bodies (or none) per route, keyed `METHOD path` as fastify prints it. */
const SEEDS: Record<string, Json[] | null> = {
  'GET /ui': null,
  'GET /ui/': null,
  'GET /ui/assets/:name': null,
  'POST /ui/api/session': [{ credential: 'x' }],
  'GET /ui/api/session': null,
  'POST /ui/api/session/end': [{}],
  'GET /ui/api/instances': null,
  'POST /ui/api/instances': [
    {
      project: 'p',
      zone: 'z',
      instanceId: 'i',
      instanceName: 'n',
      policy: { measurements: ['ab'.repeat(48)] },
    },
    { project: 'p', zone: 'z', instanceId: 'j', instanceName: 'n', tee: 'tdx', policy: {} },
  ],
  'GET /ui/api/instances/:id': null,
  'POST /ui/api/instances/:id/rotate-key': [{}],
  'POST /ui/api/instances/:id/reset-boot': [{ note: 'stopped' }, {}],
  'PUT /ui/api/instances/:id/policy': [{ policy: { measurements: 'any', vmpl: 0 } }],
  'GET /ui/api/audit': null,
  'GET /ui/api/audit/verify': null,
  'GET /ui/api/events': null,
  'GET /ui/api/metrics': null,
  'GET /ui/api/collateral': null,
  'POST /ui/api/policy/check': [
    { tee: 'snp', report: Buffer.alloc(1184, 2).toString('base64'), policy: {} },
    { report: '', certTable: 'AAAA', policy: { measurements: 'any' } },
  ],
  'GET /ui/api/certificates': null,
  'GET /ui/api/certificates/:serial': null,
  'POST /ui/api/certificates/:serial/revoke': [{ reason: 1 }, { reason: 0 }],
  'GET /ui/api/crl': null,
};

function routesOf(app: DashboardStack['b']['app']): string[] {
  const out: string[] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]!.depth >= depth) stack.pop();
    const path = (stack[stack.length - 1]?.path ?? '') + m[2]!;
    stack.push({ depth, path });
    for (const method of (m[3] ?? '').split(',').map((x) => x.trim())) {
      if (method && method !== 'HEAD' && path.startsWith('/ui')) out.push(`${method} ${path}`);
    }
  }
  return out.sort();
}

before(async () => {
  const ca = await testCa();
  await ca.ca.close();
  cleanupCa = ca.cleanup;
  // Sign-in failures unlimited: the fuzzer fails thousands, and signs in again after each route.
  s = await startDashboardStack({
    caDir: ca.dir,
    signInLimit: { max: Number.MAX_SAFE_INTEGER, windowMs: 1 },
  });
  session = await s.signIn();
  instanceId = (await s.register({ project: 'fuzz' })).id;
  serial = (await s.b.ca!.issueEk({ ekPublic: softEk('ecc').parsed.raw, identity: identity(9) })).serial;
});

after(async () => {
  await s?.close();
  await cleanupCa?.();
});

const segment = hostileSegment(['app.js', 'index.html']);

function requests(route: string): fc.Arbitrary<FuzzRequest> {
  const [method, path] = route.split(' ') as [string, string];
  const seeds = SEEDS[route];
  const seedTexts = (seeds ?? [{}]).map((x) => new Uint8Array(Buffer.from(JSON.stringify(x))));
  // The live feed never ends for a signed-in request: it is fuzzed without a session only.
  const stream = route === 'GET /ui/api/events';
  return fc
    .record({
      method: fc.oneof(
        { arbitrary: fc.constant(method), weight: 9 },
        { arbitrary: fc.constantFrom('PATCH', 'DELETE', 'PUT', 'POST'), weight: 1 },
      ),
      url: routePath(path, (n) => (n === 'id' ? instanceId : n === 'serial' ? serial : 'app.js'), segment),
      query: fc.option(
        fc.dictionary(
          fc.constantFrom('after', 'limit', 'decision', 'kind', 'instance', 'reason', 'x'),
          fc.oneof(segment, fc.integer().map(String), fc.constantFrom('accept', 'refuse')),
        ),
        { nil: undefined },
      ),
      contentType: fc.constantFrom(
        'application/json',
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        'application/x-www-form-urlencoded',
        '',
      ),
      cookie: stream
        ? fc.constantFrom(undefined, 'vouchsafe_session=AAAA', `vouchsafe_session=${'x'.repeat(80)}`)
        : fc.constantFrom(
            session.cookie,
            session.cookie,
            session.cookie,
            undefined,
            'vouchsafe_session=AAAA',
            `${session.cookie}x`,
          ),
      csrf: fc.constantFrom(session.csrf, session.csrf, undefined, '', `${session.csrf}x`),
      origin: fc.constantFrom(undefined, undefined, 'http://localhost', 'null', 'https://evil.example'),
      body: fc.oneof(
        { arbitrary: jsonFrom(seeds ?? [{}]).map((v) => JSON.stringify(v) ?? 'null'), weight: 5 },
        { arbitrary: bytesFrom(seedTexts, 256).map((b) => Buffer.from(b)), weight: 3 },
        { arbitrary: fc.constant(undefined), weight: 1 },
      ),
    })
    .map((r) => {
      const headers: Record<string, string> = {};
      if (r.contentType) headers['content-type'] = r.contentType;
      if (r.cookie) headers.cookie = r.cookie;
      if (r.csrf !== undefined) headers['x-csrf-token'] = r.csrf;
      if (r.origin) headers.origin = r.origin;
      const qs = r.query ? `?${new URLSearchParams(r.query).toString()}` : '';
      const hasBody = r.method !== 'GET' && r.body !== undefined;
      return { method: r.method, url: r.url + qs, headers, ...(hasBody ? { payload: r.body } : {}) };
    });
}

function checkAnswer(req: FuzzRequest, status: number, contentType: string | undefined, text: string): void {
  const where = `${req.method} ${req.url} -> ${status}: ${text.slice(0, 300)}`;
  assert.ok(status < 500 || status === 503 || status === 501, `server error: ${where}`);
  if (status < 400) return;
  assert.ok((contentType ?? '').startsWith('application/json'), `refusal not JSON: ${where}`);
  const body = JSON.parse(text) as Json;
  assert.ok(CODES.has(body.code), `unknown code: ${where}`);
  assert.match(body.reason, REASON, where);
}

describe('fuzz: the dashboard routes (in process)', () => {
  it('every dashboard route the server registers has a seed here', () => {
    const routes = routesOf(s.b.app);
    assert.ok(routes.length >= 20, `only ${routes.length} dashboard routes parsed`);
    assert.deepEqual(
      routes.filter((r) => !(r in SEEDS)),
      [],
      'dashboard routes with no fuzz seed: add them to SEEDS',
    );
    assert.deepEqual(
      Object.keys(SEEDS).filter((r) => !routes.includes(r)),
      [],
      'seeds for routes that no longer exist',
    );
  });

  it('readSessionCookie: any Cookie header gives undefined or a value of the cookie alphabet', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.constant(undefined),
          fc.string().map((x) => `vouchsafe_session=${x}`),
        ),
        (h) => {
          const v = readSessionCookie(h);
          assert.ok(v === undefined || /^[A-Za-z0-9_-]{1,64}$/.test(v));
        },
      ),
      fcOptions({ numRuns: 500, timeMs: 500 }),
    );
  });

  for (const route of Object.keys(SEEDS)) {
    it(route, async () => {
      await fc.assert(
        fc.asyncProperty(requests(route), async (req) => {
          const r = await s.b.app.inject(req as InjectOptions);
          checkAnswer(req, r.statusCode, r.headers['content-type'] as string | undefined, r.body);
        }),
        fcOptions(budget),
      );
      // The session used above may have been ended by the fuzzed sign-out: sign in again for the next route.
      session = await s.signIn();
    });
  }
});
