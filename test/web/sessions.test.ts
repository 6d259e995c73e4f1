/**
 * The dashboard's session store and cookie (src/web/sessions.ts, headers.ts): idle and absolute expiry,
 * the bound on sessions held, CSRF comparison, the cookie's attributes; and over real TLS, the Secure flag.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readSessionCookie, sessionCookie } from '../../src/web/headers.js';
import type { Principal } from '../../src/web/principal.js';
import { csrfMatches, SessionStore } from '../../src/web/sessions.js';
import { SignInLimit } from '../../src/web/sign-in-limit.js';
import { startDashboardStack } from './harness.js';

const P: Principal = { id: 'bootstrap', name: 'admin', role: 'admin', projects: ['*'] };

describe('dashboard sessions', () => {
  it('ends a session after the idle time and after the maximum age, however used', () => {
    const clock = { t: 1_000_000 };
    const store = new SessionStore(() => clock.t, { idleMs: 1000, maxAgeMs: 5000, maxSessions: 10 });
    const a = store.create(P);
    clock.t += 999;
    assert.ok(store.get(a.id), 'used within the idle time');
    clock.t += 1001;
    assert.equal(store.get(a.id), undefined, 'idle too long');
    const b = store.create(P);
    for (let i = 0; i < 6; i++) {
      clock.t += 900;
      if (i < 5) assert.ok(store.get(b.id));
    }
    assert.equal(store.get(b.id), undefined, 'past the maximum age although used');
    assert.equal(store.isLive(b.session), false);
  });

  it('holds at most maxSessions (the oldest ends) and never finds a session by a wrong or overlong cookie', () => {
    const store = new SessionStore(Date.now, { idleMs: 60_000, maxAgeMs: 60_000, maxSessions: 2 });
    const a = store.create(P);
    store.create(P);
    store.create(P);
    assert.equal(store.size, 2);
    assert.equal(store.get(a.id), undefined);
    assert.equal(store.get(undefined), undefined);
    assert.equal(store.get('x'.repeat(65)), undefined);
  });

  it('compares the CSRF token exactly (wrong, missing, other type refused)', () => {
    const { session } = new SessionStore().create(P);
    assert.equal(csrfMatches(session, session.csrf), true);
    assert.equal(csrfMatches(session, `${session.csrf}a`), false);
    assert.equal(csrfMatches(session, session.csrf.slice(1)), false);
    assert.equal(csrfMatches(session, undefined), false);
    assert.equal(csrfMatches(session, [session.csrf]), false);
  });

  it('writes and reads the cookie: HttpOnly, SameSite=Strict, path-scoped; Secure only when asked', () => {
    assert.equal(
      sessionCookie('abc', { prefix: '/ui/', secure: true }),
      'vouchsafe_session=abc; Path=/ui/; HttpOnly; SameSite=Strict; Secure',
    );
    assert.doesNotMatch(sessionCookie('abc', { prefix: '/ui/', secure: false }), /Secure/);
    assert.equal(readSessionCookie('a=1; vouchsafe_session=abc_-9; b=2'), 'abc_-9');
    assert.equal(readSessionCookie('vouchsafe_session=a b'), undefined);
    assert.equal(readSessionCookie('other=1'), undefined);
  });

  it('limits failed sign-ins per source within a window, and forgets them when it passes', () => {
    const clock = { t: 0 };
    const limit = new SignInLimit(() => clock.t, 3, 1000);
    for (let i = 0; i < 3; i++) {
      assert.equal(limit.retryAfter('a'), 0);
      limit.failed('a');
      clock.t += 100;
    }
    assert.equal(limit.retryAfter('a'), 1, 'the oldest failure leaves the window in 700 ms');
    assert.equal(limit.retryAfter('b'), 0, 'another source is not affected');
    clock.t = 1001;
    assert.equal(limit.retryAfter('a'), 0);
  });

  it('over TLS the broker sets the session cookie Secure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-web-tls-'));
    const key = join(dir, 'tls.key');
    const cert = join(dir, 'tls.pem');
    // biome-ignore format: one openssl command line
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const tls = await startDashboardStack({ tls: { certPath: cert, keyPath: key } });
    try {
      const ca = readFileSync(cert);
      const setCookie = await new Promise<string>((done, fail) => {
        const req = request(
          `${tls.b.url}/ui/api/session`,
          { method: 'POST', ca, headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            done(String(res.headers['set-cookie'] ?? ''));
          },
        );
        req.on('error', fail);
        req.end(JSON.stringify({ credential: tls.b.adminToken }));
      });
      assert.match(setCookie, /; HttpOnly; SameSite=Strict; Secure$/);
    } finally {
      await tls.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
