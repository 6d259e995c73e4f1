import type { SnpCollateralGetter } from '../evidence/snp/attestation.js';
import type { SnpCerts, SnpVerifier } from '../evidence/snp/verify.js';
import type { CredentialBlob } from '../formats/tpm/make-credential.js';
import type { GceInstanceIdentity } from '../formats/x509/instance-identity.js';
import type { CaRepository, CertificateKind } from '../store/ca-types.js';
import type { CaKeyType } from './algorithms.js';
import type { OutputFormat } from './c509-output.js';
import type { CaConfig } from './config.js';
import type { TpmDeviceInfo } from './extensions.js';
import type { CaKeyStore } from './key-store.js';

/**
 * The platform CA's option, request and result types (docs/ca.md "API"). Types only, and no import of the
 * CA itself: an issuing CA is described by {@link CaIssuer}, which PlatformCa satisfies.
 */

/** What {@link InitCaOptions.issuer} needs of an open CA to make this one its intermediate. */
export interface CaIssuer {
  /** The issuer's certificate, then its issuers up to the root (DER). */
  readonly chain: readonly Uint8Array[];
  /** Issues an intermediate CA certificate (pathLen 0) for `subject` (DER Name) and `spki` (DER). */
  issueCaCertificate(subject: Uint8Array, spki: Uint8Array): Promise<IssuedCertificate>;
}

export interface PlatformCaOptions {
  /** Clock (default: the system clock). */
  readonly now?: () => Date;
  /** Passphrase of an encrypted key file. */
  readonly passphrase?: string;
  /** Another key store (e.g. PKCS#11) instead of `ca-key.pem`. */
  readonly keyStore?: CaKeyStore;
  /**
   * The CA's database when it is not the directory's `ca.db`: e.g. `openCaRepository('postgres://...')`.
   * The caller closes it only if init or open fails; afterwards PlatformCa.close() does.
   */
  readonly repository?: CaRepository;
  /** A shared SNP verifier (its chain cache); default: one per CA. */
  readonly snpVerifier?: SnpVerifier;
  /**
   * AMD KDS (src/collateral KdsClient, or a stand-in) for the VCEK and chain a report's certificate table
   * lacks (the real SVSM sends none) and for CRLs; default none: the table (or `certs`) must be complete.
   */
  readonly snpCollateral?: SnpCollateralGetter;
  /** Check the ASK/ASVK against AMD's CRL fetched through `snpCollateral` (needs it). Default false. */
  readonly checkRevocations?: boolean;
}

export interface InitCaOptions extends PlatformCaOptions {
  readonly dir: string;
  /** Default p384. */
  readonly keyType?: CaKeyType;
  /**
   * Keep the CA key in a PKCS#11 token: its `pkcs11:` URI (RFC 7512; generated there when absent, p256 or
   * p384). Written to `ca-key.uri`, which opening the CA reads instead of `ca-key.pem` (docs/keys.md).
   */
  readonly keyUri?: string;
  /** RFC 4514 subject, default `CN=Vouchsafe Platform CA`. */
  readonly subject?: string;
  /** An open CA that issues this one as an intermediate (pathLen 0); default: self-signed root. */
  readonly issuer?: CaIssuer;
  /** Configuration overrides on top of the defaults (validated as ca.json is). */
  readonly config?: Partial<Omit<CaConfig, 'version' | 'keyType'>>;
}

export interface IssuedCertificate {
  readonly serial: string;
  readonly kind: CertificateKind;
  /** The X.509 certificate (DER); always issued. */
  readonly der: Uint8Array;
  /** The C509 form when asked for. */
  readonly c509?: Uint8Array;
  readonly format: OutputFormat;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface EkRequest {
  /** The EK public key: TPM2B_PUBLIC, TPMT_PUBLIC, or SubjectPublicKeyInfo (DER or PEM). */
  readonly ekPublic: Uint8Array;
  readonly identity: GceInstanceIdentity;
  /** TPM manufacturer/model/version for the SAN (default: the configured ones). */
  readonly tpm?: TpmDeviceInfo;
  /** Default 'x509'. */
  readonly format?: OutputFormat;
}

export interface TeeAkRequest {
  readonly instanceId: bigint | string;
  /** The 64-byte nonce this CA issued (PlatformCa.createNonce). */
  readonly nonce: Uint8Array;
  /** The SEV-SNP ATTESTATION_REPORT. */
  readonly report: Uint8Array;
  /** The extended report's certificate table, or the three certificates. */
  readonly certTable?: Uint8Array;
  readonly certs?: SnpCerts;
  /** What REPORT_DATA covers: the services manifest or the vTPM service payload (v1 carries the AK). */
  readonly manifest: Uint8Array;
  /** A PKCS#10 or C509 request for the AK (names, proof of possession), optional. */
  readonly csr?: Uint8Array;
  readonly format?: OutputFormat;
}

export interface ActivationRequest {
  readonly instanceId: bigint | string;
  /** The AK public area (TPM2B_PUBLIC or TPMT_PUBLIC): its Name binds the credential. */
  readonly akPublic: Uint8Array;
  /** The EK public area; default: the one stored with the instance's EK certificate. */
  readonly ekPublic?: Uint8Array;
  readonly csr?: Uint8Array;
  readonly format?: OutputFormat;
}

export interface ActivationChallenge {
  readonly activationId: string;
  readonly credential: CredentialBlob;
  /** The same as a tpm2-tools credential file (`tpm2_activatecredential -i`). */
  readonly credentialFile: Uint8Array;
  readonly expiresAt: Date;
}
