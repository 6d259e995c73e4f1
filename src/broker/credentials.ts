import { createHash, randomBytes } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import {
  type AuditDetailValue,
  CREDENTIAL_ROLES,
  type CredentialRecord,
  type CredentialRole,
  type Store,
} from '../store/types.js';
import { ctEqual } from '../util/bytes.js';
import { currentActor } from './actor.js';

/**
 * Admin credentials (issue 14 "Who may do what"; docs/access.md): a role, the projects (tenants) a
 * credential may see and act on, and a secret the store keeps only as a SHA-256.
 *
 * The bearer token is `vsc_<id>_<secret>`: the id (16 hex digits, not secret) finds the row, then the
 * SHA-256 of the secret is compared with the stored one in constant time. The secret is 32 random bytes
 * (base64url): a 256-bit value cannot be guessed or brute-forced from its hash, so a slow password hash
 * (scrypt, Argon2) would add CPU per request and no protection; it is for low-entropy, human-chosen
 * secrets, which these never are.
 */

/** Everything but the secret hash: what listings and the API show. */
export type CredentialView = Omit<CredentialRecord, 'secretHash'>;

/** The id `bootstrap`: the admin token file's credential (role admin, every project). */
export const BOOTSTRAP_ID = 'bootstrap';
/** All projects. */
export const ALL_PROJECTS = '*';

const TOKEN = /^vsc_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const PROJECT = /^[\x21-\x7e]{1,128}$/;
const NAME_MAX = 200;

const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s, 'latin1').digest());
/** Compared against for an unknown id, so a miss does the same hashing and comparison as a hit. */
const NO_HASH = new Uint8Array(32);

export interface CreateCredentialRequest {
  readonly name: string;
  readonly role: CredentialRole;
  readonly projects: readonly string[];
}

/** What `create` returns: the record and the bearer token, which is shown once and never stored. */
export interface CreatedCredential {
  readonly credential: CredentialView;
  readonly token: string;
}

export function viewOf(c: CredentialRecord): CredentialView {
  const { secretHash: _, ...v } = c;
  return v;
}

/** True when a credential of `role` may use a route that needs `need` (docs/access.md "Roles"). */
export function roleAllows(role: CredentialRole, need: CredentialRole): boolean {
  switch (need) {
    case 'read':
      return role === 'read' || role === 'operate' || role === 'admin';
    case 'operate':
      return role === 'operate' || role === 'admin';
    case 'admin':
      return role === 'admin';
    case 'host':
      // Ending a boot and relaying guest traffic are also an operator's to do; `read` may not.
      return role === 'host' || role === 'operate' || role === 'admin';
  }
}

/** True when `projects` (a credential's) covers `project`. */
export function projectAllowed(projects: readonly string[], project: string): boolean {
  return projects.includes(ALL_PROJECTS) || projects.includes(project);
}

/** Checks a create request. Throws InvalidArgument `credential.name`, `credential.role`, `credential.projects`. */
export function checkCreateRequest(r: CreateCredentialRequest): CreateCredentialRequest {
  if (typeof r.name !== 'string' || r.name.length < 1 || r.name.length > NAME_MAX || /[\0-\x1f]/.test(r.name))
    throw new InvalidArgument('credential.name', `name: 1..${NAME_MAX} characters, no control characters`);
  if (!(CREDENTIAL_ROLES as readonly string[]).includes(r.role))
    throw new InvalidArgument('credential.role', `role: one of ${CREDENTIAL_ROLES.join(', ')}`);
  if (!Array.isArray(r.projects) || r.projects.length < 1 || r.projects.length > 64)
    throw new InvalidArgument('credential.projects', 'projects: 1..64 project names, or "*" for all');
  for (const p of r.projects) {
    if (typeof p !== 'string' || !PROJECT.test(p))
      throw new InvalidArgument('credential.projects', 'a project is 1..128 visible ASCII characters');
  }
  const projects = [...new Set(r.projects)].sort();
  return {
    name: r.name,
    role: r.role,
    projects: projects.includes(ALL_PROJECTS) ? [ALL_PROJECTS] : projects,
  };
}

/** The credential's id if `token` is shaped like one (`vsc_<id>_<secret>`), else undefined. */
export function credentialIdOf(token: string): string | undefined {
  return TOKEN.exec(token)?.[1];
}

/**
 * Creates a credential and audits it (`credential_create`, in the same transaction, with the acting
 * credential as `details.actor`). Throws InvalidArgument as {@link checkCreateRequest}.
 */
export async function createCredential(
  store: Store,
  req: CreateCredentialRequest,
  now: number,
): Promise<CreatedCredential> {
  const r = checkCreateRequest(req);
  for (;;) {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const rec: CredentialRecord = { id, ...r, secretHash: sha256(secret), createdAt: now, revokedAt: null };
    const inserted = await store.transaction(async (tx) => {
      if (!(await tx.insertCredential(rec))) return false;
      await tx.appendAudit(
        entry(now, 'credential_create', ['credential.created'], {
          credential: id,
          name: r.name,
          role: r.role,
          projects: r.projects.join(','),
        }),
      );
      return true;
    });
    // A 64-bit id collision: draw again (the secret too).
    if (inserted) return { credential: viewOf(rec), token: `vsc_${id}_${secret}` };
  }
}

/**
 * Revokes a credential (audited `credential_revoke`); it stops working at the next request on every
 * replica (each request reads it from the store). Revoking twice keeps the first time. Throws
 * InvalidArgument `credential.not_found`.
 */
export async function revokeCredential(store: Store, id: string, now: number): Promise<CredentialView> {
  return store.transaction(async (tx) => {
    const r = await tx.revokeCredential(id, now);
    if (!r) throw new InvalidArgument('credential.not_found', 'no such credential');
    await tx.appendAudit(
      entry(now, 'credential_revoke', ['credential.revoked'], { credential: id, revokedAt: r.revokedAt }),
    );
    return viewOf(r);
  });
}

/**
 * The live credential a bearer token names, or undefined (unknown, revoked, wrong secret, not a token).
 * The secret's hash is compared in constant time, and a token for an unknown id is compared against a
 * dummy hash, so the work done does not depend on how much of the secret was right.
 */
export async function authenticateCredential(
  store: Pick<Store, 'getCredential'>,
  token: string,
): Promise<CredentialView | undefined> {
  const m = TOKEN.exec(token);
  if (!m) return undefined;
  const rec = await store.getCredential(m[1]!);
  const same = ctEqual(sha256(m[2]!), rec?.secretHash ?? NO_HASH);
  if (!rec || !same || rec.revokedAt !== null) return undefined;
  return viewOf(rec);
}

function entry(time: number, kind: string, reasons: string[], details: Record<string, AuditDetailValue>) {
  const actor = currentActor();
  if (actor) actor.audited = true;
  return {
    time,
    kind,
    instance: null,
    decision: 'accept' as const,
    reasons,
    evidenceDigest: null,
    details: { ...details, ...(actor ? { actor: actor.actor } : {}) },
  };
}
