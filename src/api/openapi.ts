import type { TSchema } from '@sinclair/typebox';
import { type RouteDef, type RouteSchemas, routeConfig } from './route-book.js';

/**
 * The OpenAPI 3.1 document of the routes in a {@link RouteBook}, built from the same typebox schemas
 * fastify validates with. Served at GET /v1/openapi.json.
 */
export function buildOpenApi(
  routes: readonly RouteDef<RouteSchemas>[],
  errorSchema: TSchema,
  info: { title: string; version: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const op: Record<string, unknown> = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: [...r.tags],
    };
    // Who may call it (docs/access.md): a bearer credential, the role and how it is scoped to projects.
    const auth = routeConfig(r).auth;
    if (typeof auth === 'object' && 'role' in auth) {
      op.security = [{ adminToken: [] }];
      op['x-vouchsafe-auth'] = {
        role: auth.role,
        project: typeof auth.project === 'string' ? auth.project : 'resource',
      };
    }
    const parameters = [...paramsOf(r.schema.params, 'path'), ...paramsOf(r.schema.querystring, 'query')];
    if (parameters.length > 0) op.parameters = parameters;
    if (r.schema.body) {
      op.requestBody = { required: true, content: { 'application/json': { schema: plain(r.schema.body) } } };
    }
    const responses: Record<string, unknown> = {};
    for (const [status, s] of Object.entries(r.schema.response)) {
      responses[status] = {
        description: Number(status) === 201 ? 'Created' : 'OK',
        content: { [r.produces ?? 'application/json']: { schema: plain(s) } },
      };
    }
    const err = { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    responses['4XX'] = { description: 'Refused or invalid request (docs/api.md "Status codes")', ...err };
    responses['5XX'] = { description: 'Collateral unavailable, not supported, or internal error', ...err };
    op.responses = responses;
    paths[path] ??= {};
    paths[path][r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      schemas: { Error: plain(errorSchema) },
      securitySchemes: {
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An admin credential: the token in the data directory (file `admin-token`, mode 0600) or a ' +
            '`vsc_<id>_<secret>` token from `vouchsafe credential create` (docs/access.md)',
        },
      },
    },
  };
}

/** A schema as plain JSON (typebox marks its objects with symbol keys, which JSON drops anyway). */
function plain(s: TSchema): unknown {
  return JSON.parse(JSON.stringify(s));
}

function paramsOf(s: TSchema | undefined, where: 'path' | 'query'): unknown[] {
  if (!s) return [];
  const props = (s as { properties?: Record<string, TSchema> }).properties ?? {};
  const required = new Set((s as { required?: string[] }).required ?? []);
  return Object.entries(props).map(([name, schema]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: plain(schema),
    ...(schema.description ? { description: schema.description } : {}),
  }));
}
