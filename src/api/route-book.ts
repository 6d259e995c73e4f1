import type { Static, TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { asActor } from './access.js';
import type { RateLimitName } from './rate-limits.js';
import type { RouteAuth, RouteConfig } from './route-auth.js';

/** The schemas of one route: what fastify validates and serializes with, and what OpenAPI publishes. */
export interface RouteSchemas {
  readonly body?: TSchema;
  readonly params?: TSchema;
  readonly querystring?: TSchema;
  /** Success responses by status code. Errors are always ErrorBody (added for every route). */
  readonly response: Readonly<Record<number, TSchema>>;
}

export interface RouteDef<S extends RouteSchemas> {
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly url: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  /**
   * Who may call it (src/api/route-auth.ts; docs/access.md): `'public'`, or `{ role, project }`. A route
   * without `auth` (and without `admin: true`) makes the server refuse to start.
   */
  readonly auth?: RouteAuth;
  /** Kept while routes migrate: `admin: true` is `auth: { role: 'admin', project: 'all' }`. */
  readonly admin?: boolean;
  /** A per-source rate limit of src/api/rate-limits.ts this route spends from. */
  readonly rateLimit?: RateLimitName;
  /** For routes that do not answer JSON (e.g. /metrics). */
  readonly produces?: string;
  readonly schema: S;
}

type StaticOr<T, D> = T extends TSchema ? Static<T> : D;

/** A request as a handler sees it: body, params and query typed from the route's schemas. */
export interface TypedRequest<S extends RouteSchemas> {
  readonly body: StaticOr<S['body'], undefined>;
  readonly params: StaticOr<S['params'], Record<string, never>>;
  readonly query: StaticOr<S['querystring'], Record<string, never>>;
  readonly raw: FastifyRequest;
}

/**
 * Registers routes with fastify and remembers their definitions, so that /v1/openapi.json is generated
 * from exactly the schemas fastify validates with (no second description to drift).
 */
export class RouteBook {
  readonly routes: RouteDef<RouteSchemas>[] = [];

  constructor(private readonly errorSchema: TSchema) {}

  add<S extends RouteSchemas>(
    app: FastifyInstance,
    def: RouteDef<S>,
    handler: (req: TypedRequest<S>, reply: FastifyReply) => Promise<unknown>,
  ): void {
    this.routes.push(def);
    const response: Record<string, TSchema> = { '4xx': this.errorSchema, '5xx': this.errorSchema };
    for (const [status, s] of Object.entries(def.schema.response)) response[status] = s;
    app.route({
      method: def.method,
      url: def.url,
      schema: {
        ...(def.schema.body ? { body: def.schema.body } : {}),
        ...(def.schema.params ? { params: def.schema.params } : {}),
        ...(def.schema.querystring ? { querystring: def.schema.querystring } : {}),
        ...(def.produces ? {} : { response }),
      },
      // Enforced for every route by src/api/access.ts (credential in onRequest, before the body is parsed).
      config: routeConfig(def),
      handler: (req, reply) =>
        asActor(req, () =>
          handler(
            {
              body: req.body as TypedRequest<S>['body'],
              params: req.params as TypedRequest<S>['params'],
              query: req.query as TypedRequest<S>['query'],
              raw: req,
            },
            reply,
          ),
        ),
    });
  }
}

/** The fastify `config` of a definition: its auth (an undeclared one stays undefined and is refused at start). */
export function routeConfig(def: Pick<RouteDef<RouteSchemas>, 'auth' | 'admin' | 'rateLimit'>): RouteConfig {
  const auth: RouteAuth | undefined = def.auth ?? (def.admin ? { role: 'admin', project: 'all' } : undefined);
  return { ...(auth !== undefined ? { auth } : {}), ...(def.rateLimit ? { rateLimit: def.rateLimit } : {}) };
}
