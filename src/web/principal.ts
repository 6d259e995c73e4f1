import { createHash } from 'node:crypto';
import {
  ALL_PROJECTS,
  authenticateCredential,
  BOOTSTRAP_ID,
  projectAllowed,
  roleAllows,
} from '../broker/credentials.js';
import type { CredentialRole, Store } from '../store/types.js';
import { ctEqual } from '../util/bytes.js';

/**
 * Who a dashboard session acts as: a credential of the credentials service (migration 6,
 * src/broker/credentials.ts; docs/access.md) or the admin token file's bootstrap credential. Every page,
 * JSON answer and feed event is filtered by {@link canSee} before it leaves the broker (issue 15: "nothing
 * of another project is ever sent to the browser"), and every action checks {@link hasRole}.
 */
export interface Principal {
  /** The credential id (`bootstrap` for the admin token file): audit entries name it as `details.actor`. */
  readonly id: string;
  /** Shown in the header and the broker's log; never a secret. */
  readonly name: string;
  /** `read` reads; `operate` also registers instances, rotates keys and ends boots; `admin` also edits policies and revokes certificates. */
  readonly role: Exclude<CredentialRole, 'host'>;
  /** The projects whose instances, audit entries and certificates it may see; `*` for all. */
  readonly projects: readonly string[];
}

/** Checks a credential typed at the sign-in page: the principal it names, or undefined. */
export type Authenticate = (credential: string) => Promise<Principal | undefined>;

export function hasRole(p: Principal, needed: CredentialRole): boolean {
  return roleAllows(p.role, needed);
}

/** Whether `p` sees every project (platform-wide figures: metrics, the whole audit chain). */
export function seesAll(p: Principal): boolean {
  return p.projects.includes(ALL_PROJECTS);
}

/** Whether `p` may see what belongs to `project` (null: belongs to no project, so only all-project principals). */
export function canSee(p: Principal, project: string | null | undefined): boolean {
  if (typeof project !== 'string') return seesAll(p);
  return projectAllowed(p.projects, project);
}

/**
 * The admin token file as a sign-in credential: the bootstrap credential (admin, every project). Compared
 * as SHA-256 digests in constant time, so neither the token's bytes nor its length leak through timing.
 */
export function adminTokenAuthenticator(adminToken: string): Authenticate {
  const want = digest(adminToken);
  return async (credential) =>
    ctEqual(digest(credential), want)
      ? { id: BOOTSTRAP_ID, name: 'admin token file', role: 'admin', projects: [ALL_PROJECTS] }
      : undefined;
}

/**
 * Stored credentials (`vsc_<id>_<secret>`, src/broker/credentials.ts: constant-time, revocation honoured
 * at every sign-in). A `host` credential is a VMM backend's, not a person's: it does not sign in here.
 */
export function credentialAuthenticator(store: Pick<Store, 'getCredential'>): Authenticate {
  return async (credential) => {
    const c = await authenticateCredential(store, credential);
    if (!c || c.role === 'host') return undefined;
    return { id: c.id, name: c.name, role: c.role, projects: [...c.projects] };
  };
}

/** Tries each authenticator in turn; the first principal wins. */
export function anyOf(...auths: readonly Authenticate[]): Authenticate {
  return async (credential) => {
    for (const a of auths) {
      const p = await a(credential);
      if (p) return p;
    }
    return undefined;
  };
}

function digest(s: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(s, 'utf8').digest());
}
