import type { AuditVerification } from '../store/audit-verify.js';
import type { CaRepository, CrlRecord, RevokeResult } from '../store/ca-types.js';
import type { AuditEntry, AuditHead } from '../store/types.js';
import type { CaConfig } from './config.js';
import type { CaContext } from './context.js';
import { verifyIssuanceLog } from './issuance-log.js';
import type { CaKeyStore } from './key-store.js';
import { certifyAkFromTee } from './operations/certify-ak-tee.js';
import { certifyEkFromTee } from './operations/certify-ek-tee.js';
import { generateCrl } from './operations/generate-crl.js';
import { initCa } from './operations/init.js';
import { finishActivation, startActivation } from './operations/issue-ak-activation.js';
import { issueAkFromTee } from './operations/issue-ak-tee.js';
import { issueCaCertificate } from './operations/issue-ca-certificate.js';
import { issueEk } from './operations/issue-ek.js';
import { createNonce, createRelayNonce, purgeExpiredNonces } from './operations/nonce.js';
import { openCa } from './operations/open.js';
import { revoke } from './operations/revoke.js';
import type {
  ActivationChallenge,
  ActivationRequest,
  CaIssuer,
  EkRequest,
  InitCaOptions,
  IssuedCertificate,
  PlatformCaOptions,
  TeeAkRequest,
} from './options.js';
import type { RegistryLookup } from './registry.js';
import type { RelayedAkRequest, RelayedCertificate, RelayedTeeRequest } from './relayed.js';

/**
 * The Vouchsafe platform CA: EK certificates for the vTPMs of registered instances, AK certificates once an
 * AK is shown to live in that vTPM (route a: an SEV-SNP report covering the SVSM services manifest; route b:
 * TPM2 credential activation against the certified EK), CSR handling, revocation and CRLs. Every issuance,
 * revocation, CRL and refusal is written to the hash-chained issuance log.
 *
 * A thin facade: each method delegates to one operation in src/ca/operations/ (one file each, as jose
 * splits its operations), all of which work on the same {@link CaContext}. docs/ca.md describes the CA
 * directory, the profiles and every refusal.
 */
export class PlatformCa implements CaIssuer {
  private constructor(private readonly ctx: CaContext) {}

  /** See {@link initCa}. */
  static async init(opts: InitCaOptions): Promise<PlatformCa> {
    return new PlatformCa(await initCa(opts));
  }

  /** See {@link openCa}. */
  static async open(dir: string, opts: PlatformCaOptions = {}): Promise<PlatformCa> {
    return new PlatformCa(await openCa(dir, opts));
  }

  get dir(): string {
    return this.ctx.dir;
  }
  get config(): CaConfig {
    return this.ctx.config;
  }
  get keyStore(): CaKeyStore {
    return this.ctx.keyStore;
  }
  get repository(): CaRepository {
    return this.ctx.repository;
  }
  /** This CA's certificate (DER). */
  get certificate(): Uint8Array {
    return this.ctx.certificate;
  }
  /** This certificate, then its issuers up to the root (DER). */
  get chain(): readonly Uint8Array[] {
    return this.ctx.chain;
  }
  /** DER subject of the CA certificate: the issuer of everything it signs. */
  get subject(): Uint8Array {
    return this.ctx.subject;
  }
  /** SKI of the CA key (the AKI of everything it signs). */
  get keyId(): Uint8Array {
    return this.ctx.keyId;
  }
  get notAfter(): Date {
    return this.ctx.notAfter;
  }

  close(): Promise<void> {
    return this.ctx.repository.close();
  }

  /** See {@link issueCaCertificate}. */
  issueCaCertificate(subject: Uint8Array, spki: Uint8Array): Promise<IssuedCertificate> {
    return issueCaCertificate(this.ctx, subject, spki);
  }

  /** See {@link issueEk}. */
  issueEk(req: EkRequest): Promise<IssuedCertificate> {
    return issueEk(this.ctx, req);
  }

  /** See {@link createNonce}. */
  createNonce(instanceId: bigint | string): Promise<Uint8Array> {
    return createNonce(this.ctx, instanceId);
  }

  /** A nonce for a relayed CERTIFY_EK / CERTIFY_AK, bound to the relay `caller`; see {@link createRelayNonce}. */
  createRelayNonce(caller: string): Promise<{ nonce: Uint8Array; expiresAt: Date }> {
    return createRelayNonce(this.ctx, caller);
  }

  /** CERTIFY_EK, the instance found in `registry` by HOST_DATA; see {@link certifyEkFromTee}. */
  certifyEkFromTee(req: RelayedTeeRequest, registry: RegistryLookup): Promise<RelayedCertificate> {
    return certifyEkFromTee(this.ctx, req, registry);
  }

  /** CERTIFY_AK, the instance found in `registry` by HOST_DATA; see {@link certifyAkFromTee}. */
  certifyAkFromTee(req: RelayedAkRequest, registry: RegistryLookup): Promise<RelayedCertificate> {
    return certifyAkFromTee(this.ctx, req, registry);
  }

  /** Deletes nonces that expired before now; returns how many. */
  purgeExpired(): Promise<number> {
    return purgeExpiredNonces(this.ctx);
  }

  /** AK route (a); see {@link issueAkFromTee}. */
  issueAkFromTee(req: TeeAkRequest): Promise<IssuedCertificate> {
    return issueAkFromTee(this.ctx, req);
  }

  /** AK route (b), step 1; see {@link startActivation}. */
  startActivation(req: ActivationRequest): Promise<ActivationChallenge> {
    return startActivation(this.ctx, req);
  }

  /** AK route (b), step 2; see {@link finishActivation}. */
  finishActivation(req: {
    readonly activationId: string;
    readonly secret: Uint8Array;
  }): Promise<IssuedCertificate> {
    return finishActivation(this.ctx, req);
  }

  /** See {@link revoke}. */
  revoke(serial: string, reason = 0): Promise<RevokeResult> {
    return revoke(this.ctx, serial, reason);
  }

  /** See {@link generateCrl}. */
  generateCrl(): Promise<CrlRecord> {
    return generateCrl(this.ctx);
  }

  /**
   * Recomputes the issuance log's hash chain ({@link verifyIssuanceLog}); with `expectHead` (an earlier
   * intact result's `entries` and `headHash`), the log must still hold that entry with that hash.
   */
  verifyLog(opts: { readonly expectHead?: AuditHead } = {}): Promise<AuditVerification> {
    return verifyIssuanceLog(this.ctx.repository, opts);
  }

  /** Log entries after `afterSeq`, in order. */
  readLog(afterSeq = 0, limit = 1000): Promise<AuditEntry[]> {
    return this.ctx.repository.readLog(afterSeq, limit);
  }
}
