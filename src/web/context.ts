import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../api/http-errors.js';
import type { BrokerParts } from '../api/start.js';
import { runAsActor } from '../broker/actor.js';
import type { PlatformCa } from '../ca/platform-ca.js';
import { ErrorCode } from '../errors.js';
import type { CredentialRole } from '../store/types.js';
import type { AuditFeed } from './feed.js';
import { canSee, hasRole, type Principal, seesAll } from './principal.js';
import type { Session, SessionStore } from './sessions.js';

/** What every dashboard route module is given. */
export interface DashboardContext {
  readonly parts: BrokerParts;
  readonly sessions: SessionStore;
  readonly feed: AuditFeed;
  readonly ca: PlatformCa | undefined;
  readonly now: () => number;
  /** The route prefix without its trailing slash, e.g. `/ui`. */
  readonly base: string;
}

/** The session a request's route handler runs in (set by the dashboard's auth hook). */
export function sessionOf(req: FastifyRequest): Session {
  const s = (req as FastifyRequest & { dashboardSession?: Session }).dashboardSession;
  if (!s) throw new ApiError(ErrorCode.Refused, 'web.unauthorized', 'sign in first');
  return s;
}

export function setSession(req: FastifyRequest, s: Session): void {
  (req as FastifyRequest & { dashboardSession?: Session }).dashboardSession = s;
}

export function principalOf(req: FastifyRequest): Principal {
  return sessionOf(req).principal;
}

/** Throws `web.forbidden` unless the principal has `role`. */
export function requireRole(p: Principal, role: CredentialRole): void {
  if (!hasRole(p, role)) throw new ApiError(ErrorCode.Refused, 'web.forbidden', `needs the ${role} role`);
}

/** Throws `web.forbidden` unless the principal sees every project (platform-wide figures). */
export function requireAllProjects(p: Principal): void {
  if (!seesAll(p))
    throw new ApiError(
      ErrorCode.Refused,
      'web.forbidden',
      'platform-wide; needs a credential for all projects',
    );
}

/**
 * An instance of another project is answered exactly like one that does not exist, so a scoped operator
 * learns nothing of the other projects' instance ids.
 */
export function notFound(id: string): ApiError {
  return new ApiError(
    ErrorCode.InvalidArgument,
    'broker.instance_not_found',
    `no instance ${id.slice(0, 64)}`,
  );
}

export function visible(p: Principal, project: string | null | undefined): boolean {
  return canSee(p, project);
}

export type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * Runs a dashboard action as its principal: the audit entries the Broker writes meanwhile name the
 * credential in `details.actor` (src/broker/actor.ts), as for the admin API.
 */
export function actAs<T>(req: FastifyRequest, fn: () => T): T {
  return runAsActor({ actor: principalOf(req).id, audited: false }, fn);
}
