import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AttestationError, InvalidArgument, PolicyRejected } from '../errors.js';
import { SnpVerifier } from '../evidence/snp/verify.js';
import { parseReport } from '../formats/snp/report.js';
import { SVSM_NONCE_SIZE, svsmReportData } from '../formats/svsm/manifest.js';
import { HASH_ALGS } from '../formats/tpm/constants.js';
import { encodeCredentialFile, makeCredential } from '../formats/tpm/make-credential.js';
import { computeName, type ParsedPublic, parsePublic } from '../formats/tpm/public.js';
import { parseCertificate } from '../formats/x509/certificate.js';
import { encodeInstanceIdentity, type InstanceIdentity } from '../formats/x509/instance-identity.js';
import { assertSnpPolicy } from '../policy/snp/appraise.js';
import type { AuditVerification } from '../store/audit-verify.js';
import type { AuditDraft, AuditEntry } from '../store/types.js';
import { ctEqual, toHex } from '../util/bytes.js';
import { keyType, keyTypeOf } from './algorithms.js';
import { checkOutputFormat, type OutputFormat, toC509Type2, toC509Type3 } from './c509-output.js';
import { CA_FILES, certificatePem, pemCertificates } from './ca-files.js';
import { newSerialNumber, signCertificate, signTbs } from './certificate.js';
import { type CaConfig, defaultCaConfig, parseCaConfig, serializeCaConfig } from './config.js';
import { encodeTbsCertList, isCrlReason } from './crl.js';
import { wholeSeconds } from './der.js';
import { CaRefused } from './errors.js';
import { keyIdentifier } from './extensions.js';
import { identityFromJson, identityToJson, instanceKey } from './instance-record.js';
import { verifyIssuanceLog } from './issuance-log.js';
import {
  fromTpmPublic,
  isAkShaped,
  isEkShaped,
  type PublicKeyInput,
  readPublicKeyInput,
  spkiSha256,
} from './key-input.js';
import { type CaKeyStore, FileKeyStore } from './key-store.js';
import { EMPTY_NAME, nameFromString, nameFromTemplate } from './names.js';
import { akExtensions, caExtensions, ekExtensions } from './profiles.js';
import type {
  CaRepository,
  CertificateKind,
  CertificateRecord,
  CrlRecord,
  RevokeResult,
} from './repository.js';
import { parseCertificationRequest } from './request.js';
import type {
  ActivationChallenge,
  ActivationRequest,
  EkRequest,
  InitCaOptions,
  IssuedCertificate,
  PlatformCaOptions,
  TeeAkRequest,
} from './requests.js';
import { SqliteCaRepository } from './sqlite-repository.js';
import { certsFromTable, vtpmManifestOf } from './tee-evidence.js';

const DAY_MS = 86_400_000;

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

function bytesArg(v: unknown, field: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new InvalidArgument(`ca.${field}`, `${field} must be bytes`);
  return v;
}

/** Why a request was refused, as the log lists it: every policy failure, or the one reason. */
function refusalReasons(e: unknown): string[] {
  if (e instanceof PolicyRejected) return e.failures.map((f) => f.code);
  if (e instanceof AttestationError) return [e.reason];
  return ['ca.internal_error'];
}

/**
 * The Vouchsafe platform CA: EK certificates for the vTPMs of registered instances, AK certificates once an
 * AK is shown to live in that vTPM (route a: an SEV-SNP report covering the SVSM services manifest; route b:
 * TPM2 credential activation against the certified EK), CSR handling, revocation and CRLs. Every issuance,
 * revocation, CRL and refusal is written to the hash-chained issuance log.
 *
 * A CA lives in a directory: `ca.json` (configuration), `ca-key.pem` (PKCS#8, mode 0600, via the
 * {@link CaKeyStore} interface), `ca-cert.pem` (this CA's certificate), `ca-chain.pem` (this certificate
 * and its issuers up to the root) and `ca.db` (the {@link CaRepository}: certificates, revocations, CRL
 * numbers, nonces, pending activations, the log). docs/ca.md describes all of it.
 */
export class PlatformCa {
  private readonly clock: () => Date;

  private constructor(
    readonly dir: string,
    readonly config: CaConfig,
    readonly keyStore: CaKeyStore,
    readonly repository: CaRepository,
    /** This CA's certificate (DER). */
    readonly certificate: Uint8Array,
    /** This certificate, then its issuers up to the root (DER). */
    readonly chain: readonly Uint8Array[],
    private readonly snpVerifier: SnpVerifier,
    now: (() => Date) | undefined,
  ) {
    this.clock = now ?? (() => new Date());
    const cert = parseCertificate(certificate);
    this.subject = cert.subject;
    this.keyId = keyIdentifier(cert.subjectPublicKeyInfo);
    this.notAfter = cert.notAfter;
  }

  /** DER subject of the CA certificate: the issuer of everything it signs. */
  readonly subject: Uint8Array;
  /** SKI of the CA key (the AKI of everything it signs). */
  readonly keyId: Uint8Array;
  readonly notAfter: Date;

  private now(): Date {
    return wholeSeconds(this.clock());
  }

  /**
   * Creates a CA in `opts.dir` (created with mode 0700; must not already hold a CA): key, certificate
   * (self-signed root, or an intermediate issued by `opts.issuer`), `ca.json`, database. Throws
   * InvalidArgument `ca.init.exists`, `ca.key_type`, `ca.config`, `ca.name`.
   */
  static async init(opts: InitCaOptions): Promise<PlatformCa> {
    const type = keyType(opts.keyType ?? 'p384').name;
    const base = defaultCaConfig(type);
    const config = parseCaConfig(
      JSON.parse(serializeCaConfig({ ...base, ...(opts.config ?? {}), version: 1, keyType: type })),
    );
    const dir = opts.dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (existsSync(join(dir, CA_FILES.config)) || existsSync(join(dir, CA_FILES.database))) {
      throw new InvalidArgument('ca.init.exists', `${dir} already holds a CA`);
    }
    const keyStore =
      opts.keyStore ??
      (await FileKeyStore.create(join(dir, CA_FILES.key), type, { passphrase: opts.passphrase }));
    if (keyTypeOf(keyStore.publicKey) !== type) {
      throw new InvalidArgument('ca.key_type', 'the key store key is not of the configured key type');
    }
    const subject = nameFromString(opts.subject ?? 'CN=Vouchsafe Platform CA');
    const spki = new Uint8Array(keyStore.publicKey.export({ type: 'spki', format: 'der' }));
    const clock = opts.now ?? (() => new Date());
    let certificate: Uint8Array;
    let chain: Uint8Array[];
    if (opts.issuer) {
      const issued = await opts.issuer.issueCaCertificate(subject, spki);
      certificate = issued.der;
      chain = [certificate, ...opts.issuer.chain];
    } else {
      const notBefore = wholeSeconds(clock());
      certificate = await signCertificate(
        {
          serialNumber: newSerialNumber(),
          signatureAlgorithm: config.signatureAlgorithm,
          issuer: subject,
          notBefore,
          notAfter: new Date(notBefore.getTime() + config.lifetimes.caDays * DAY_MS),
          subject,
          subjectPublicKeyInfo: spki,
          extensions: caExtensions(spki, keyIdentifier(spki)),
        },
        keyStore,
      );
      chain = [certificate];
    }
    writeFileSync(join(dir, CA_FILES.config), serializeCaConfig(config), { mode: 0o644 });
    writeFileSync(join(dir, CA_FILES.certificate), certificatePem(certificate), { mode: 0o644 });
    writeFileSync(join(dir, CA_FILES.chain), chain.map(certificatePem).join(''), { mode: 0o644 });
    const repository = opts.repository ?? SqliteCaRepository.open(join(dir, CA_FILES.database));
    const ca = new PlatformCa(
      dir,
      config,
      keyStore,
      repository,
      certificate,
      chain,
      opts.snpVerifier ?? new SnpVerifier(),
      opts.now,
    );
    const cert = parseCertificate(certificate);
    await repository.insertCertificate(
      {
        serial: toHex(cert.serialNumber).replace(/^(00)+(?=..)/, ''),
        kind: opts.issuer ? 'intermediate' : 'root',
        instanceId: null,
        identityJson: null,
        spkiSha256: spkiSha256(spki),
        ekPublic: null,
        notBefore: cert.notBefore.getTime(),
        notAfter: cert.notAfter.getTime(),
        issuedAt: ca.now().getTime(),
        der: certificate,
        c509: null,
        revokedAt: null,
        revocationReason: null,
      },
      ca.draft('ca.init', null, 'accept', ['ca.initialized'], {
        keyType: type,
        kind: opts.issuer ? 'intermediate' : 'root',
        certificateSha256: toHex(sha256(certificate)),
      }),
    );
    return ca;
  }

  /**
   * Opens the CA in `dir`. Throws InvalidArgument `ca.open` (no CA there), `ca.config`, and the key store's
   * `ca.key_store.*` reasons.
   */
  static async open(dir: string, opts: PlatformCaOptions = {}): Promise<PlatformCa> {
    let configText: string;
    let chainText: string;
    try {
      configText = readFileSync(join(dir, CA_FILES.config), 'utf8');
      chainText = readFileSync(join(dir, CA_FILES.chain), 'utf8');
    } catch {
      throw new InvalidArgument('ca.open', `${dir} does not hold a CA (run vouchsafe ca init)`);
    }
    let json: unknown;
    try {
      json = JSON.parse(configText);
    } catch {
      throw new InvalidArgument('ca.config', `${join(dir, CA_FILES.config)} is not JSON`);
    }
    const config = parseCaConfig(json);
    const chain = pemCertificates(chainText);
    if (chain.length === 0) throw new InvalidArgument('ca.open', `${CA_FILES.chain} holds no certificate`);
    const keyStore =
      opts.keyStore ?? FileKeyStore.open(join(dir, CA_FILES.key), { passphrase: opts.passphrase });
    const certSpki = parseCertificate(chain[0]!).subjectPublicKeyInfo;
    const keySpki = new Uint8Array(keyStore.publicKey.export({ type: 'spki', format: 'der' }));
    if (!ctEqual(certSpki, keySpki)) {
      throw new InvalidArgument('ca.open', 'the CA key does not match the CA certificate');
    }
    const repository = opts.repository ?? SqliteCaRepository.open(join(dir, CA_FILES.database));
    return new PlatformCa(
      dir,
      config,
      keyStore,
      repository,
      chain[0]!,
      chain,
      opts.snpVerifier ?? new SnpVerifier(),
      opts.now,
    );
  }

  async close(): Promise<void> {
    await this.repository.close();
  }

  private draft(
    kind: string,
    instance: string | null,
    decision: 'accept' | 'refuse',
    reasons: readonly string[],
    details: AuditDraft['details'] = {},
    evidenceDigest: string | null = null,
  ): AuditDraft {
    return { time: this.clock().getTime(), kind, instance, decision, reasons, evidenceDigest, details };
  }

  /**
   * Runs one decision; a refusal (any AttestationError) is logged with what `ctx` knows by then (the
   * instance may only be learnt on the way), then rethrown unchanged.
   */
  private async decide<T>(
    kind: string,
    ctx: { instance: string | null },
    evidence: Uint8Array | null,
    fn: () => Promise<T>,
  ): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof AttestationError) {
        const digest = evidence ? toHex(sha256(evidence)) : null;
        await this.repository.appendLog(
          this.draft(kind, ctx.instance, 'refuse', refusalReasons(e), {}, digest),
        );
      }
      throw e;
    }
  }

  private validity(days: number): { notBefore: Date; notAfter: Date } {
    const notBefore = this.now();
    const wanted = notBefore.getTime() + days * DAY_MS;
    // Nothing outlives the CA certificate that vouches for it.
    return { notBefore, notAfter: new Date(Math.min(wanted, this.notAfter.getTime())) };
  }

  private async finish(
    kind: CertificateKind,
    der: Uint8Array,
    format: OutputFormat,
    meta: {
      instanceId: string | null;
      identity: InstanceIdentity | null;
      spki: Uint8Array;
      ekPublic: Uint8Array | null;
    },
    log: AuditDraft,
  ): Promise<IssuedCertificate> {
    const cert = parseCertificate(der);
    let c509: Uint8Array | undefined;
    if (format === 'c509-type3') c509 = toC509Type3(der, this.keyStore);
    if (format === 'c509-type2') c509 = await toC509Type2(der, this.config.signatureAlgorithm, this.keyStore);
    const serial = toHex(cert.serialNumber).replace(/^(00)+(?=..)/, '');
    await this.repository.insertCertificate(
      {
        serial,
        kind,
        instanceId: meta.instanceId,
        identityJson: meta.identity ? identityToJson(meta.identity) : null,
        spkiSha256: spkiSha256(meta.spki),
        ekPublic: meta.ekPublic,
        notBefore: cert.notBefore.getTime(),
        notAfter: cert.notAfter.getTime(),
        issuedAt: this.now().getTime(),
        der,
        c509: c509 ?? null,
        revokedAt: null,
        revocationReason: null,
      },
      { ...log, details: { ...log.details, serial, format } },
    );
    return {
      serial,
      kind,
      der,
      ...(c509 ? { c509 } : {}),
      format,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
    };
  }

  /** Issues an intermediate CA certificate (pathLen 0) for `subject`/`spki`; used by {@link init}. */
  async issueCaCertificate(subject: Uint8Array, spki: Uint8Array): Promise<IssuedCertificate> {
    const { notBefore, notAfter } = this.validity(this.config.lifetimes.caDays);
    const der = await signCertificate(
      {
        serialNumber: newSerialNumber(),
        signatureAlgorithm: this.config.signatureAlgorithm,
        issuer: this.subject,
        notBefore,
        notAfter,
        subject,
        subjectPublicKeyInfo: spki,
        extensions: caExtensions(spki, this.keyId, 0),
      },
      this.keyStore,
    );
    return this.finish(
      'intermediate',
      der,
      'x509',
      { instanceId: null, identity: null, spki, ekPublic: null },
      this.draft('ca.issue_intermediate', null, 'accept', ['ca.issued']),
    );
  }

  // ---- EK certificates ------------------------------------------------------------------------------

  /**
   * Issues an EK certificate (TCG EK Credential Profile, docs/ca.md) binding the EK to the instance
   * identity. The control plane calls this when it creates the instance's vTPM; it is trusted to name the
   * right EK. Throws CaRefused `ca.ek_attributes` (a TPM public area that is not a restricted decryption
   * key fixed to its TPM); InvalidArgument `x509.instance_identity.*`, `ca.format`; MalformedEvidence
   * `ca.public_key`, `tpm.public.*`.
   */
  async issueEk(req: EkRequest): Promise<IssuedCertificate> {
    const format = checkOutputFormat(req.format ?? 'x509');
    const ek = readPublicKeyInput(bytesArg(req.ekPublic, 'ek_public'));
    encodeInstanceIdentity(req.identity); // validates the identity before anything is signed
    const instanceId = req.identity.instanceId.toString();
    return this.decide('ca.issue_ek', { instance: instanceId }, null, async () => {
      if (ek.tpmPublic && !isEkShaped(ek.tpmPublic)) {
        throw new CaRefused('ca.ek_attributes', 'the EK is not a restricted decryption key fixed to its TPM');
      }
      const { notBefore, notAfter } = this.validity(this.config.lifetimes.ekDays);
      const der = await signCertificate(
        {
          serialNumber: newSerialNumber(),
          signatureAlgorithm: this.config.signatureAlgorithm,
          issuer: this.subject,
          notBefore,
          notAfter,
          subject: EMPTY_NAME,
          subjectPublicKeyInfo: ek.spki,
          extensions: ekExtensions(
            { config: this.config, spki: ek.spki, issuerKeyId: this.keyId },
            ek.key,
            req.identity,
            req.tpm ?? this.config.tpm,
          ),
        },
        this.keyStore,
      );
      return this.finish(
        'ek',
        der,
        format,
        {
          instanceId,
          identity: req.identity,
          spki: ek.spki,
          ekPublic: ek.tpmPublic ? Uint8Array.from(ek.tpmPublic.raw) : null,
        },
        this.draft('ca.issue_ek', instanceId, 'accept', ['ca.issued'], { ekSha256: spkiSha256(ek.spki) }),
      );
    });
  }

  /** Valid (unrevoked, unexpired) EK certificates of an instance, newest first. */
  private async certifiedEks(instanceId: string): Promise<CertificateRecord[]> {
    const now = this.now().getTime();
    const all = await this.repository.listCertificates({ kind: 'ek', instanceId });
    return all.filter((r) => r.revokedAt === null && r.notAfter > now && r.notBefore <= now).reverse();
  }

  /** Step "the EK is the instance's certified EK": the newest matching EK record. */
  private async matchEk(instanceId: string, spki: Uint8Array): Promise<CertificateRecord> {
    const eks = await this.certifiedEks(instanceId);
    if (eks.length === 0)
      throw new CaRefused('ca.instance_unknown', `instance ${instanceId} has no valid EK certificate`);
    const digest = spkiSha256(spki);
    const rec = eks.find((r) => ctEqual(Buffer.from(r.spkiSha256, 'hex'), Buffer.from(digest, 'hex')));
    if (!rec)
      throw new CaRefused('ca.ek_mismatch', `the EK is not one this CA certified for instance ${instanceId}`);
    return rec;
  }

  // ---- AK certificates ------------------------------------------------------------------------------

  /** Issues a single-use nonce (64 bytes, the SVSM_ATTEST nonce size) for route (a). */
  async createNonce(instanceId: bigint | string): Promise<Uint8Array> {
    const id = instanceKey(instanceId);
    const nonce = new Uint8Array(randomBytes(SVSM_NONCE_SIZE));
    const expiresAt = this.clock().getTime() + this.config.nonceTtlSeconds * 1000;
    await this.repository.insertNonce(sha256(nonce), id, expiresAt);
    return nonce;
  }

  /** Deletes nonces that expired before now; returns how many. */
  async purgeExpired(): Promise<number> {
    return this.repository.purgeNonces(this.clock().getTime());
  }

  /**
   * Route (a), TEE-bound AK certificate. Steps, in order (each refusal is logged with its reason):
   * 1. the nonce is one this CA issued for this instance, unused (consumed now) and fresh;
   * 2. the SNP report verifies: signature, VCEK/VLEK chain to a pinned or configured AMD root;
   * 3. it was requested at VMPL0 (by the SVSM, not the guest OS);
   * 4. the configured SNP policy accepts it (PolicyRejected lists every failure);
   * 5. REPORT_DATA = SHA-512(nonce ‖ manifest);
   * 6. the manifest lists the vTPM service and is v1 (EK and AK);
   * 7. its EK is an EK this CA certified for the instance (valid, unrevoked);
   * 8. its AK is a restricted signing key, fixedTPM, fixedParent, sensitiveDataOrigin;
   * 9. a CSR, when given, verifies and requests the AK's key and allowed names;
   * then the AK certificate is issued with the instance identity from the EK certificate.
   *
   * Throws CaRefused (`ca.nonce_unknown`, `ca.nonce_expired`, `ca.report_vmpl`, `ca.manifest_not_covered`,
   * `ca.manifest_no_vtpm`, `ca.manifest_no_ak`, `ca.instance_unknown`, `ca.ek_mismatch`, `ca.ak_attributes`,
   * `ca.csr_key_mismatch`, `ca.csr_name_not_allowed`); SignatureInvalid/ChainInvalid/BindingMismatch from the
   * SNP verifier; PolicyRejected; MalformedEvidence for malformed report, table, manifest or CSR;
   * InvalidArgument for unusable arguments.
   */
  async issueAkFromTee(req: TeeAkRequest): Promise<IssuedCertificate> {
    const instanceId = instanceKey(req.instanceId);
    const format = checkOutputFormat(req.format ?? 'x509');
    const nonce = bytesArg(req.nonce, 'nonce');
    const reportBytes = bytesArg(req.report, 'report');
    const manifest = bytesArg(req.manifest, 'manifest');
    return this.decide('ca.issue_ak', { instance: instanceId }, reportBytes, async () => {
      // Step 1: the nonce is ours, for this instance, unused and fresh. Consumed whatever happens next.
      const found =
        nonce.length === SVSM_NONCE_SIZE ? await this.repository.consumeNonce(sha256(nonce)) : undefined;
      if (!found || found.instanceId !== instanceId) throw new CaRefused('ca.nonce_unknown');
      if (found.expiresAt <= this.clock().getTime()) throw new CaRefused('ca.nonce_expired');

      // Step 2: a genuine AMD SEV-SNP report.
      const report = parseReport(reportBytes);
      const certs = req.certs ?? certsFromTable(report, bytesArg(req.certTable, 'cert_table'));
      const verified = this.snpVerifier.verify(report, {
        now: this.clock(),
        certs,
        trustedRoots: this.config.snp.trustedRoots,
      });

      // Step 3: VMPL0. The guest OS (VMPL >= 1) can request reports with any REPORT_DATA it likes; only a
      // VMPL0 report comes from the SVSM, which alone builds the manifest from the vTPM it runs.
      if (report.vmpl !== 0)
        throw new CaRefused('ca.report_vmpl', `the report was requested at VMPL${report.vmpl}`);

      // Step 4: the SNP policy (every failure listed).
      assertSnpPolicy(report, verified.product, this.config.snp.policy);

      // Step 5: REPORT_DATA covers this nonce and this manifest.
      if (!ctEqual(report.reportData, svsmReportData(nonce, manifest))) {
        throw new CaRefused('ca.manifest_not_covered', 'REPORT_DATA is not SHA-512(nonce || manifest)');
      }

      // Step 6: the vTPM entry, with the AK.
      const vtpm = vtpmManifestOf(manifest);
      if (vtpm.version !== 1) {
        throw new CaRefused(
          'ca.manifest_no_ak',
          'a v0 vTPM manifest carries only the EK; use v1 or credential activation',
        );
      }

      // Step 7: the EK is the instance's certified EK.
      const ek = fromTpmPublic(vtpm.ek);
      const ekRecord = await this.matchEk(instanceId, ek.spki);

      // Steps 8-9 and issuance.
      return this.issueAk(
        instanceId,
        ekRecord,
        vtpm.ak,
        req.csr,
        format,
        'tee',
        {
          route: 'tee',
          manifestVersion: vtpm.version,
          product: verified.product,
        },
        toHex(sha256(reportBytes)),
      );
    });
  }

  /**
   * Route (b), step 1: checks the instance's certified EK and the AK's attributes, and returns a credential
   * (TPM2_MakeCredential in software to the EK, bound to the AK's Name) whose secret only that TPM can
   * recover, and only for that AK. The secret's SHA-256 is stored; the secret is not.
   *
   * Throws CaRefused `ca.instance_unknown`, `ca.ek_mismatch`, `ca.ak_attributes`, `ca.csr_key_mismatch`,
   * `ca.csr_name_not_allowed`; InvalidArgument `ca.ek_public_required` (no TPM public area known for the
   * EK); MalformedEvidence for malformed inputs.
   */
  async startActivation(req: ActivationRequest): Promise<ActivationChallenge> {
    const instanceId = instanceKey(req.instanceId);
    const format = checkOutputFormat(req.format ?? 'x509');
    const akBytes = bytesArg(req.akPublic, 'ak_public');
    return this.decide('ca.activation_start', { instance: instanceId }, null, async () => {
      const ak = readPublicKeyInput(akBytes);
      if (!ak.tpmPublic)
        throw new InvalidArgument('ca.ak_public', 'the AK must be given as a TPM public area');
      let ekPublic: ParsedPublic;
      if (req.ekPublic !== undefined) {
        const ek = readPublicKeyInput(bytesArg(req.ekPublic, 'ek_public'));
        if (!ek.tpmPublic)
          throw new InvalidArgument('ca.ek_public', 'the EK must be given as a TPM public area');
        await this.matchEk(instanceId, ek.spki);
        ekPublic = ek.tpmPublic;
      } else {
        const eks = await this.certifiedEks(instanceId);
        if (eks.length === 0) throw new CaRefused('ca.instance_unknown');
        const stored = eks.find((r) => r.ekPublic !== null);
        if (!stored) {
          throw new InvalidArgument('ca.ek_public_required', 'no EK public area is on record: pass ekPublic');
        }
        ekPublic = parsePublic(stored.ekPublic!);
      }
      this.checkAk(ak.tpmPublic);
      if (req.csr !== undefined) await this.requestedNames(bytesArg(req.csr, 'csr'), ak);

      const size = Math.min(32, HASH_ALGS[ekPublic.nameAlg]?.size ?? 32);
      const secret = new Uint8Array(randomBytes(size));
      try {
        const credential = makeCredential({
          ekPublic,
          akName: computeName(ak.tpmPublic),
          credential: secret,
        });
        const activationId = randomUUID();
        const expiresAt = this.clock().getTime() + this.config.activationTtlSeconds * 1000;
        await this.repository.insertActivation({
          id: activationId,
          instanceId,
          akPublic: Uint8Array.from(ak.tpmPublic.raw),
          ekPublic: Uint8Array.from(ekPublic.raw),
          secretDigest: sha256(secret),
          csr: req.csr ?? null,
          format,
          expiresAt,
        });
        await this.repository.appendLog(
          this.draft('ca.activation_start', instanceId, 'accept', ['ca.credential_made'], {
            activationId,
            akSha256: spkiSha256(ak.spki),
          }),
        );
        return {
          activationId,
          credential,
          credentialFile: encodeCredentialFile(credential),
          expiresAt: new Date(expiresAt),
        };
      } finally {
        secret.fill(0);
      }
    });
  }

  /**
   * Route (b), step 2: the secret TPM2_ActivateCredential returned. The activation is consumed (single
   * use); the secret is compared in constant time (as SHA-256 digests); the EK must still be certified.
   * Throws CaRefused `ca.activation_unknown`, `ca.activation_expired`, `ca.activation_failed`,
   * `ca.instance_unknown`, `ca.ek_mismatch`.
   */
  async finishActivation(req: {
    readonly activationId: string;
    readonly secret: Uint8Array;
  }): Promise<IssuedCertificate> {
    if (typeof req.activationId !== 'string')
      throw new InvalidArgument('ca.activation_id', 'activationId must be a string');
    const secret = bytesArg(req.secret, 'secret');
    const ctx: { instance: string | null } = { instance: null };
    return this.decide('ca.issue_ak', ctx, null, async () => {
      const rec = await this.repository.consumeActivation(req.activationId);
      if (!rec) throw new CaRefused('ca.activation_unknown');
      ctx.instance = rec.instanceId;
      if (rec.expiresAt <= this.clock().getTime()) throw new CaRefused('ca.activation_expired');
      if (!ctEqual(sha256(secret), rec.secretDigest)) {
        throw new CaRefused(
          'ca.activation_failed',
          'the returned secret is not the credential sealed to the EK',
        );
      }
      const ek = fromTpmPublic(parsePublic(rec.ekPublic));
      const ekRecord = await this.matchEk(rec.instanceId, ek.spki);
      return this.issueAk(
        rec.instanceId,
        ekRecord,
        parsePublic(rec.akPublic),
        rec.csr ?? undefined,
        checkOutputFormat(rec.format),
        'activation',
        { route: 'activation', activationId: rec.id },
        null,
      );
    });
  }

  private checkAk(ak: ParsedPublic): void {
    if (!isAkShaped(ak)) {
      throw new CaRefused(
        'ca.ak_attributes',
        `AK attributes 0x${ak.objectAttributes.toString(16)}: need restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin and not decrypt`,
      );
    }
  }

  /** Verifies a CSR for the AK and returns the SAN entries the CA's policy lets it add, and its subject. */
  private async requestedNames(
    csrBytes: Uint8Array,
    ak: PublicKeyInput,
  ): Promise<{ names: Uint8Array[]; subject: Uint8Array }> {
    const csr = await parseCertificationRequest(csrBytes);
    if (!ctEqual(sha256(csr.subjectPublicKeyInfo), sha256(ak.spki))) {
      throw new CaRefused('ca.csr_key_mismatch', "the request's public key is not the AK");
    }
    const allowed = this.config.csr.allowedSan;
    for (const n of csr.subjectAltNames) {
      if (n.type === 'other' || !allowed.includes(n.type)) {
        throw new CaRefused(
          'ca.csr_name_not_allowed',
          `subjectAltName type ${n.type} is not allowed by CA policy`,
        );
      }
    }
    return { names: csr.subjectAltNames.map((n) => n.der), subject: csr.subject };
  }

  private async issueAk(
    instanceId: string,
    ekRecord: CertificateRecord,
    akPublic: ParsedPublic,
    csrBytes: Uint8Array | undefined,
    format: OutputFormat,
    route: 'tee' | 'activation',
    details: AuditDraft['details'],
    evidenceDigest: string | null,
  ): Promise<IssuedCertificate> {
    this.checkAk(akPublic);
    const ak = fromTpmPublic(akPublic);
    const identity = identityFromJson(ekRecord.identityJson!);
    let names: Uint8Array[] = [];
    let subject = nameFromTemplate(this.config.akSubject, identity);
    if (csrBytes !== undefined) {
      const r = await this.requestedNames(csrBytes, ak);
      names = r.names;
      if (this.config.csr.subject === 'request') subject = r.subject;
    }
    const { notBefore, notAfter } = this.validity(this.config.lifetimes.akDays);
    const subjectIsEmpty = subject.length === 2;
    const der = await signCertificate(
      {
        serialNumber: newSerialNumber(),
        signatureAlgorithm: this.config.signatureAlgorithm,
        issuer: this.subject,
        notBefore,
        notAfter,
        subject,
        subjectPublicKeyInfo: ak.spki,
        extensions: akExtensions(
          { config: this.config, spki: ak.spki, issuerKeyId: this.keyId },
          identity,
          this.config.tpm,
          subjectIsEmpty,
          names,
        ),
      },
      this.keyStore,
    );
    return this.finish(
      'ak',
      der,
      format,
      { instanceId, identity, spki: ak.spki, ekPublic: null },
      this.draft(
        'ca.issue_ak',
        instanceId,
        'accept',
        ['ca.issued'],
        { ...details, route, ekSerial: ekRecord.serial, akSha256: spkiSha256(ak.spki) },
        evidenceDigest,
      ),
    );
  }

  // ---- revocation and CRLs --------------------------------------------------------------------------

  /**
   * Revokes a certificate by serial (hex). Idempotent: revoking twice returns 'already_revoked' and logs
   * nothing new. Throws InvalidArgument `ca.serial_unknown`, `ca.crl_reason`.
   */
  async revoke(serial: string, reason = 0): Promise<RevokeResult> {
    const s =
      typeof serial === 'string'
        ? serial
            .toLowerCase()
            .replace(/^0x/, '')
            .replace(/^(00)+(?=..)/, '')
        : '';
    if (!/^[0-9a-f]{1,40}$/.test(s))
      throw new InvalidArgument('ca.serial_unknown', 'a serial is 1-40 hex digits');
    if (!Number.isInteger(reason) || !isCrlReason(reason)) {
      throw new InvalidArgument('ca.crl_reason', `${reason} is not an RFC 5280 CRLReason`);
    }
    const rec = await this.repository.getCertificate(s);
    const at = this.now().getTime();
    const result = await this.repository.revoke(
      s,
      at,
      reason,
      this.draft('ca.revoke', rec?.instanceId ?? null, 'accept', ['ca.revoked'], { serial: s, reason }),
    );
    if (result === 'unknown')
      throw new InvalidArgument('ca.serial_unknown', `no certificate with serial ${s}`);
    return result;
  }

  /** Signs a new CRL (next CRL number, thisUpdate now, nextUpdate now + crlDays) listing every revocation. */
  async generateCrl(): Promise<CrlRecord> {
    const revoked = await this.repository.listRevoked();
    const number = await this.repository.nextCrlNumber();
    const thisUpdate = this.now();
    const nextUpdate = new Date(thisUpdate.getTime() + this.config.lifetimes.crlDays * DAY_MS);
    const tbs = encodeTbsCertList({
      signatureAlgorithm: this.config.signatureAlgorithm,
      issuer: this.subject,
      thisUpdate,
      nextUpdate,
      revoked: revoked.map((r) => ({
        serialNumber: new Uint8Array(Buffer.from(r.serial.length % 2 ? `0${r.serial}` : r.serial, 'hex')),
        revocationDate: new Date(r.revokedAt!),
        reason: r.revocationReason ?? 0,
      })),
      crlNumber: number,
      issuerKeyId: this.keyId,
    });
    const der = await signTbs(tbs, this.config.signatureAlgorithm, this.keyStore);
    const rec: CrlRecord = {
      number,
      thisUpdate: thisUpdate.getTime(),
      nextUpdate: nextUpdate.getTime(),
      der,
    };
    await this.repository.insertCrl(
      rec,
      this.draft('ca.crl', null, 'accept', ['ca.crl_issued'], { crlNumber: number, revoked: revoked.length }),
    );
    return rec;
  }

  /** Recomputes the issuance log's hash chain. */
  verifyLog(): Promise<AuditVerification> {
    return verifyIssuanceLog(this.repository);
  }

  /** Log entries after `afterSeq`. */
  readLog(afterSeq = 0, limit = 1000): Promise<AuditEntry[]> {
    return this.repository.readLog(afterSeq, limit);
  }
}
