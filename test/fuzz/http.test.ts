/**
 * Every HTTP route of the broker (native /v1, admin, KBS, health, metrics, JWKS), fuzzed in process through
 * fastify `inject`: bodies grown from a valid seed per route (members replaced, removed, retyped; raw bytes
 * flipped, cut, spliced; oversized), random path parameters and query strings, content types that are wrong
 * or odd, and the admin token present, wrong or absent. Every answer must be a success or a typed refusal:
 * a 4xx (or a 503 saying collateral or capacity is unavailable) whose body carries a known `code` and a
 * dotted `reason` (native and admin) or a KBS problem document that is not `internal`; never a 500, never
 * an "internal error" in the log. After each route the server still answers /healthz.
 *
 * The route table comes from the server itself (fastify printRoutes): a route with no seed here fails the
 * first test, so a new endpoint cannot go unfuzzed.
 */
import assert from 'node:assert/strict';

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { type RunningBroker, startBroker } from '../../src/api/index.js';
import { PlatformCa } from '../../src/ca/index.js';
import { ErrorCode } from '../../src/errors.js';
import { buildCertTable, CertGuid, encodeReport } from '../../src/formats/snp/index.js';
import { defaultReportFields, SIM_DEFAULT_MEASUREMENT, sharedSimChain } from '../../src/sim/snp/index.js';
import { toHex } from '../../src/util/bytes.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
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

const budget: FuzzBudget = { numRuns: 120, timeMs: 700 };
const PROBLEM_BASE = 'tag:vouchsafe.dev,2026:problem/kbs/';

let broker: RunningBroker;
let dir: string;
let instanceId: string;
const logLines: string[] = [];
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/** A valid body (or none) per route, keyed `METHOD path` as fastify prints the route. */
let SEEDS: Record<string, Json[] | null>;

function routesOf(app: RunningBroker['app']): string[] {
  // printRoutes draws a tree; each line is one node: its path segment and methods.
  const out: string[] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]!.depth >= depth) stack.pop();
    const path = (stack[stack.length - 1]?.path ?? '') + m[2]!;
    stack.push({ depth, path });
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim())) {
      if (method && method !== 'HEAD') out.push(`${method} ${path}`);
    }
  }
  return out.sort();
}

before(async () => {
  const chain = await sharedSimChain('Milan');
  dir = mkdtempSync(join(tmpdir(), 'vouchsafe-fuzz-http-'));
  // The platform CA served by the broker (/v1/ca/*), trusting the simulator's root.
  const ca = await PlatformCa.init({
    dir: join(dir, 'ca'),
    config: { snp: { trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }], policy: {} } },
  });
  await ca.close();
  broker = await startBroker({
    ca: { dir: join(dir, 'ca'), rateLimit: false },
    // The fuzzer sends wrong tokens on purpose; with the failed-authentication limit on, the admin routes
    // would answer 429 to everything after the first few (tested in test/api/rate-limits.test.ts).
    rateLimits: { adminAuthFailures: { perSource: false } },
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'data'),
    trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
    kds: 'none',
    crl: 'none',
    logger: pino({ level: 'warn' }, { write: (s: string) => void logLines.push(s) }),
  });
  const reg = await broker.app.inject({
    method: 'POST',
    url: '/v1/admin/instances',
    headers: { authorization: `Bearer ${broker.adminToken}` },
    payload: {
      project: 'fuzz',
      zone: 'z',
      instanceId: 'fuzz-1',
      instanceName: 'vm',
      policy: { measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] },
    },
  });
  assert.equal(reg.statusCode, 201, reg.body);
  instanceId = reg.json().id;
  const report = encodeReport(defaultReportFields(chain));
  const table = buildCertTable([
    { guid: CertGuid.VCEK, data: chain.vcek.der },
    { guid: CertGuid.ASK, data: chain.ask.der },
    { guid: CertGuid.ARK, data: chain.ark.der },
  ]);
  const key = { x: b64(new Uint8Array(66).fill(1)), y: b64(new Uint8Array(66).fill(2)) };
  const token = b64(new Uint8Array(32).fill(4));
  const ec = newKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  SEEDS = {
    'POST /v1/challenge': [
      { tee: 'snp', version: '0.2.0' },
      { tee: 'snp', version: '0.1.0' },
    ],
    'POST /v1/attest': [
      {
        tee: 'snp',
        version: '0.2.0',
        report: b64(report),
        certTable: b64(table),
        challenge: b64(new Uint8Array(32).fill(3)),
        key,
        stateCounter: '3',
        stateDigest: b64(new Uint8Array(32).fill(5)),
        stateKeyVersion: 1,
      },
      { tee: 'snp', version: '0.1.0', report: b64(report), challenge: b64(new Uint8Array(32)), key },
    ],
    'POST /v1/commit': [
      {
        bootId: 'boot-1',
        commitToken: token,
        counter: '4',
        challenge: b64(new Uint8Array(32)),
        stateDigest: b64(new Uint8Array(32).fill(5)),
      },
    ],
    'POST /v1/heartbeat': [{ bootId: 'boot-1', commitToken: token, nonce: b64(new Uint8Array(32)) }],
    'POST /v1/end': [{ bootId: 'boot-1', commitToken: token, nonce: b64(new Uint8Array(32)) }],
    'GET /v1/broker-key': null,
    'POST /v1/admin/instances': [
      {
        project: 'p',
        zone: 'z',
        instanceId: 'i',
        instanceName: 'n',
        policy: { measurements: ['ab'.repeat(48)], minimumTcb: { Milan: 'any' } },
      },
    ],
    'GET /v1/admin/instances': null,
    'GET /v1/admin/instances/:id': null,
    'PUT /v1/admin/instances/:id/policy': [{ policy: { measurements: 'any', vmpl: 0 } }],
    'POST /v1/admin/instances/:id/rotate-key': null,
    'POST /v1/admin/instances/:id/reset-boot': [{ note: 'operator reset' }, {}],
    'PUT /v1/admin/instances/:id/new-launch': [{ newLaunch: 'refuse' }, { newLaunch: 'takeover' }],
    'GET /v1/admin/audit': null,
    'GET /v1/admin/audit/verify': null,
    'POST /v1/admin/token-keys/rotate': null,
    'POST /v1/admin/credentials': [
      { name: 'fuzz', role: 'read', projects: ['fuzz'] },
      { name: 'host 1', role: 'host', projects: ['*'] },
    ],
    'GET /v1/admin/credentials': null,
    'POST /v1/admin/credentials/:id/revoke': null,
    'GET /v1/openapi.json': null,
    'GET /healthz': null,
    'GET /metrics': null,
    'GET /.well-known/jwks.json': null,
    'POST /kbs/v0/auth': [{ version: '0.4.0', tee: 'snp', 'extra-params': '' }],
    'POST /kbs/v0/attest': [
      {
        'init-data': null,
        'runtime-data': {
          nonce: 'bm9uY2U',
          'tee-pubkey': { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: ec.x, y: ec.y },
        },
        'tee-evidence': {
          primary_evidence: { 'snp-report': b64(report), 'certs-buf': b64(table) },
          additional_evidence: '',
        },
      },
    ],
    'GET /kbs/v0/resource/:repository/:type/:tag': null,
    'GET /kbs/v0/.well-known/jwks': null,
    'POST /v1/ca/nonce': [{ call: 'ek' }, { call: 'ak' }],
    'POST /v1/ca/certify-ek': [
      {
        nonce: b64(new Uint8Array(64).fill(6)),
        report: b64(report),
        certTable: b64(table),
        manifest: b64(new Uint8Array(40).fill(7)),
        format: 'x509',
        claimedIdentity: { project: 'fuzz', zone: 'z', instanceId: 'fuzz-1', instanceName: 'vm' },
      },
    ],
    'POST /v1/ca/certify-ak': [
      {
        nonce: b64(new Uint8Array(64).fill(6)),
        report: b64(report),
        manifest: b64(new Uint8Array(40).fill(7)),
        csr: b64(new Uint8Array(80).fill(8)),
        format: 'c509',
      },
    ],
    'GET /v1/ca/chain': null,
    'GET /v1/ca/crl': null,
  };
});

after(async () => {
  await broker?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const CONTENT_TYPES = [
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  'application/problem+json',
  'application/jsonx',
  '',
  ';;;',
];

const segment = hostileSegment(['default', 'sealing-key']);

function requests(route: string): fc.Arbitrary<FuzzRequest> {
  const [method, path] = route.split(' ') as [string, string];
  const seeds = SEEDS[route];
  const seedTexts = (seeds ?? [{}]).map((s) => new Uint8Array(Buffer.from(JSON.stringify(s))));
  const body: fc.Arbitrary<string | Buffer | undefined> = fc.oneof(
    { arbitrary: jsonFrom(seeds ?? [{}]).map((v) => JSON.stringify(v) ?? 'null'), weight: 5 },
    { arbitrary: bytesFrom(seedTexts, 256).map((b) => Buffer.from(b)), weight: 3 },
    { arbitrary: fc.constant(undefined), weight: 1 },
    { arbitrary: fc.constant(`{"a":"${'x'.repeat(70 * 1024)}"}`), weight: 1 },
    { arbitrary: fc.constant('{"a":'.repeat(2000)), weight: 1 },
  );
  const auth = fc.constantFrom<string | undefined>(
    `Bearer ${broker.adminToken}`,
    `Bearer ${broker.adminToken}`,
    undefined,
    'Bearer ',
    'Bearer x',
    `Basic ${b64(new Uint8Array(12))}`,
    `bearer ${broker.adminToken}`,
  );
  const query = fc.option(
    fc.dictionary(
      fc.constantFrom('after', 'limit', 'from', 'x', 'id'),
      fc.oneof(segment, fc.integer().map(String)),
    ),
    { nil: undefined },
  );
  return fc
    .record({
      method: fc.oneof(
        { arbitrary: fc.constant(method), weight: 9 },
        { arbitrary: fc.constantFrom('PATCH', 'DELETE', 'PUT', 'POST', 'GET'), weight: 1 },
      ),
      url: routePath(path, () => instanceId, segment),
      query,
      contentType: fc.constantFrom(...CONTENT_TYPES),
      auth,
      cookie: fc.option(
        fc.oneof(
          segment.map((s) => `kbs-session-id=${encodeURIComponent(s)}`),
          fc.string({ maxLength: 60 }),
        ),
        {
          nil: undefined,
        },
      ),
      body,
    })
    .map((r) => {
      const headers: Record<string, string> = {};
      if (r.contentType) headers['content-type'] = r.contentType;
      if (r.auth) headers.authorization = r.auth;
      if (r.cookie) headers.cookie = r.cookie.replace(/[\r\n]/g, '');
      const qs = r.query ? `?${new URLSearchParams(r.query).toString()}` : '';
      const hasBody = r.method !== 'GET' && r.body !== undefined;
      return { method: r.method, url: r.url + qs, headers, ...(hasBody ? { payload: r.body } : {}) };
    });
}

/** The oracle: success, or a typed refusal; never a 500 or an untyped body. */
function checkAnswer(req: FuzzRequest, status: number, contentType: string | undefined, text: string): void {
  const where = `${req.method} ${req.url} [${req.headers['content-type'] ?? ''}] -> ${status}: ${text.slice(0, 400)}`;
  // 503: collateral unavailable (retry later); 501: a TEE or version this broker does not support. Both are
  // typed refusals in the one status table (src/api/http-errors.ts, docs/api.md), not server failures.
  assert.ok(status < 500 || status === 503 || status === 501, `server error: ${where}`);
  if (status < 400) return;
  let body: Json;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`refusal body is not JSON: ${where}`);
  }
  if ((contentType ?? '').startsWith('application/problem+json')) {
    assert.equal(typeof body.type, 'string', where);
    assert.ok(body.type.startsWith(PROBLEM_BASE), where);
    assert.notEqual(body.type, `${PROBLEM_BASE}internal`, where);
    assert.equal(typeof body.detail, 'string', where);
    if (body.code !== undefined) assert.ok(CODES.has(body.code), where);
    return;
  }
  assert.ok(CODES.has(body.code), `unknown code: ${where}`);
  assert.match(body.reason, REASON, where);
  if (status === 503) assert.equal(body.code, ErrorCode.CollateralUnavailable, where);
  if (status === 501) assert.equal(body.code, ErrorCode.NotSupported, where);
}

describe('fuzz: HTTP routes of the broker (in process)', () => {
  it('every route the server registers has a seed here', () => {
    const routes = routesOf(broker.app);
    assert.ok(routes.length >= 20, `only ${routes.length} routes parsed from printRoutes`);
    const missing = routes.filter((r) => !(r in SEEDS));
    assert.deepEqual(missing, [], 'routes with no fuzz seed: add them to SEEDS');
  });

  it('regression: a path parameter over the router limit and a malformed URL are typed 400s', async () => {
    // Found by this fuzzer: fastify answered these itself (414 / 400 with its own body, no `reason`).
    for (const url of [
      `/v1/admin/instances/${'x'.repeat(300)}`,
      `/kbs/v0/resource/${'x'.repeat(300)}/a/b`,
      '/v1/admin/instances/%zz',
    ]) {
      const req = { method: 'GET', url, headers: { authorization: `Bearer ${broker.adminToken}` } };
      const r = await broker.app.inject(req);
      checkAnswer(req, r.statusCode, r.headers['content-type'] as string, r.body);
      assert.ok(r.statusCode >= 400 && r.statusCode < 500, `${url}: ${r.statusCode}`);
    }
  });

  it('an unknown route and a wrong method are typed 404s', async () => {
    for (const [method, url] of [
      ['GET', '/v2/x'],
      ['DELETE', '/v1/challenge'],
      ['GET', '/kbs/v0/nope'],
    ] as const) {
      const r = await broker.app.inject({ method, url });
      assert.equal(r.statusCode, 404);
      checkAnswer({ method, url, headers: {} }, r.statusCode, r.headers['content-type'] as string, r.body);
    }
  });

  // The route list is fixed at startup, so one `it` per route is built from SEEDS' keys.
  const ROUTES = [
    'POST /v1/challenge',
    'POST /v1/attest',
    'POST /v1/commit',
    'POST /v1/heartbeat',
    'POST /v1/end',
    'GET /v1/broker-key',
    'POST /v1/admin/instances',
    'GET /v1/admin/instances',
    'GET /v1/admin/instances/:id',
    'PUT /v1/admin/instances/:id/policy',
    'POST /v1/admin/instances/:id/rotate-key',
    'POST /v1/admin/instances/:id/reset-boot',
    'PUT /v1/admin/instances/:id/new-launch',
    'GET /v1/admin/audit',
    'GET /v1/admin/audit/verify',
    'POST /v1/admin/token-keys/rotate',
    'POST /v1/admin/credentials',
    'GET /v1/admin/credentials',
    'POST /v1/admin/credentials/:id/revoke',
    'GET /v1/openapi.json',
    'GET /healthz',
    'GET /metrics',
    'GET /.well-known/jwks.json',
    'POST /kbs/v0/auth',
    'POST /kbs/v0/attest',
    'GET /kbs/v0/resource/:repository/:type/:tag',
    'GET /kbs/v0/.well-known/jwks',
    'POST /v1/ca/nonce',
    'POST /v1/ca/certify-ek',
    'POST /v1/ca/certify-ak',
    'GET /v1/ca/chain',
    'GET /v1/ca/crl',
  ];

  it('the fuzzed list below is the seeded list', () => {
    assert.deepEqual([...ROUTES].sort(), Object.keys(SEEDS).sort());
  });

  for (const route of ROUTES) {
    it(route, async () => {
      const before = logLines.length;
      await fc.assert(
        fc.asyncProperty(requests(route), async (req) => {
          const r = await broker.app.inject(req as never);
          checkAnswer(req, r.statusCode, r.headers['content-type'] as string | undefined, r.body);
        }),
        fcOptions(budget),
      );
      const internal = logLines.slice(before).filter((l) => /internal error|"level":50/.test(l));
      assert.deepEqual(internal, [], 'errors logged while fuzzing');
      const health = await broker.app.inject({ method: 'GET', url: '/healthz' });
      assert.equal(health.statusCode, 200, health.body);
    });
  }

  it('the audit chain still verifies after all of that', async () => {
    const r = await broker.app.inject({
      method: 'GET',
      url: '/v1/admin/audit/verify',
      headers: { authorization: `Bearer ${broker.adminToken}` },
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().ok, true, r.body);
  });
});
