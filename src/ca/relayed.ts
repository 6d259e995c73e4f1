import type { SnpCerts } from '../evidence/snp/verify.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import type { OutputFormat } from './c509-output.js';
import type { IssuedCertificate } from './options.js';
import type { RegisteredInstance } from './registry.js';

/**
 * Requests and results of the relayed TEE routes: CERTIFY_EK and CERTIFY_AK, which the guest's SVSM sends
 * through the paravirtual channel and the VMM relays to the CA service (docs/pvchannel.md §7.2,
 * docs/ca.md "The CA as a service"). The relay carries evidence; it chooses nothing.
 */

export interface RelayedTeeRequest {
  /** The authenticated relay (the name of the host credential it called with); its nonce scope. */
  readonly caller: string;
  /** A nonce this CA issued to `caller` (createRelayNonce). */
  readonly nonce: Uint8Array;
  /** The SEV-SNP ATTESTATION_REPORT, REPORT_DATA = SHA-512(nonce ‖ manifest). */
  readonly report: Uint8Array;
  /** The extended report's certificate table (empty or absent: `certs`, or AMD KDS when configured). */
  readonly certTable?: Uint8Array;
  readonly certs?: SnpCerts;
  /** The services manifest (or the vTPM payload alone) the report covers. */
  readonly manifest: Uint8Array;
  readonly format?: OutputFormat;
  /**
   * What the relay believes the instance is (the control plane told the VMM): compared with the registry
   * and refused when different (`ca.identity_mismatch`), never written into a certificate.
   */
  readonly claimedIdentity?: PlatformIdentity;
}

export interface RelayedAkRequest extends RelayedTeeRequest {
  /** A PKCS#10 or C509 request for the manifest's AK: proof of possession, and names within CA policy. */
  readonly csr: Uint8Array;
}

export interface RelayedCertificate extends IssuedCertificate {
  /** The instance the registry names for the report's HOST_DATA. */
  readonly instance: RegisteredInstance;
  /** True when an EK certificate already issued for this EK and instance was returned (no new serial). */
  readonly reused: boolean;
}
