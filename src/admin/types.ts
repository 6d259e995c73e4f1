import type { Static } from '@sinclair/typebox';
import type { NewLaunchPolicy } from '../store/types.js';
import type { AuditPage, InstanceView } from '../wire/schemas.js';

/** An instance as the admin API returns it (HOST_DATA hex, times in ms; key versions from `show`). */
export type InstanceJson = Static<typeof InstanceView>;

export interface RegisterInput {
  readonly project: string;
  readonly zone: string;
  readonly instanceId: string;
  readonly instanceName: string;
  readonly policy: unknown;
  /** The TEE the instance runs on (default `snp`; `tdx` registers a 48-byte MRCONFIGID). */
  readonly tee?: 'snp' | 'tdx';
  /** The identity value to register (hex: HOST_DATA 32 bytes, MRCONFIGID 48) instead of a random one. */
  readonly hostData?: string;
  /** What a new launch does while another launch holds a live lease (default `takeover`; docs/broker.md "Leases"). */
  readonly newLaunch?: NewLaunchPolicy;
}

/** One audit log entry as the admin API returns it. */
export type AuditEntryJson = Static<typeof AuditPage>['entries'][number];

export type AuditVerificationJson =
  | { readonly ok: true; readonly entries: number; readonly headHash: string }
  | { readonly ok: false; readonly entries: number; readonly seq: number; readonly problem: string };

/**
 * The control plane's operations, over the admin HTTP API (admin/http.ts `httpAdmin`) or directly on a
 * broker's data directory / database (admin/local.ts `localAdmin`); the `vouchsafe instance` and
 * `vouchsafe audit` commands use either. Failures are AttestationErrors with the broker's code and reason.
 */
export interface AdminApi {
  register(r: RegisterInput): Promise<InstanceJson>;
  list(): Promise<InstanceJson[]>;
  show(id: string): Promise<InstanceJson>;
  setPolicy(id: string, policy: unknown): Promise<void>;
  /** Replaces the instance's new-launch policy (audited; `PUT /v1/admin/instances/:id/new-launch`). */
  setNewLaunch(id: string, newLaunch: NewLaunchPolicy): Promise<void>;
  rotateKey(id: string): Promise<{ keyVersion: number }>;
  resetBoot(id: string, note?: string): Promise<{ hadActiveBoot: boolean }>;
  readAudit(after: number, limit: number): Promise<{ entries: AuditEntryJson[]; next: number | null }>;
  verifyAudit(): Promise<AuditVerificationJson>;
  close(): Promise<void>;
}
