import { Type } from '@sinclair/typebox';

/** The admin credential routes' schemas (docs/access.md; src/api/routes-credentials.ts). */

export const CredentialRoleSchema = Type.Union([
  Type.Literal('read'),
  Type.Literal('operate'),
  Type.Literal('admin'),
  Type.Literal('host'),
]);

export const CredentialView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: CredentialRoleSchema,
  projects: Type.Array(Type.String()),
  createdAt: Type.Integer(),
  revokedAt: Type.Union([Type.Integer(), Type.Null()]),
});

export const CreateCredentialRequest = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    role: CredentialRoleSchema,
    projects: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 64 }),
  },
  { additionalProperties: false },
);

export const CreatedCredential = Type.Object({
  credential: CredentialView,
  /** The bearer token, `vsc_<id>_<secret>`: shown once, never stored. */
  token: Type.String(),
});

export const CredentialList = Type.Object({ credentials: Type.Array(CredentialView) });

export const CredentialParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
