import type { Counters } from '../util/metrics.js';
import type { ResourcePath } from './messages.js';
import type { KbsSessions } from './store-sessions.js';
import type { KbsServedTee } from './tees.js';
import type { EarClaims, EarTokens, SnpAppraisalSummary, SnpEarSubject } from './tokens/index.js';

/**
 * What the KBS routes need, and nothing more. `broker` is satisfied by {@link createBrokerKbsAdapter}
 * (broker-adapter.ts) over the Broker class; `tokens` by an {@link EarTokens}. The routes decode, call
 * these, and encode: they hold no verification, policy or key material of their own.
 */
export interface KbsDeps {
  readonly broker: KbsBroker;
  readonly tokens: KbsTokens;
  /** RCAR session lifetime, ms (default 300 000: Trustee's 5 minutes). */
  readonly sessionTtlMs?: number;
  /**
   * Sessions held at once, all clients together (default 10 000). When full, the oldest pending session of
   * the client address holding the most pending sessions is evicted; /auth answers 503 only when every
   * session is attested.
   */
  readonly maxSessions?: number;
  /**
   * Pending (not yet attested) sessions one client address (an IPv6 /64) may hold (default 256); at the
   * limit its own oldest pending session is evicted, never another address's.
   */
  readonly maxPendingSessionsPerSource?: number;
  /**
   * Where sessions live (default: in this process, by the limits above). startBroker passes StoreSessions
   * (store-sessions.ts): in the store, so any replica serves any step of an exchange.
   */
  readonly sessions?: KbsSessions;
  /**
   * Brings the token keys up to date with the store (a rotation made by another replica): called before a
   * token is issued, before the JWKS is served, and when a token names a key not held. Default: none.
   */
  readonly syncTokenKeys?: () => Promise<void>;
  /** Clock in ms (default Date.now). */
  readonly now?: () => number;
  /** Where release decisions are timed (the broker server passes its Prometheus registry). Default: none. */
  readonly metrics?: Counters;
}

/** The broker as the KBS sees it. Every method throws an AttestationError to refuse. */
export interface KbsBroker {
  /** A fresh single-use challenge (the RCAR nonce), at least 32 bytes. */
  issueChallenge(): Promise<{ readonly challenge: Uint8Array; readonly expiresAt: number }>;
  /**
   * Decides an attestation: consume the challenge, verify the evidence, check REPORT_DATA equals
   * `expectedReportData`, find the instance, appraise, apply rollback/clone rules, release. Whatever the
   * release yields stays with the broker side, named by the returned `grant`, for later resource reads.
   */
  attest(req: KbsAttestRequest): Promise<KbsAttestation>;
  /**
   * The bytes of resource `path` for the attested caller described by `subject` (from a verified token).
   * Throws KbsResourceError-style AttestationErrors: InvalidArgument `kbs.resource.not_found`,
   * PolicyRejected (reason `kbs.resource.forbidden`), InvalidArgument `kbs.resource.gone`.
   */
  readResource(req: KbsResourceRequest): Promise<Uint8Array>;
}

export interface KbsAttestRequest {
  /** The TEE the session's /auth named (the release table's name). */
  readonly tee: KbsServedTee;
  /**
   * `snp`: the raw report; `az-snp-vtpm`: the evidence JSON, UTF-8 (src/kbs/evidence-azure.ts); `tdx`: the
   * quote (src/kbs/evidence-tdx.ts).
   */
  readonly report: Uint8Array;
  /** `snp`: the certificate table; `tdx`: the CCEL event log. */
  readonly certTable?: Uint8Array;
  /** The challenge issued at /auth (the decoded nonce). */
  readonly challenge: Uint8Array;
  /** The 64-byte REPORT_DATA the binding rule computed from the runtime data. */
  readonly expectedReportData: Uint8Array;
}

export interface KbsInstance {
  /** The broker's instance id. */
  readonly id: string;
  readonly project: string;
  readonly zone: string;
  readonly instanceId: string;
  readonly instanceName: string;
}

export interface KbsAttestation {
  readonly instance: KbsInstance;
  /**
   * Verified SNP claims (src/evidence/snp toSnpClaims; for `az-snp-vtpm`, those of the HCL's report);
   * absent for `tdx`, which has no SNP report.
   */
  readonly claims?: { readonly [k: string]: unknown };
  /**
   * Claims of the TEE beyond (or instead of) an SNP report, under the TEE's name (`az-snp-vtpm`: `{azure,
   * tpm, nonce}`: vm-configuration, user-data, AK digest, PCRs; `tdx`: the evidence contract's details,
   * TdxClaims); absent for `snp`. The token carries them beside `snp`.
   */
  readonly teeClaims?: { readonly [tee: string]: unknown };
  /** Identifies the appraisal policy applied (e.g. `vouchsafe:instance/<id>`). */
  readonly policyId: string;
  /** What the EAR trust vector reports (measurement constrained by policy, debug allowed by the report). */
  readonly appraisal: SnpAppraisalSummary;
  /** Opaque handle to what this decision released; becomes the token's `jti`. */
  readonly grant: string;
}

export interface KbsResourceRequest {
  readonly path: ResourcePath;
  /** From the verified token: `jti` (the grant), status, identity, measurement. */
  readonly subject: SnpEarSubject;
}

/** The token service as the KBS sees it (EarTokens satisfies it). */
export type KbsTokens = Pick<EarTokens, 'issueSnp' | 'verify' | 'jwks'>;

export type { EarClaims };
