import type { FastifyInstance } from 'fastify';
import { createCredential, revokeCredential, viewOf } from '../broker/credentials.js';
import type { Store } from '../store/types.js';
import {
  CreateCredentialRequest,
  CreatedCredential,
  CredentialList,
  CredentialParams,
  CredentialView,
} from '../wire/credentials.js';
import type { RouteBook } from './route-book.js';

const tags = ['admin'];
const auth = { role: 'admin', project: 'all' } as const;

/**
 * Admin credentials (docs/access.md): create (the token is in this answer only), list, revoke. Only an
 * admin credential for every project may manage them: a credential must not mint one wider than itself.
 * Creation and revocation are audited with the acting credential (src/broker/credentials.ts).
 */
export function registerCredentialRoutes(
  app: FastifyInstance,
  book: RouteBook,
  store: Store,
  now: () => number = Date.now,
): void {
  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/admin/credentials',
      operationId: 'createCredential',
      summary: 'Create an admin credential; its bearer token is returned once and never stored',
      tags,
      auth,
      schema: { body: CreateCredentialRequest, response: { 201: CreatedCredential } },
    },
    async (req, reply) => reply.code(201).send(await createCredential(store, req.body, now())),
  );
  book.add(
    app,
    {
      method: 'GET',
      url: '/v1/admin/credentials',
      operationId: 'listCredentials',
      summary: 'List admin credentials, revoked ones too (never their secrets)',
      tags,
      auth,
      schema: { response: { 200: CredentialList } },
    },
    async () => ({ credentials: (await store.listCredentials()).map(viewOf) }),
  );
  book.add(
    app,
    {
      method: 'POST',
      url: '/v1/admin/credentials/:id/revoke',
      operationId: 'revokeCredential',
      summary: 'Revoke an admin credential: refused from the next request on, on every replica',
      tags,
      auth,
      schema: { params: CredentialParams, response: { 200: CredentialView } },
    },
    async (req) => revokeCredential(store, req.params.id, now()),
  );
}
