/**
 * The dashboard's server side over HTTP (no browser): the CSP and headers, sign-in, the session cookie's
 * attributes, CSRF and Origin checks on every state-changing request, role and project scoping, the audit
 * views and the SSE feed. Every security check here has a case showing it refuse. The same pages in a real
 * browser: dashboard-browser.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createCredential, revokeCredential } from '../../src/broker/credentials.js';
import { addProxy } from '../helpers/broker.js';
import { type DashboardStack, startDashboardStack } from './harness.js';

describe('dashboard over HTTP', () => {
  let s: DashboardStack;
  /** Stored credentials (migration 6, src/broker/credentials.ts): scoped to one project each. */
  let alphaOperator: string;
  let betaReader: string;
  let hostToken: string;
  before(async () => {
    s = await startDashboardStack();
    const make = async (name: string, role: 'read' | 'operate' | 'host', projects: string[]) =>
      (await createCredential(s.b.store, { name, role, projects }, Date.now())).token;
    alphaOperator = await make('alpha operator', 'operate', ['alpha']);
    betaReader = await make('beta reader', 'read', ['beta']);
    hostToken = await make('vmm backend', 'host', ['alpha']);
  });
  after(async () => s.close());

  it('serves the page with a strict CSP (no inline script, no eval, own origin only) and no-store', async () => {
    const r = await fetch(s.ui);
    assert.equal(r.status, 200);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|http:|https:|\*/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const html = await r.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script element');
    const js = await fetch(`${s.ui}assets/app.js`);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    const body = await js.text();
    assert.doesNotMatch(body, /\beval\(|new Function\(/);
    assert.doesNotMatch(
      body,
      /https?:\/\/(?!www\.w3\.org)[a-z0-9.-]+\.[a-z]{2,}\/[^"' ]*\.(js|css|woff2?)/i,
      'no CDN',
    );
  });

  it('refuses every API call without a session (401 web.unauthorized)', async () => {
    for (const path of ['instances', 'audit', 'events', 'metrics', 'certificates', 'session']) {
      const r = await s.api(undefined, 'GET', path);
      assert.equal(r.status, 401, path);
      assert.equal(r.body.reason, 'web.unauthorized');
    }
    const forged = await s.api({ cookie: 'vouchsafe_session=AAAA', csrf: 'x' }, 'GET', 'instances');
    assert.equal(forged.status, 401);
  });

  it('refuses a wrong credential (401 web.sign_in) and sets no cookie', async () => {
    const r = await s.call('POST', '/ui/api/session', { credential: `${s.b.adminToken}x` });
    assert.equal(r.status, 401);
    assert.equal(r.body.reason, 'web.sign_in');
    assert.equal(r.headers.get('set-cookie'), null);
  });

  it('signs in with the admin token: HttpOnly, SameSite=Strict cookie scoped to /ui/ (not Secure on plain HTTP)', async () => {
    const r = await s.call('POST', '/ui/api/session', { credential: s.b.adminToken });
    assert.equal(r.status, 200);
    const c = r.headers.get('set-cookie') ?? '';
    assert.match(c, /^vouchsafe_session=[A-Za-z0-9_-]{43}; Path=\/ui\/; HttpOnly; SameSite=Strict$/);
    assert.equal(r.body.principal.role, 'admin');
    assert.deepEqual(r.body.principal.projects, ['*']);
    assert.doesNotMatch(JSON.stringify(r.body), new RegExp(s.b.adminToken));
  });

  it('refuses a state-changing request without the CSRF token, with a wrong one, and from another origin', async () => {
    const u = await s.signIn();
    const body = { project: 'alpha', zone: 'z', instanceId: 'csrf-1', instanceName: 'csrf', policy: {} };
    const none = await s.api({ cookie: u.cookie, csrf: '' }, 'POST', 'instances', body, {
      'x-csrf-token': '',
    });
    assert.equal(none.status, 403);
    assert.equal(none.body.reason, 'web.csrf');
    // One character changed (to one it is not: 'A' on its own would leave a token ending in 'A' unchanged).
    const last = u.csrf.endsWith('A') ? 'B' : 'A';
    const wrong = await s.api({ ...u, csrf: `${u.csrf.slice(0, -1)}${last}` }, 'POST', 'instances', body);
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.reason, 'web.csrf');
    const cross = await s.api(u, 'POST', 'instances', body, { origin: 'https://evil.example' });
    assert.equal(cross.status, 403);
    assert.equal(cross.body.reason, 'web.origin');
    const form = await s.call('POST', '/ui/api/instances', 'project=alpha', {
      cookie: u.cookie,
      'x-csrf-token': u.csrf,
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(form.status, 415, 'a cross-site form body is not parsed');
    const list = await s.api(u, 'GET', 'instances');
    assert.equal(list.body.instances.length, 0, 'nothing was registered');
    const ok = await s.api(u, 'POST', 'instances', body, { origin: new URL(s.ui).origin });
    assert.equal(ok.status, 201);
  });

  it('a host credential (a VMM backend) does not sign in; a revoked credential ends its sessions', async () => {
    const host = await s.call('POST', '/ui/api/session', { credential: hostToken });
    assert.equal(host.status, 401);
    assert.equal(host.body.reason, 'web.sign_in');
    const made = await createCredential(
      s.b.store,
      { name: 'short-lived', role: 'read', projects: ['alpha'] },
      Date.now(),
    );
    const u = await s.signIn(made.token);
    assert.equal((await s.api(u, 'GET', 'instances')).status, 200);
    await revokeCredential(s.b.store, made.credential.id, Date.now());
    const after = await s.api(u, 'GET', 'instances');
    assert.equal(after.status, 401);
    assert.equal(after.body.reason, 'web.unauthorized');
    assert.equal((await s.call('POST', '/ui/api/session', { credential: made.token })).status, 401);
  });

  it('signing out ends the session', async () => {
    const u = await s.signIn();
    assert.equal((await s.api(u, 'POST', 'session/end', {})).status, 200);
    assert.equal((await s.api(u, 'GET', 'instances')).status, 401);
  });

  it('scopes a credential to its projects: instances, audit, feed, ids of other projects answer as unknown', async () => {
    const admin = await s.signIn();
    const a = await s.register({ project: 'alpha' });
    const b = await s.register({ project: 'beta' });
    await s.admin('POST', `/v1/admin/instances/${b.id}/rotate-key`);
    const alpha = await s.signIn(alphaOperator);
    const beta = await s.signIn(betaReader);
    const seen = (await s.api(alpha, 'GET', 'instances')).body.instances.map(
      (v: { project: string }) => v.project,
    );
    assert.ok(seen.length > 0 && seen.every((p: string) => p === 'alpha'));
    const other = await s.api(alpha, 'GET', `instances/${b.id}`);
    assert.equal(other.status, 404);
    assert.equal(other.body.reason, 'broker.instance_not_found');
    const rotate = await s.api(alpha, 'POST', `instances/${b.id}/rotate-key`, {});
    assert.equal(rotate.status, 404, 'an operator of alpha cannot act on beta');
    const audit = await s.api(alpha, 'GET', 'audit?limit=500');
    assert.ok(audit.body.entries.length > 0);
    assert.ok(audit.body.entries.every((e: { project: string }) => e.project === 'alpha'));
    assert.doesNotMatch(JSON.stringify(audit.body), new RegExp(b.id));
    const register = await s.api(alpha, 'POST', 'instances', {
      project: 'beta',
      zone: 'z',
      instanceId: 'x-1',
      instanceName: 'sneaky',
      policy: {},
    });
    assert.equal(register.status, 400);
    assert.equal(register.body.reason, 'web.project');
    // A viewer reads but does not act; platform-wide figures need all projects.
    assert.equal((await s.api(beta, 'POST', `instances/${b.id}/rotate-key`, {})).status, 403);
    assert.equal((await s.api(beta, 'GET', `instances/${a.id}`)).status, 404);
    assert.equal((await s.api(beta, 'GET', 'metrics')).status, 403);
    assert.equal((await s.api(beta, 'GET', 'audit/verify')).status, 403);
    assert.equal((await s.api(admin, 'GET', 'audit/verify')).body.ok, true);
  });

  it('lists an instance with its key versions and last decisions; refuses an invalid policy with its message', async () => {
    const u = await s.signIn();
    const v = await s.register({ project: 'alpha' });
    const one = await s.api(u, 'GET', `instances/${v.id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.hostData, v.hostData);
    assert.equal(one.body.recent[0].kind, 'register');
    assert.equal(
      one.body.recent[0].details.actor,
      'bootstrap',
      'the audit entry names the signed-in credential',
    );
    const rotated = await s.api(u, 'POST', `instances/${v.id}/rotate-key`, {});
    assert.equal(rotated.status, 200);
    const again = await s.api(u, 'GET', `instances/${v.id}`);
    assert.ok(again.body.keyVersions.some((k: { version: number }) => k.version === rotated.body.keyVersion));
    assert.equal(again.body.recent[0].kind, 'rotate');
    const bad = await s.api(u, 'PUT', `instances/${v.id}/policy`, { policy: { measurements: 'nope' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.reason, 'policy.invalid');
    assert.match(bad.body.message, /measurements/);
  });

  it('streams releases and refusals (SSE) with every failed check, expected and actual, and the audit seq', async () => {
    const u = await s.signIn();
    const res = await fetch(`${s.ui}api/events`, { headers: { cookie: u.cookie } });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const { reader, next: nextEvent } = eventReader(res);
    await nextEvent('ready');
    const v = await s.register({ project: 'alpha', policy: { measurements: ['ab'.repeat(48)] } });
    const p = await addProxy(s);
    await assert.rejects(p.boot(s.firmware(v.hostData), p.statePath('feed-refused')));
    const d = await nextEvent('decision');
    assert.equal(d.decision, 'refuse');
    assert.equal(d.kind, 'release');
    assert.equal(d.instance, v.id);
    const failures = d.failures as { code: string; expected: string; actual: string }[];
    const m = failures.find((f) => f.code === 'snp.measurement');
    assert.ok(m, JSON.stringify(failures));
    assert.match(m.expected, /abab/);
    assert.ok(m.actual.length > 0);
    assert.equal(typeof d.seq, 'number');
    await reader.cancel();
  });

  it("a scoped credential's feed carries its projects' decisions only", async () => {
    const alpha = await s.signIn(alphaOperator);
    const res = await fetch(`${s.ui}api/events`, { headers: { cookie: alpha.cookie } });
    const { reader, next, unread } = eventReader(res);
    await next('ready');
    const bad = { measurements: ['ef'.repeat(48)] };
    const b = await s.register({ project: 'beta', policy: bad });
    const a = await s.register({ project: 'alpha', policy: bad });
    const p = await addProxy(s);
    // beta's refusal is audited first: had it been sent, it would arrive before alpha's.
    await assert.rejects(p.boot(s.firmware(b.hostData), p.statePath('iso-beta')));
    await assert.rejects(p.boot(s.firmware(a.hostData), p.statePath('iso-alpha')));
    const d = await next('decision');
    assert.equal(d.instance, a.id);
    assert.equal(d.project, 'alpha');
    assert.doesNotMatch(unread(), new RegExp(b.id));
    await reader.cancel();
  });

  // Last: it locks 127.0.0.1 out of signing in for the rest of this broker's life.
  it('refuses sign-in from a source after 10 failures in 10 minutes (429, Retry-After), even with the right token', async () => {
    let refused = 0;
    for (let i = 0; i < 12; i++) {
      const r = await s.call('POST', '/ui/api/session', { credential: `wrong-${i}` });
      if (r.status === 429) {
        refused++;
        assert.equal(r.body.reason, 'web.sign_in_limited');
        assert.ok(Number(r.headers.get('retry-after')) > 0);
      } else assert.equal(r.status, 401);
    }
    assert.ok(refused >= 2);
    const right = await s.call('POST', '/ui/api/session', { credential: s.b.adminToken });
    assert.equal(right.status, 429);
    assert.equal(right.headers.get('set-cookie'), null);
  });
});

/**
 * The server-sent events of `res`: `next(name)` waits for the next event of that name and returns its data;
 * `unread()` is what arrived after it.
 */
function eventReader(res: Response) {
  const reader = res.body!.getReader();
  let buf = '';
  const next = async (name: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const m = new RegExp(`event: ${name}\\ndata: (.*)\\n\\n`).exec(buf);
      if (m) {
        buf = buf.slice(m.index + m[0].length);
        return JSON.parse(m[1]!) as Record<string, unknown>;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buf += new TextDecoder().decode(value);
    }
  };
  return { reader, next, unread: () => buf };
}
