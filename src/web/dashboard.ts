import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, errorResponse } from '../api/http-errors.js';
import type { BrokerParts } from '../api/start.js';
import { BOOTSTRAP_ID } from '../broker/credentials.js';
import type { PlatformCa } from '../ca/platform-ca.js';
import { ErrorCode, isAttestationError, MalformedEvidence } from '../errors.js';
import { type Asset, defaultAssetsDir, loadAssets } from './assets.js';
import { type DashboardContext, sessionOf, setSession } from './context.js';
import { AuditFeed } from './feed.js';
import { readSessionCookie, SECURITY_HEADERS, sessionCookie } from './headers.js';
import { type Authenticate, adminTokenAuthenticator, anyOf, credentialAuthenticator } from './principal.js';
import { registerAuditRoutes } from './routes-audit.js';
import { registerInstanceRoutes } from './routes-instances.js';
import { registerPlatformRoutes } from './routes-platform.js';
import { csrfMatches, type SessionLimits, SessionStore } from './sessions.js';
import { SignInLimit } from './sign-in-limit.js';

export const DEFAULT_DASHBOARD_PREFIX = '/ui/';

/** The route-auth declaration of every dashboard route (src/api/route-auth.ts `selfAuthenticated`). */
const SELF_AUTH = {
  selfAuthenticated: 'dashboard session cookie, CSRF token and Origin (src/web/dashboard.ts)',
};

export interface DashboardOptions {
  /** Route prefix, starting and ending with `/` (default `/ui/`). */
  readonly prefix?: string;
  /**
   * Checks sign-in credentials. Default: the admin token file (the bootstrap credential) and the stored
   * credentials with their roles and projects (src/broker/credentials.ts, src/web/principal.ts).
   */
  readonly authenticate?: Authenticate;
  /**
   * The platform CA, for the certificates page. Default: the CA the broker serves (startBroker `ca`,
   * `serve --ca-dir`); without one the page says the CA is not configured.
   */
  readonly ca?: PlatformCa;
  /** Built assets (default: dist/web-assets, src/web/assets.ts). */
  readonly assetsDir?: string;
  readonly now?: () => number;
  readonly sessionLimits?: SessionLimits;
  /** Failed sign-ins allowed per source address within the window (default 10 in 10 minutes). */
  readonly signInLimit?: { readonly max: number; readonly windowMs: number };
  /** How often the live feed reads the audit log while someone watches (default 250 ms). */
  readonly feedEveryMs?: number;
}

/** Dashboard-only reasons and their HTTP statuses (the rest follow the API's table, src/api/http-errors.ts). */
const WEB_STATUS: Readonly<Record<string, number>> = {
  'web.unauthorized': 401,
  'web.sign_in': 401,
  'web.forbidden': 403,
  'web.csrf': 403,
  'web.origin': 403,
  'web.ca_unconfigured': 501,
  'web.sign_in_limited': 429,
};

const SignIn = Type.Object(
  { credential: Type.String({ minLength: 1, maxLength: 4096 }) },
  { additionalProperties: false },
);

/**
 * Serves the operator dashboard (issue 15, docs/dashboard.md) under `prefix` on the broker's server: the
 * built single-page app with a strict CSP, sign-in to a session cookie, CSRF on every state-changing
 * request, and the JSON and SSE endpoints the pages use. Register before the server listens
 * (StartBrokerOptions.extend).
 */
export async function registerDashboard(
  app: FastifyInstance,
  parts: BrokerParts,
  opts: DashboardOptions = {},
): Promise<{ sessions: SessionStore; feed: AuditFeed }> {
  const prefix = opts.prefix ?? DEFAULT_DASHBOARD_PREFIX;
  if (!/^\/([a-z0-9-]+\/)+$/.test(prefix)) {
    throw new MalformedEvidence('web.prefix', `dashboard prefix must look like /ui/, got ${prefix}`);
  }
  const base = prefix.slice(0, -1);
  const assets = loadAssets(opts.assetsDir ?? defaultAssetsDir());
  const now = opts.now ?? Date.now;
  const sessions = new SessionStore(now, opts.sessionLimits);
  const signInLimit = new SignInLimit(now, opts.signInLimit?.max, opts.signInLimit?.windowMs);
  const feed = new AuditFeed(
    {
      readAudit: (after, limit) => parts.broker.readAudit(after, limit),
      headSeq: async () => (await parts.store.auditHead()).seq,
    },
    opts.feedEveryMs ?? 250,
    (err) =>
      parts.logger.warn(
        { event: 'dashboard_feed_failed', err },
        'dashboard feed could not read the audit log',
      ),
  );
  const authenticate =
    opts.authenticate ??
    anyOf(adminTokenAuthenticator(parts.adminToken), credentialAuthenticator(parts.store));
  const ctx: DashboardContext = { parts, sessions, feed, ca: opts.ca ?? parts.ca, now, base };
  app.addHook('onClose', async () => feed.close());

  await app.register(
    async (scope) => {
      // The broker's access control (src/api/access.ts) needs every route to declare how it is
      // authenticated: these check the session cookie themselves, in the onRequest hook below.
      scope.addHook('onRoute', (route) => {
        route.config = { ...(route.config as object), auth: SELF_AUTH } as typeof route.config;
      });
      scope.setErrorHandler((err: FastifyError, req, reply) => sendError(req, reply, err));
      scope.addHook('onSend', async (_req, reply, payload) => {
        for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(k)) reply.header(k, v);
        return payload;
      });

      // Every /api route but sign-in needs a live session; every state-changing one its CSRF token and,
      // when the browser names it, our own origin.
      scope.addHook('onRequest', async (req) => {
        const path = req.url.slice(base.length).split('?')[0] ?? '';
        if (!path.startsWith('/api/')) return;
        const isSignIn = path === '/api/session' && req.method === 'POST';
        if (req.method !== 'GET' && req.method !== 'HEAD') checkOrigin(req);
        if (isSignIn) return;
        const cookie = readSessionCookie(req.headers.cookie);
        const s = sessions.get(cookie);
        if (!s) throw new ApiError(ErrorCode.Refused, 'web.unauthorized', 'sign in first');
        // A stored credential revoked after sign-in ends its sessions at their next request.
        if (s.principal.id !== BOOTSTRAP_ID) {
          const rec = await parts.store.getCredential(s.principal.id);
          if (!rec || rec.revokedAt !== null) {
            sessions.end(cookie);
            throw new ApiError(
              ErrorCode.Refused,
              'web.unauthorized',
              'the credential was revoked; sign in again',
            );
          }
        }
        if (req.method !== 'GET' && req.method !== 'HEAD' && !csrfMatches(s, req.headers['x-csrf-token'])) {
          throw new ApiError(ErrorCode.Refused, 'web.csrf', 'missing or wrong x-csrf-token');
        }
        setSession(req, s);
      });

      const page = (reply: FastifyReply, name: string) => {
        const a = assets.get(name) as Asset;
        return reply.type(a.type).send(a.body);
      };
      // Only `/ui/` itself: `/ui` redirects there (below), so the page's relative URLs resolve under it.
      scope.get('/', { prefixTrailingSlash: 'slash' }, async (_req, reply) => page(reply, 'index.html'));
      scope.get('/assets/:name', async (req, reply) => {
        const name = (req.params as { name: string }).name;
        if (name === 'index.html' || !assets.has(name)) {
          throw new ApiError(ErrorCode.InvalidArgument, 'api.not_found', 'no such asset');
        }
        reply.header('cache-control', 'no-cache');
        return page(reply, name);
      });

      scope.post('/api/session', { schema: { body: SignIn } }, async (req, reply) => {
        const wait = signInLimit.retryAfter(req.ip);
        if (wait > 0) {
          reply.header('retry-after', String(wait));
          throw new ApiError(
            ErrorCode.Refused,
            'web.sign_in_limited',
            'too many failed sign-ins from here; try later',
          );
        }
        const principal = await authenticate((req.body as { credential: string }).credential);
        if (!principal) {
          signInLimit.failed(req.ip);
          req.log.info({ event: 'dashboard_sign_in_refused' }, 'dashboard sign-in refused');
          throw new ApiError(ErrorCode.Refused, 'web.sign_in', 'that credential was not accepted');
        }
        sessions.end(readSessionCookie(req.headers.cookie));
        const { id, session } = sessions.create(principal);
        req.log.info({ event: 'dashboard_sign_in', who: principal.name }, 'dashboard sign-in');
        reply.header('set-cookie', sessionCookie(id, { prefix, secure: parts.tls }));
        return { principal, csrf: session.csrf };
      });
      scope.get('/api/session', async (req) => {
        const s = sessionOf(req);
        return { principal: s.principal, csrf: s.csrf };
      });
      scope.post(
        '/api/session/end',
        { schema: { body: Type.Object({}, { additionalProperties: false }) } },
        async (req, reply) => {
          sessions.end(readSessionCookie(req.headers.cookie));
          reply.header('set-cookie', sessionCookie('', { prefix, secure: parts.tls, maxAgeS: 0 }));
          return { ok: true };
        },
      );

      registerInstanceRoutes(scope, ctx);
      registerAuditRoutes(scope, ctx);
      registerPlatformRoutes(scope, ctx);
    },
    { prefix: base },
  );
  // `/ui` without its slash: the page's relative asset URLs need the slash.
  app.get(base, { config: { auth: SELF_AUTH } }, async (_req, reply) => reply.redirect(prefix, 308));
  return { sessions, feed };
}

/**
 * A state-changing request whose browser names an Origin (every modern browser does on POST/PUT) must come
 * from this server's own origin: with SameSite=Strict and the CSRF token this is the third, independent
 * line against cross-site requests.
 */
function checkOrigin(req: FastifyRequest): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const host = req.headers.host;
  let ok = false;
  try {
    ok = host !== undefined && new URL(origin).host === host;
  } catch {
    ok = false;
  }
  if (!ok) throw new ApiError(ErrorCode.Refused, 'web.origin', 'cross-origin request refused');
}

function sendError(req: FastifyRequest, reply: FastifyReply, err: FastifyError): FastifyReply {
  let e: unknown = err;
  if (!isAttestationError(err)) {
    if (err.validation)
      e = new MalformedEvidence(
        'api.schema',
        `${err.validationContext ?? 'request'}: ${err.message}`.slice(0, 300),
      );
    else if (err.statusCode === 415)
      e = new ApiError(ErrorCode.Malformed, 'api.content_type', 'send application/json');
    else if (err.statusCode === 413)
      e = new ApiError(ErrorCode.Malformed, 'api.body_too_large', 'request body too large');
    else if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
      e = new MalformedEvidence('api.request', `${err.code ?? 'bad request'}: ${err.message}`.slice(0, 300));
  }
  const { status, body } = errorResponse(e);
  const code = isAttestationError(e) ? (WEB_STATUS[e.reason] ?? status) : status;
  if (code >= 500 && !isAttestationError(e)) req.log.error({ err: e }, 'dashboard internal error');
  else req.log.info({ code: body.code, reason: body.reason, status: code }, 'dashboard request refused');
  return reply.code(code).type('application/json').send(body);
}
