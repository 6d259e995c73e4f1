import type { FastifyPluginAsync } from 'fastify';
import type { KbsDeps } from './deps.js';
import { registerKbsRoutes } from './routes.js';

/**
 * The Trustee KBS protocol (RCAR) as a fastify plugin: POST /kbs/v0/auth, POST /kbs/v0/attest,
 * GET /kbs/v0/resource/<repository>/<type>/<tag>, GET /kbs/v0/.well-known/jwks. Register without a
 * prefix: `app.register(kbsRoutes, deps)`. docs/kbs.md describes the wire format, the bindings, tokens
 * and problem types.
 */
export const kbsRoutes: FastifyPluginAsync<KbsDeps> = async (app, deps) => {
  await registerKbsRoutes(app, deps);
};

export * from './binding.js';
export * from './broker-adapter.js';
export * from './broker-kbs.js';
export * from './deps.js';
export * from './file-secrets.js';
export * from './grants.js';
export * from './jwe.js';
export * from './messages.js';
export * from './problem.js';
export * from './resource-policy.js';
export { jwksHandler, KBS_ATTEST_PATH, KBS_AUTH_PATH, KBS_JWKS_PATH, KBS_RESOURCE_PATH } from './routes.js';
export * from './secrets.js';
export * from './shared-token-keys.js';
export * from './store-sessions.js';
export * from './tee-pubkey.js';
export * from './token-keys.js';
