import type { KeyObject } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { ErrorCode, isAttestationError, MalformedEvidence } from '../errors.js';
import {
  jwksHandler,
  KBS_ATTEST_PATH,
  KBS_AUTH_PATH,
  KBS_JWKS_PATH,
  KBS_RESOURCE_PATH,
  type KbsDeps,
  kbsRoutes,
  type TokenKeyRotation,
} from '../kbs/index.js';
import type { EcSigner } from '../keys/signer.js';
import { defaultEcdhThreads, EcdhThreads } from '../native/ecdh-threads.js';
import { NativeService } from '../native/service.js';
import type { Store } from '../store/types.js';
import { ErrorBody, Health, TokenKeyRotationResponse } from '../wire/schemas.js';
import { installAccessControl } from './access.js';
import { describePublicKey } from './broker-keys.js';
import { ApiError, errorLogFields, errorResponse } from './http-errors.js';
import {
  applyHttpLimits,
  checkingInterval,
  fastifyLimitOptions,
  type HttpLimits,
  resolveHttpLimits,
} from './http-limits.js';
import { Metrics } from './metrics.js';
import { buildOpenApi } from './openapi.js';
import { type RateLimitConfig, RateLimited, RateLimits } from './rate-limits.js';
import { RefusalLimiter, type RefusalLimitOptions } from './refusal-limiter.js';
import type { RouteConfig } from './route-auth.js';
import { RouteBook } from './route-book.js';
import { registerAdminRoutes } from './routes-admin.js';
import { type CaServiceDeps, registerCaRoutes } from './routes-ca.js';
import { registerCredentialRoutes } from './routes-credentials.js';
import { registerNativeRoutes } from './routes-native.js';

/** Default request body limit: a report, a certificate table and a key, base64, fit many times over. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

export interface BrokerServerOptions {
  readonly broker: Broker;
  /**
   * The broker's ECDSA P-384 response-signing key: the private KeyObject (src/api/broker-keys.ts
   * openSigningKey) or a signer whose key stays in a PKCS#11 token (src/keys).
   */
  readonly signingKey: KeyObject | EcSigner;
  /** The admin bearer token (openAdminToken): the bootstrap credential (role admin, every project). */
  readonly adminToken: string;
  /**
   * The broker's store, for admin credentials (docs/access.md): without it only `adminToken` is accepted
   * and the credential routes are not served.
   */
  readonly store?: Store;
  /**
   * Request rate limits (src/api/rate-limits.ts; defaults DEFAULT_RATE_LIMITS): a configuration, the
   * limiters a started broker shares with its Broker's per-instance admission, or `false` for none.
   */
  readonly rateLimits?: RateLimitConfig | RateLimits | false;
  readonly logger: Logger;
  /**
   * Validates a policy document before it is stored (register, set policy), e.g. parseSnpPolicy. Must
   * throw an AttestationError (InvalidArgument `policy.invalid`) for a bad one.
   */
  readonly checkPolicy: (policy: unknown) => void;
  /** Probes the store for /healthz; throws when it is unusable. */
  readonly health: () => Promise<unknown>;
  /** Request body limit in bytes (default 64 KiB). */
  readonly bodyLimit?: number;
  /** TLS: PEM key and certificate (chain). Plain HTTP when absent. */
  readonly https?: { readonly key: Uint8Array; readonly cert: Uint8Array };
  /** Shared counters (default: new ones). */
  readonly metrics?: Metrics;
  /**
   * The Trustee KBS protocol routes (src/kbs), registered when given, with their JWKS also at
   * `/.well-known/jwks.json`.
   */
  readonly kbs?: KbsDeps;
  /**
   * Per-source limit on guest requests refused without naming a real instance or boot (not audited): over
   * it, 429 with Retry-After (src/api/refusal-limiter.ts; defaults: burst 64, 60 a minute). `false`: off.
   */
  readonly refusalLimit?: RefusalLimitOptions | false;
  /** Rotates the KBS token signing key: `POST /v1/admin/token-keys/rotate` exists only when given. */
  readonly rotateTokenKey?: () => Promise<TokenKeyRotation>;
  /** Socket deadlines and the connection cap, over DEFAULT_HTTP_LIMITS (src/api/http-limits.ts). */
  readonly limits?: Partial<HttpLimits>;
  /** The platform CA as a service (/v1/ca/*, src/api/routes-ca.ts), when this broker serves one. */
  readonly ca?: CaServiceDeps;
  /**
   * Worker threads for the releases' P-521 ECDH (src/native/ecdh-threads.ts); 0 runs it on the event loop.
   * Default: the cores but one, at most 4. Stopped when the server closes.
   */
  readonly ecdhThreads?: number;
}

/**
 * The broker's HTTP server (fastify 5): the native /v1 guest API, the admin API, /healthz, /metrics and
 * /v1/openapi.json, and the KBS routes when configured. Handlers hold no crypto and no policy: they decode,
 * call the broker (through NativeService for guest operations) and encode. Every error leaves through one
 * table (http-errors.ts) as `{code, reason, message, failures?}`. Requests are validated against the
 * typebox schemas (no coercion, unknown properties rejected); bodies over `bodyLimit` are refused (413).
 *
 * Call `ready()` or `listen()` on the result; `close()` does not close the broker's store.
 */
export function buildBrokerServer(opts: BrokerServerOptions): FastifyInstance {
  const metrics = opts.metrics ?? new Metrics();
  const limits = resolveHttpLimits(opts.limits);
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...fastifyLimitOptions(limits),
    ...(opts.https
      ? {
          https: {
            key: Buffer.from(opts.https.key),
            cert: Buffer.from(opts.https.cert),
            connectionsCheckingInterval: checkingInterval(limits),
          },
        }
      : {}),
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
    return503OnClosing: true,
    forceCloseConnections: true,
    // Router refusals (a path parameter over maxParamLength, a malformed URL) go through the one error
    // table too; fastify's own body for them has no `reason` (found by test/fuzz/http.test.ts).
    frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) =>
      sendError(req, reply, fromFastify(err)),
  }) as unknown as FastifyInstance;
  applyHttpLimits(app.server, limits);
  const rateLimits =
    opts.rateLimits === false
      ? undefined
      : opts.rateLimits instanceof RateLimits
        ? opts.rateLimits
        : new RateLimits(opts.rateLimits ?? {});
  // Before any route: every route must declare who may call it (src/api/route-auth.ts).
  installAccessControl(app, {
    adminToken: opts.adminToken,
    ...(opts.store ? { store: opts.store } : {}),
    metrics,
    limits: rateLimits,
    outsideRoutes: KBS_ROUTES,
    now: Date.now,
  });
  // JSON only: a text/plain body is refused (415) instead of being parsed as a string.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: FastifyError, req, reply) => sendError(req, reply, fromFastify(err)));
  app.setNotFoundHandler((req, reply) =>
    sendError(req, reply, new ApiError(ErrorCode.InvalidArgument, 'api.not_found', 'no such route')),
  );

  const book = new RouteBook(ErrorBody);
  const ecdh = new EcdhThreads(opts.ecdhThreads ?? defaultEcdhThreads(), {
    onWorkerFailure: (err) =>
      opts.logger.warn(
        { event: 'ecdh_worker_failed', err },
        'an ECDH worker failed; its work runs on the event loop',
      ),
  });
  app.addHook('onClose', () => ecdh.close());
  const svc = new NativeService(opts.broker, opts.signingKey, metrics, ecdh.agree);
  const pub = describePublicKey('sign' in opts.signingKey ? opts.signingKey.publicKey : opts.signingKey);

  const limiter = opts.refusalLimit === false ? undefined : new RefusalLimiter(opts.refusalLimit ?? {});
  registerNativeRoutes(app, book, svc, pub, limiter);
  registerAdminRoutes(app, book, opts.broker, opts.checkPolicy);
  if (opts.ca) registerCaRoutes(app, book, opts.ca);
  if (opts.store) registerCredentialRoutes(app, book, opts.store);

  book.add(
    app,
    {
      method: 'GET',
      url: '/healthz',
      operationId: 'health',
      summary: 'Liveness and store reachability',
      tags: ['ops'],
      auth: 'public',
      schema: { response: { 200: Health } },
    },
    async () => {
      await opts.health();
      return { status: 'ok' as const };
    },
  );
  book.add(
    app,
    {
      method: 'GET',
      url: '/metrics',
      operationId: 'metrics',
      summary:
        'Prometheus metrics: releases, refusals by code and reason, release latency, KDS cache, leases',
      tags: ['ops'],
      auth: 'public',
      produces: 'text/plain; version=0.0.4',
      schema: { response: { 200: Type.String() } },
    },
    async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render()),
  );
  let openapi: Record<string, unknown> | undefined;
  book.add(
    app,
    {
      method: 'GET',
      url: '/v1/openapi.json',
      operationId: 'openapi',
      summary: 'This API as an OpenAPI 3.1 document',
      tags: ['ops'],
      auth: 'public',
      produces: 'application/json',
      schema: { response: { 200: Type.Object({}, { additionalProperties: true }) } },
    },
    async (_req, reply) => {
      openapi ??= buildOpenApi(book.routes, ErrorBody, { title: 'Vouchsafe key broker', version: '1' });
      return reply.type('application/json').send(JSON.stringify(openapi));
    },
  );

  // ---- Trustee KBS protocol (RCAR) ------------------------------------------------------------------
  // The KBS routes are src/kbs (another module, docs/kbs.md); they share this broker and this server,
  // in their own fastify scope (their error handler answers RFC 7807 problems for /kbs/v0 only).
  const kbs = opts.kbs;
  if (kbs) {
    app.register(kbsRoutes, { ...kbs, metrics: kbs.metrics ?? metrics });
    // The same JWKS where generic JOSE tooling looks for it (RFC 8414-style well-known location).
    app.get(
      '/.well-known/jwks.json',
      { config: { auth: 'public' } satisfies RouteConfig },
      async (_req, reply) => jwksHandler(kbs, reply),
    );
  }
  const rotate = opts.rotateTokenKey;
  if (rotate) {
    book.add(
      app,
      {
        method: 'POST',
        url: '/v1/admin/token-keys/rotate',
        operationId: 'rotateTokenKey',
        summary: 'Make a new KBS token signing key',
        description:
          'The new key signs from now on; older keys stay in the JWKS until the last token they signed has ' +
          'expired (docs/kbs.md).',
        tags: ['admin'],
        auth: { role: 'admin', project: 'all' },
        schema: {
          response: { 200: TokenKeyRotationResponse },
        },
      },
      async (req) => {
        const r = await rotate();
        req.raw.log.info(
          { event: 'token_key_rotated', kid: r.kid, alg: r.alg },
          'KBS token signing key rotated',
        );
        return { kid: r.kid, alg: r.alg, published: r.published };
      },
    );
  }

  return app;
}

/**
 * The KBS plugin's routes (src/kbs, registered on fastify directly): public guest routes, each KBS
 * request limited per source (src/api/rate-limits.ts). Any other route the plugin adds must declare its
 * own `config.auth`, or the server does not start.
 */
const KBS_ROUTES: ReadonlyMap<string, RouteConfig> = new Map<string, RouteConfig>([
  [`POST ${KBS_AUTH_PATH}`, { auth: 'public', rateLimit: 'kbsAuth' }],
  [`POST ${KBS_ATTEST_PATH}`, { auth: 'public', rateLimit: 'kbsAttest' }],
  [`GET ${KBS_RESOURCE_PATH}`, { auth: 'public' }],
  [`HEAD ${KBS_RESOURCE_PATH}`, { auth: 'public' }],
  [`GET ${KBS_JWKS_PATH}`, { auth: 'public' }],
  [`HEAD ${KBS_JWKS_PATH}`, { auth: 'public' }],
]);

/** Fastify's own errors (validation, body parsing, size, media type) as typed API errors. */
function fromFastify(err: FastifyError): unknown {
  if (isAttestationError(err)) return err;
  if (err.validation) {
    return new MalformedEvidence(
      'api.schema',
      `${err.validationContext ?? 'request'}: ${err.message}`.slice(0, 300),
    );
  }
  const status = err.statusCode ?? 500;
  if (status === 413)
    return new ApiError(ErrorCode.Malformed, 'api.body_too_large', 'request body too large');
  if (status === 415) return new ApiError(ErrorCode.Malformed, 'api.content_type', 'send application/json');
  if (status >= 400 && status < 500) {
    return new MalformedEvidence('api.request', `${err.code ?? 'bad request'}: ${err.message}`.slice(0, 300));
  }
  return err;
}

function sendError(req: FastifyRequest, reply: FastifyReply, e: unknown): FastifyReply {
  const { status, body } = errorResponse(e);
  if (e instanceof RateLimited) reply.header('retry-after', String(e.retryAfterSeconds));
  if (status >= 500 && !isAttestationError(e)) {
    // Ours, not the caller's: log what happened (never the request body), tell the client nothing.
    req.log.error({ err: e, route: req.routeOptions?.url }, 'internal error');
  } else {
    // A policy refusal's expected and actual values are logged here and never sent (http-errors.ts).
    const fields = isAttestationError(e)
      ? errorLogFields(e, status)
      : { code: body.code, reason: body.reason, status };
    req.log.info(fields, 'request refused');
  }
  return reply.code(status).type('application/json').send(body);
}
