import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { type ActorContext, runAsActor } from '../broker/actor.js';
import { ALL_PROJECTS, authenticateCredential, BOOTSTRAP_ID, roleAllows } from '../broker/credentials.js';
import { ErrorCode } from '../errors.js';
import type { Store } from '../store/types.js';
import { checkBearer } from './broker-keys.js';
import { ApiError } from './http-errors.js';
import type { Metrics } from './metrics.js';
import { RateLimited, type RateLimits } from './rate-limits.js';
import {
  type Principal,
  principalOf,
  projectRefused,
  type RoleAuth,
  type RouteAuth,
  type RouteConfig,
  setPrincipal,
} from './route-auth.js';

export interface AccessOptions {
  /** The admin token file's token: the bootstrap credential (role admin, every project). */
  readonly adminToken: string;
  /** Where credentials live (migration 6); without it only the bootstrap token is accepted. */
  readonly store?: Pick<Store, 'getCredential' | 'transaction'>;
  readonly metrics: Metrics;
  readonly limits: RateLimits | undefined;
  /**
   * Routes registered elsewhere (the KBS plugin) with their declaration, as `METHOD url`: each route gets
   * its entry's config unless it declares its own.
   */
  readonly outsideRoutes?: ReadonlyMap<string, RouteConfig>;
  readonly now: () => number;
}

const BOOTSTRAP: Principal = {
  id: BOOTSTRAP_ID,
  name: 'admin token file',
  role: 'admin',
  projects: [ALL_PROJECTS],
};
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/;

const actors = new WeakMap<FastifyRequest, ActorContext>();
const declared = new WeakMap<FastifyInstance, RouteOptions[]>();

/** Every route of a server built with access control, with its declaration (for the route-table tests). */
export function declaredRoutes(
  app: FastifyInstance,
): { readonly method: string; readonly url: string; readonly auth: RouteAuth | undefined }[] {
  return (declared.get(app) ?? []).flatMap((r) =>
    [r.method].flat().map((method) => ({
      method,
      url: r.url,
      auth: (r.config as RouteConfig | undefined)?.auth,
    })),
  );
}

/** The route's auth declaration (undefined for fastify's not-found handler, which has no route). */
function authOf(req: FastifyRequest): RouteAuth | undefined {
  return (req.routeOptions.config as RouteConfig | undefined)?.auth;
}

function isRoleAuth(a: RouteAuth | undefined): a is RoleAuth {
  return typeof a === 'object' && a !== null && 'role' in a;
}

/**
 * Runs a route handler as the request's actor: audit entries the Broker writes meanwhile name the
 * credential (src/broker/actor.ts). RouteBook wraps every handler in it; a public route runs unchanged.
 */
export function asActor<T>(req: FastifyRequest, fn: () => T): T {
  const ctx = actors.get(req);
  return ctx ? runAsActor(ctx, fn) : fn();
}

/**
 * Installs access control on `app` (docs/access.md), before any route is added:
 * - onRoute: a route without an auth declaration (and not listed public) stops the server from starting;
 * - onRequest: the per-source rate limit a route declares; for credentialed routes the bearer token
 *   (admin token file, compared in constant time, or a stored credential), with failed attempts limited
 *   per source;
 * - onRequest, once authenticated: the role, and the every-project scope (`'all'`);
 * - preValidation: a resource's project (a hidden resource answers as a missing one);
 * - onSend: a credentialed request that changes something (not GET/HEAD) and that the Broker did not
 *   already audit is audited here with the credential id, accepted or refused.
 */
export function installAccessControl(app: FastifyInstance, o: AccessOptions): void {
  // Checked when the server starts (ready/listen), not as each route is added: a plugin may declare its
  // routes in an onRoute hook of its own scope (declareScope), which runs after this one.
  const routes: RouteOptions[] = [];
  declared.set(app, routes);
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const config = (route.config ?? {}) as RouteConfig;
    const outside = o.outsideRoutes?.get(`${methods[0]} ${route.url}`);
    if (
      config.auth === undefined &&
      outside &&
      methods.every((m) => o.outsideRoutes?.has(`${m} ${route.url}`))
    ) {
      route.config = { ...config, ...outside } as typeof route.config;
    }
    routes.push(route);
  });
  app.addHook('onReady', async () => {
    const undeclared: string[] = [];
    for (const r of routes) {
      const name = `${[r.method].flat().join(',')} ${r.url}`;
      const auth = (r.config as RouteConfig | undefined)?.auth;
      if (auth === undefined) undeclared.push(name);
      else checkDeclaration(auth, name);
    }
    if (undeclared.length > 0) {
      throw new Error(
        `routes without an auth declaration (RouteBook auth, config.auth or declareScope): ${undeclared.join('; ')}`,
      );
    }
  });

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const config = req.routeOptions.config as RouteConfig | undefined;
    try {
      if (config?.rateLimit) o.limits?.take(config.rateLimit, req.ip);
      const auth = config?.auth;
      if (!isRoleAuth(auth)) return;
      o.limits?.checkAdminSource(req.ip);
      const principal = await authenticate(req.headers.authorization, o);
      if (!principal) {
        o.limits?.adminAuthFailed(req.ip);
        o.metrics.inc('vouchsafe_admin_requests_total', { outcome: 'unauthorized' });
        reply.header('www-authenticate', 'Bearer realm="vouchsafe-admin"');
        throw new ApiError(
          ErrorCode.Refused,
          'api.admin.unauthorized',
          'a valid admin bearer token is required',
        );
      }
      o.metrics.inc('vouchsafe_admin_requests_total', { outcome: 'authorized' });
      setPrincipal(req, principal);
      actors.set(req, { actor: principal.id, audited: false });
      req.log = req.log.child({ credential: principal.id });
      // Role and the every-project scope depend on nothing in the request: refused before the body is read.
      if (!roleAllows(principal.role, auth.role)) {
        throw new ApiError(ErrorCode.Refused, 'api.auth.role', `this route needs the ${auth.role} role`);
      }
      if (auth.project === 'all' && !principal.projects.includes(ALL_PROJECTS)) throw projectRefused();
    } catch (e) {
      if (e instanceof RateLimited) {
        reply.header('retry-after', String(e.retryAfterSeconds));
        o.metrics.inc('vouchsafe_refusals_total', {
          operation: config?.rateLimit ?? 'admin',
          code: e.code,
          reason: e.reason,
        });
      }
      throw e;
    }
  });

  // The resource's project: after the body is parsed (a scope may read it), before it is validated, so a
  // hidden resource answers as a missing one whatever the body (a schema error would tell them apart).
  app.addHook('preValidation', async (req: FastifyRequest) => {
    const auth = authOf(req);
    if (!isRoleAuth(auth)) return;
    const p = principalOf(req);
    const scope = auth.project;
    if (scope === 'listed' || scope === 'all') return;
    const project = await scope.of(req);
    if (project === undefined || !(p.projects.includes(ALL_PROJECTS) || p.projects.includes(project))) {
      throw scope.hidden(req);
    }
  });

  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const ctx = actors.get(req);
    if (!ctx || ctx.audited || req.method === 'GET' || req.method === 'HEAD' || !o.store) return payload;
    const ok = reply.statusCode < 400;
    const id = (req.params as { id?: unknown } | undefined)?.id;
    await o.store.transaction((tx) =>
      tx.appendAudit({
        time: o.now(),
        kind: 'admin',
        instance: null,
        decision: ok ? 'accept' : 'refuse',
        reasons: [ok ? 'api.admin.done' : reasonOf(payload)],
        evidenceDigest: null,
        details: {
          actor: ctx.actor,
          operation: `${req.method} ${req.routeOptions.url ?? ''}`,
          status: reply.statusCode,
          ...(typeof id === 'string' ? { target: id.slice(0, 200) } : {}),
        },
      }),
    );
    ctx.audited = true;
    return payload;
  });
}

async function authenticate(header: string | undefined, o: AccessOptions): Promise<Principal | undefined> {
  // The admin token file first: constant time whatever was sent (broker-keys.ts checkBearer).
  if (checkBearer(header, o.adminToken)) return BOOTSTRAP;
  const token = typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
  if (token === undefined || !o.store) return undefined;
  const c = await authenticateCredential(o.store, token);
  return c && { id: c.id, name: c.name, role: c.role, projects: c.projects };
}

function reasonOf(payload: unknown): string {
  try {
    const r = (JSON.parse(String(payload)) as { reason?: unknown }).reason;
    return typeof r === 'string' ? r.slice(0, 100) : 'api.refused';
  } catch {
    return 'api.refused';
  }
}

function checkDeclaration(a: unknown, route: string): void {
  if (a === 'public') return;
  const self = (a as { selfAuthenticated?: unknown } | null)?.selfAuthenticated;
  if (typeof self === 'string' && self.length > 0) return;
  const roles = ['read', 'operate', 'admin', 'host'];
  const r = a as Partial<RoleAuth> | null;
  const scopeOk =
    r?.project === 'listed' ||
    r?.project === 'all' ||
    (typeof r?.project === 'object' && r.project !== null && typeof r.project.of === 'function');
  if (typeof r !== 'object' || r === null || !roles.includes(r.role as string) || !scopeOk) {
    throw new Error(
      `route ${route}: auth must be 'public', { role, project } or { selfAuthenticated } (src/api/route-auth.ts)`,
    );
  }
}

/**
 * Declares `auth` for every route added to `scope` (a fastify plugin's instance) that declares none, e.g.
 * a dashboard under a prefix whose routes check a session of their own:
 * `declareScope(scope, { selfAuthenticated: 'dashboard session cookie (src/web/dashboard.ts)' })`.
 */
export function declareScope(scope: FastifyInstance, auth: RouteAuth): void {
  scope.addHook('onRoute', (route: RouteOptions) => {
    const config = (route.config ?? {}) as RouteConfig;
    if (config.auth === undefined) route.config = { ...config, auth } as typeof route.config;
  });
}
