import { AttestationError, ErrorCode } from '../errors.js';

/**
 * Code of {@link CaRefused}: `ERR_REFUSED`, as the broker's refusals (src/broker/errors.ts): well-formed,
 * verified input that the CA declines.
 */
export const CA_REFUSED = ErrorCode.Refused;

/**
 * Stable reasons the CA refuses on; each refusal is written to the issuance log.
 * - `ca.nonce_unknown`: the nonce was never issued by this CA, was issued for another instance, or was used.
 * - `ca.nonce_expired`: issued, but older than its lifetime.
 * - `ca.report_vmpl`: the SNP report was not requested at VMPL0, so the SVSM did not produce it and the
 *   manifest it covers proves nothing (the guest OS runs at VMPL ≥ 1 and can choose its own REPORT_DATA).
 * - `ca.manifest_not_covered`: REPORT_DATA ≠ SHA-512(nonce ‖ manifest).
 * - `ca.manifest_no_vtpm`: the services manifest lists no vTPM service.
 * - `ca.manifest_no_ak`: a v0 vTPM manifest (EK only) cannot vouch for an AK.
 * - `ca.instance_unknown`: the instance has no valid (unrevoked, unexpired) EK certificate from this CA.
 * - `ca.ek_mismatch`: the EK presented is not one the CA certified for that instance.
 * - `ca.ek_attributes`: an EK given as a TPM public area is not a restricted decryption key with fixedTPM and
 *   fixedParent (the TCG EK templates all are).
 * - `ca.ak_attributes`: the AK is not a restricted signing key with fixedTPM and fixedParent (or is also a
 *   decryption key).
 * - `ca.activation_unknown`: no pending credential activation with that id (never started or already used).
 * - `ca.activation_expired`: the activation is older than its lifetime.
 * - `ca.activation_failed`: the secret returned is not the one sealed to the EK (wrong TPM or wrong AK).
 * - `ca.csr_key_mismatch`: the CSR's public key is not the AK's.
 * - `ca.csr_name_not_allowed`: the CSR requests a subjectAltName type the CA's policy does not allow.
 * - `ca.instance_unregistered`: (relayed routes) no instance is registered with the report's HOST_DATA.
 * - `ca.instance_id_not_numeric`: the registered instance id is not a decimal u64, which the EK
 *   certificate's GCE identity schema needs.
 * - `ca.identity_mismatch`: the relay (the VMM) claimed an identity other than the registry's.
 * - `ca.ek_other_instance`: the EK is already certified for another instance.
 * - `ca.ek_changed`: the instance already holds a valid EK certificate for another key (its vTPM state
 *   was replaced); revoke the old certificate to let a new EK in.
 */
export type CaRefusalReason =
  | 'ca.nonce_unknown'
  | 'ca.nonce_expired'
  | 'ca.report_vmpl'
  | 'ca.manifest_not_covered'
  | 'ca.manifest_no_vtpm'
  | 'ca.manifest_no_ak'
  | 'ca.instance_unknown'
  | 'ca.ek_mismatch'
  | 'ca.ek_attributes'
  | 'ca.ak_attributes'
  | 'ca.activation_unknown'
  | 'ca.activation_expired'
  | 'ca.activation_failed'
  | 'ca.csr_key_mismatch'
  | 'ca.csr_name_not_allowed'
  | 'ca.instance_unregistered'
  | 'ca.instance_id_not_numeric'
  | 'ca.identity_mismatch'
  | 'ca.ek_other_instance'
  | 'ca.ek_changed';

/** The CA declined a request for a reason of its own (not a parse, signature, chain or policy failure). */
export class CaRefused extends AttestationError {
  declare readonly reason: CaRefusalReason;

  constructor(reason: CaRefusalReason, message = `refused: ${reason}`) {
    super(CA_REFUSED, reason, message);
  }
}
