/**
 * The store: one interface, two engines (SQLite embedded, PostgreSQL shared by many broker replicas).
 *
 * The interface is shaped around the broker's atomic steps rather than around SQL: single-statement
 * operations that are atomic on their own (issue and consume a challenge), and {@link Store.transaction}
 * for the multi-step ones (start a boot, commit a counter, create a sealing key, append to the audit log).
 * Each engine implements the same contract (test/store/contract.ts runs against both).
 *
 * Times are integer milliseconds since the Unix epoch, always supplied by the caller (the broker's
 * injected clock), never read from the database server.
 */

import type { PlatformIdentity } from '../formats/platform-identity.js';
import type { KbsStateStore } from './kbs-state-types.js';

export type Engine = 'sqlite' | 'postgres';

/** A JSON value, stored as text and returned parsed. The broker treats instance policies as opaque JSON. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | { readonly [k: string]: JsonValue };

/** The boot a broker currently counts as running for an instance (at most one). */
export interface ActiveBoot {
  readonly bootId: string;
  readonly startedAt: number;
  /** The boot counts as active while `now < leaseExpiresAt`; heartbeats move it forward. */
  readonly leaseExpiresAt: number;
  /** SHA-256 of the commit token; the token itself is never stored. */
  readonly tokenHash: Uint8Array;
  /**
   * The launch this boot was released to (SEV-SNP REPORT_ID; migration 4): a re-attestation with the same
   * launch id is the same boot. Null for a boot started before launch ids were stored, or from evidence
   * without one. Omitted in a write: stored as null.
   */
  readonly launchId?: Uint8Array | null;
}

/**
 * What a new launch does while another launch of the instance holds an unexpired lease (docs/broker.md
 * "Leases"): `takeover` (default) makes it the active boot and ends the other; `refuse` refuses it
 * (`broker.clone`) until the lease runs out or the VMM ends the boot; `allow` releases the key without
 * touching the active boot (the new launch cannot commit, heartbeat or end).
 */
export type NewLaunchPolicy = 'takeover' | 'refuse' | 'allow';

/** Every {@link NewLaunchPolicy}, default first. */
export const NEW_LAUNCH_POLICIES: readonly NewLaunchPolicy[] = ['takeover', 'refuse', 'allow'];

/** Rollback/clone state of one instance. */
export interface BootState {
  /** The last state counter the running guest committed; null before the first commit. */
  readonly committedCounter: number | null;
  /**
   * SHA-256 of the sealed state file committed with `committedCounter` (migration 2). Null before the first
   * commit, and for a counter committed before digests were recorded. Omitted in a write: stored as null.
   */
  readonly committedDigest?: Uint8Array | null;
  readonly activeBoot: ActiveBoot | null;
}

/**
 * The TEEs an instance can be registered for, each with its own identity field (migration 5): `snp`
 * (HOST_DATA, 32 bytes) and `tdx` (MRCONFIGID, 48 bytes).
 */
export type RegistryTee = 'snp' | 'tdx';

/** Every {@link RegistryTee}, default first. */
export const REGISTRY_TEES: readonly RegistryTee[] = ['snp', 'tdx'];

export interface InstanceRecord extends PlatformIdentity {
  /** Broker-assigned id (a UUID). */
  readonly id: string;
  /**
   * The identity value the VMM sets at launch, issued or accepted at registration (unique): SEV-SNP
   * HOST_DATA (32 bytes) or TDX MRCONFIGID (48 bytes), as `tee` says. Stored in the `host_data` column.
   */
  readonly hostData: Uint8Array;
  /** Which TEE's identity field `hostData` is (migration 5); omitted in an insert: `snp`. */
  readonly tee?: RegistryTee;
  readonly policy: JsonValue;
  readonly createdAt: number;
  /** Migration 4; omitted in an insert (and for rows written before it): `takeover`. */
  readonly newLaunch?: NewLaunchPolicy;
}

export interface InstanceWithState extends InstanceRecord, BootState {}

/** A sealing key at rest: AES-256-GCM ciphertext under the KEK, bound to (instanceId, version) by AAD. */
export interface SealingKeyRecord {
  readonly instanceId: string;
  readonly version: number;
  readonly wrapped: Uint8Array;
  /** Identifies the KEK that wrapped it (not secret). */
  readonly kekId: string;
  readonly createdAt: number;
}

export type AuditDecision = 'accept' | 'refuse';
export type AuditDetailValue = string | number | boolean | null;

/** What a caller appends; the store assigns `seq`, `prevHash` and `hash` under the head lock. */
export interface AuditDraft {
  readonly time: number;
  /** What was decided on: 'release', 'commit', 'heartbeat', 'end', 'reset', 'register', 'policy', 'rotate'. */
  readonly kind: string;
  /** The broker's instance id, when known. */
  readonly instance: string | null;
  readonly decision: AuditDecision;
  /** Stable reasons: every failure for a refusal; what happened for an acceptance. */
  readonly reasons: readonly string[];
  /** Hex SHA-256 of the attestation report the decision rests on, when there was one. */
  readonly evidenceDigest: string | null;
  /** Small, non-secret facts (boot id, key version, counters). Never keys or tokens. */
  readonly details: Readonly<Record<string, AuditDetailValue>>;
}

export interface AuditEntry extends AuditDraft {
  /** 1, 2, 3, ... without gaps. */
  readonly seq: number;
  /** `hash` of the previous entry; 64 zeros for the first. */
  readonly prevHash: string;
  /** Hex SHA-256 over the canonical encoding of every other field (see audit-hash.ts). */
  readonly hash: string;
}

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/**
 * What an admin credential may do (docs/access.md): `read` < `operate` < `admin`, and `host`, the VMM
 * backend's, which may end boots and relay guest traffic but never register, read instances or keys.
 */
export type CredentialRole = 'read' | 'operate' | 'admin' | 'host';

/** Every {@link CredentialRole}. */
export const CREDENTIAL_ROLES: readonly CredentialRole[] = ['read', 'operate', 'admin', 'host'];

/** An admin credential (migration 6). The secret itself is never stored. */
export interface CredentialRecord {
  /** Public identifier, part of the bearer token and named in the audit log. */
  readonly id: string;
  /** The operator's label (who or what holds it). */
  readonly name: string;
  readonly role: CredentialRole;
  /** Projects (tenants) it may see and act on; `['*']` for all. */
  readonly projects: readonly string[];
  /** SHA-256 of the secret (a 256-bit random value, so a fast hash suffices: docs/access.md). */
  readonly secretHash: Uint8Array;
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

/** Result of {@link StoreTx.insertInstance}. */
export type InsertInstanceResult = 'inserted' | 'duplicate_host_data' | 'duplicate_identity';

/**
 * Operations inside one transaction. Valid only until the callback passed to
 * {@link Store.transaction} settles.
 */
export interface LockOptions {
  /**
   * The caller appends an audit entry when it succeeds: on PostgreSQL the audit head is locked in the same
   * statement (after the instance row) unless the transaction holds it already, saving appendAudit a round
   * trip. Leave unset where nothing is appended (a heartbeat): the head is one lock for every decision.
   */
  readonly auditHead?: boolean;
}

/** An instance locked for the transaction, with its newest sealing key (undefined before the first). */
export interface LockedInstance {
  readonly instance: InstanceWithState;
  readonly latestKey: SealingKeyRecord | undefined;
}

/**
 * What a decision writes with its audit entry: the instance's boot state (as {@link StoreTx.setBootState}),
 * in the same statement on PostgreSQL, so a decision's writes cost one round trip.
 */
export interface AuditWith {
  readonly bootState?: { readonly instanceId: string; readonly state: BootState };
}

export interface StoreTx {
  insertInstance(rec: InstanceRecord): Promise<InsertInstanceResult>;
  /**
   * Reads an instance and locks it for the rest of the transaction (PostgreSQL `SELECT ... FOR UPDATE`;
   * SQLite holds the database write lock from `BEGIN IMMEDIATE` already). Every read-modify-write of an
   * instance's boot state or keys starts here.
   */
  lockInstance(id: string): Promise<InstanceWithState | undefined>;
  /** As {@link lockInstance}, finding the instance by its active boot id. */
  lockInstanceByBoot(bootId: string, o?: LockOptions): Promise<InstanceWithState | undefined>;
  /**
   * A release's first step: finds the instance registered for `tee` with identity value `value` (as
   * {@link Store.findInstanceByIdentity}), locks it (as {@link lockInstance}) and reads its newest key (as
   * {@link latestKey}), on PostgreSQL in one round trip. What the release then reads of the instance (its
   * policy, its boot state) is what no other decision can change before this transaction ends; the key read
   * under the lock stays the latest until this transaction inserts one.
   */
  lockInstanceByIdentityWithLatestKey(
    tee: RegistryTee,
    value: Uint8Array,
  ): Promise<LockedInstance | undefined>;
  setBootState(id: string, state: BootState): Promise<void>;
  setPolicy(id: string, policy: JsonValue): Promise<void>;
  setNewLaunch(id: string, policy: NewLaunchPolicy): Promise<void>;
  latestKey(instanceId: string): Promise<SealingKeyRecord | undefined>;
  getKey(instanceId: string, version: number): Promise<SealingKeyRecord | undefined>;
  /** Inserts unless (instanceId, version) exists; true when this call inserted it. */
  insertKeyIfAbsent(rec: SealingKeyRecord): Promise<boolean>;
  /**
   * Appends to the hash chain: locks the single head row, links to it, inserts, moves the head. Take it
   * last in a transaction (lock order: instance row, then audit head) so transactions cannot deadlock.
   */
  appendAudit(draft: AuditDraft, o?: AuditWith): Promise<AuditEntry>;
  /** Inserts a credential (migration 6); false when its id exists. Audit it in the same transaction. */
  insertCredential(rec: CredentialRecord): Promise<boolean>;
  /**
   * Marks a credential revoked at `at` unless it already is (the first revocation time stays); returns the
   * row as it now is, or undefined when there is no such credential.
   */
  revokeCredential(id: string, at: number): Promise<CredentialRecord | undefined>;
}

export interface Store {
  readonly engine: Engine;

  /** Records a challenge by its digest (the challenge itself need not be stored). */
  insertChallenge(digest: Uint8Array, expiresAt: number): Promise<void>;
  /**
   * Deletes the challenge and returns its expiry, or undefined when it is unknown or already used.
   * One statement (`DELETE ... RETURNING`): of any number of concurrent callers, in any number of
   * processes, exactly one gets the row.
   */
  consumeChallenge(digest: Uint8Array): Promise<{ expiresAt: number } | undefined>;
  /** Deletes challenges that expired before `before`; returns how many. */
  purgeChallenges(before: number): Promise<number>;

  getInstance(id: string): Promise<InstanceWithState | undefined>;
  /**
   * The instance registered for `tee` with identity value `value` (HOST_DATA for `snp`, MRCONFIGID for
   * `tdx`): a value registered for another TEE never matches.
   */
  findInstanceByIdentity(tee: RegistryTee, value: Uint8Array): Promise<InstanceWithState | undefined>;
  listInstances(): Promise<InstanceWithState[]>;
  listKeys(instanceId: string): Promise<SealingKeyRecord[]>;

  /** Entries with seq > afterSeq in seq order, at most `limit`. */
  readAudit(afterSeq: number, limit: number): Promise<AuditEntry[]>;
  auditHead(): Promise<AuditHead>;

  /** A credential by id, revoked or not (migration 6). */
  getCredential(id: string): Promise<CredentialRecord | undefined>;
  /** Every credential, revoked ones too, oldest first. */
  listCredentials(): Promise<CredentialRecord[]>;

  /**
   * Runs `fn` in one transaction: commits when it resolves, rolls back when it throws. PostgreSQL: READ
   * COMMITTED plus explicit row locks. SQLite: `BEGIN IMMEDIATE` (one writer at a time across processes),
   * and within a process all store calls are queued behind the open transaction.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;

  /** The KBS's sessions, held grants and token keys on this store (migration 7, kbs-state-types.ts). */
  kbsState(): KbsStateStore;

  close(): Promise<void>;
}
