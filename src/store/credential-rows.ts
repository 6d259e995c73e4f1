/** Row <-> record mapping of the credentials table (migration 6), shared by both engines. */
import { bytes, num } from './rows.js';
import { CREDENTIAL_ROLES, type CredentialRecord, type CredentialRole } from './types.js';

export const CREDENTIAL_COLUMNS = 'id, name, role, projects, secret_hash, created_at, revoked_at';

type Row = Record<string, unknown>;

/** The row's values in CREDENTIAL_COLUMNS order (projects as a JSON array). */
export function credentialValues(c: CredentialRecord): unknown[] {
  return [
    c.id,
    c.name,
    c.role,
    JSON.stringify(c.projects),
    Buffer.from(c.secretHash),
    c.createdAt,
    c.revokedAt,
  ];
}

export function toCredential(r: Row): CredentialRecord {
  const role = r.role as string;
  if (!(CREDENTIAL_ROLES as readonly string[]).includes(role)) {
    throw new TypeError(`store returned an unknown credential role: ${role.slice(0, 20)}`);
  }
  const projects = JSON.parse(r.projects as string) as unknown;
  if (!Array.isArray(projects) || !projects.every((p) => typeof p === 'string')) {
    throw new TypeError('store returned credential projects that are not a list of names');
  }
  return {
    id: r.id as string,
    name: r.name as string,
    role: role as CredentialRole,
    projects,
    secretHash: bytes(r.secret_hash),
    createdAt: num(r.created_at),
    revokedAt: r.revoked_at === null || r.revoked_at === undefined ? null : num(r.revoked_at),
  };
}
