import type { FastifyRequest } from 'fastify';
import type { Broker } from '../broker/broker.js';
import { ALL_PROJECTS, type CredentialView, projectAllowed } from '../broker/credentials.js';
import { ErrorCode, InvalidArgument } from '../errors.js';
import type { CredentialRole } from '../store/types.js';
import { ApiError } from './http-errors.js';
import type { RateLimitName } from './rate-limits.js';

/**
 * What a route needs from its caller (docs/access.md). Every route declares one, in its RouteBook
 * definition (`auth`) or, for a route registered on fastify directly, in `config.auth`; a route that
 * declares nothing makes the server refuse to start (src/api/access.ts). Enforced in one place for every
 * route: the credential, the role and the every-project scope in onRequest (before the body is read), a
 * resource's project in preValidation (the body is parsed, so a scope may read params or the body, but not
 * yet validated: a hidden resource answers as a missing one whatever the body).
 *
 * - `'public'`: no credential (guest routes, health, metrics, OpenAPI).
 * - `{ role, project }`: a credential whose role allows `role` (read < operate < admin; host: host,
 *   operate, admin) and whose projects cover the request's:
 *   - a {@link ProjectScope} (e.g. {@link instanceScope}): the project of the resource the request names;
 *     a resource in a project the credential does not cover is answered exactly as a missing one
 *     (404 for an instance), so its existence does not leak;
 *   - `'listed'`: the handler lists only what {@link visibleProjects} allows;
 *   - `'all'`: only a credential for every project (`*`) may call it (instance-independent operations:
 *     credentials, token keys, the whole audit chain).
 * - `{ selfAuthenticated: 'how' }`: the route authenticates its caller itself.
 */
export type RouteAuth = 'public' | RoleAuth | SelfAuthenticated;

/**
 * The route checks its caller itself (a dashboard's session cookie, signed in with a credential): say
 * how, in a few words; the access layer neither authenticates nor audits it. Use sparingly.
 */
export interface SelfAuthenticated {
  readonly selfAuthenticated: string;
}

export interface RoleAuth {
  readonly role: CredentialRole;
  readonly project: ProjectScope | 'listed' | 'all';
}

export interface ProjectScope {
  /** The project of the resource the request names; undefined when there is no such resource. */
  readonly of: (req: FastifyRequest) => Promise<string | undefined>;
  /** What to throw when the resource is missing or in a project the credential does not cover. */
  readonly hidden: (req: FastifyRequest) => Error;
}

/** `config` of a fastify route: its auth declaration and, optionally, its rate limit. */
export interface RouteConfig {
  readonly auth?: RouteAuth;
  readonly rateLimit?: RateLimitName;
}

/** The credential a request was authenticated with (the admin token file is `bootstrap`, admin, `*`). */
export type Principal = Pick<CredentialView, 'id' | 'name' | 'role' | 'projects'>;

const principals = new WeakMap<FastifyRequest, Principal>();

/** Records the request's principal (src/api/access.ts). */
export function setPrincipal(req: FastifyRequest, p: Principal): void {
  principals.set(req, p);
}

/** The principal of an authenticated request; throws for a route that declared `public`. */
export function principalOf(req: FastifyRequest): Principal {
  const p = principals.get(req);
  if (!p) throw new Error('principalOf: the route is not authenticated');
  return p;
}

/** The projects the request's credential may see: `'*'` for all, else the list. */
export function visibleProjects(req: FastifyRequest): '*' | ReadonlySet<string> {
  const { projects } = principalOf(req);
  return projects.includes(ALL_PROJECTS) ? '*' : new Set(projects);
}

/** True when the request's credential covers `project`. */
export function canSee(req: FastifyRequest, project: string): boolean {
  return projectAllowed(principalOf(req).projects, project);
}

/** The instance named by the `:id` path parameter (404 `broker.instance_not_found` when hidden). */
export function instanceScope(broker: Pick<Broker, 'getInstance'>): ProjectScope {
  const idOf = (req: FastifyRequest) => String((req.params as { id?: unknown }).id ?? '');
  return {
    of: async (req) => (await broker.getInstance(idOf(req)))?.project,
    hidden: (req) => new InvalidArgument('broker.instance_not_found', `no instance ${idOf(req)}`),
  };
}

/**
 * The project the request body names (`body.project`, e.g. a registration). A project the credential
 * does not cover is 403 `api.auth.project`: the caller chose the name, so refusing it tells nothing.
 */
export function bodyProjectScope(): ProjectScope {
  return {
    of: async (req) => {
      const p = (req.body as { project?: unknown } | undefined)?.project;
      return typeof p === 'string' ? p : undefined;
    },
    hidden: () => projectRefused(),
  };
}

export function projectRefused(): ApiError {
  return new ApiError(ErrorCode.Refused, 'api.auth.project', 'this credential may not act on that project');
}
