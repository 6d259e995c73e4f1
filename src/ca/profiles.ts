import type { KeyObject } from 'node:crypto';
import type { Der } from '../formats/der/writer.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  crlDistributionPoints,
  keyUsage,
  subjectKeyIdentifier as sharedSubjectKeyIdentifier,
} from '../formats/x509/extension-builders.js';
import { type Extension, KeyUsage } from '../formats/x509/extensions.js';
import { type GceInstanceIdentity, instanceIdentityExtension } from '../formats/x509/instance-identity.js';
import type { CaConfig } from './config.js';
import {
  authorityInfoAccess,
  CA_OID,
  extKeyUsage,
  type TpmDeviceInfo,
  tpmSpecificationAttributes,
  tpmSubjectAltName,
} from './extensions.js';

/**
 * Certificate profiles: which extensions each kind of certificate carries, in a fixed order.
 *
 * - CA (root/intermediate): basicConstraints cA (critical), keyUsage keyCertSign|cRLSign (critical), SKI, AKI.
 * - EK (TCG EK Credential Profile for TPM Family 2.0 v2.5, §3.2; shaped like GCE's and swtpm's EK
 *   certificates): empty subject; basicConstraints cA FALSE (critical); SKI; AKI; AIA and CRL DP when
 *   configured; keyUsage keyEncipherment (RSA EK) or keyAgreement (ECC EK), critical (§3.2.6); EKU
 *   tcg-kp-EKCertificate 2.23.133.8.1 (§3.2.16); subjectDirectoryAttributes with tcg-at-tpmSpecification
 *   (§3.2.12); subjectAltName directoryName {tpmManufacturer, tpmModel, tpmVersion}, critical because the
 *   subject is empty (§3.2.9); the platform identity extension (GCE schema, configured OID).
 * - AK: subject from the configured template (or empty, then the SAN is critical); basicConstraints cA
 *   FALSE; SKI; AKI; AIA/CRL DP; keyUsage digitalSignature (critical); EKU tcg-kp-AIKCertificate
 *   2.23.133.8.3; subjectDirectoryAttributes; subjectAltName (TPM directoryName plus any names a request was
 *   allowed to add); the identity extension.
 */

export interface ProfileContext {
  readonly config: CaConfig;
  /** SubjectPublicKeyInfo DER of the certified key. */
  readonly spki: Uint8Array;
  /** The issuing CA's key identifier. */
  readonly issuerKeyId: Uint8Array;
}

/** SKI by RFC 5280 §4.2.1.2 method (1); an SPKI that does not parse is MalformedEvidence `ca.spki`. */
const subjectKeyIdentifier = (spki: Uint8Array): Extension => sharedSubjectKeyIdentifier(spki, 'ca.spki');

function distribution(config: CaConfig): Extension[] {
  const out: Extension[] = [];
  if (config.caIssuersUrl !== null) out.push(authorityInfoAccess(config.caIssuersUrl));
  if (config.crlDistributionPoints.length > 0) out.push(crlDistributionPoints(config.crlDistributionPoints));
  return out;
}

/** What EK and AK certificates begin with: not a CA, SKI, AKI, then AIA and CRL DP when configured. */
function endEntityHead(ctx: ProfileContext): Extension[] {
  return [
    basicConstraints(false),
    subjectKeyIdentifier(ctx.spki),
    authorityKeyIdentifier(ctx.issuerKeyId),
    ...distribution(ctx.config),
  ];
}

/** Extensions of a CA certificate. `pathLen` 0 for an intermediate that issues only end entities. */
export function caExtensions(spki: Uint8Array, issuerKeyId: Uint8Array, pathLen?: number): Extension[] {
  return [
    basicConstraints(true, pathLen),
    keyUsage([KeyUsage.keyCertSign, KeyUsage.cRLSign]),
    subjectKeyIdentifier(spki),
    authorityKeyIdentifier(issuerKeyId),
  ];
}

/** keyEncipherment for an RSA EK, keyAgreement for an ECC EK (EK profile §3.2.6). */
export function ekKeyUsageBits(key: KeyObject): number[] {
  return key.asymmetricKeyType === 'rsa' ? [KeyUsage.keyEncipherment] : [KeyUsage.keyAgreement];
}

export function ekExtensions(
  ctx: ProfileContext,
  key: KeyObject,
  identity: GceInstanceIdentity,
  tpm: TpmDeviceInfo,
): Extension[] {
  const { config } = ctx;
  return [
    ...endEntityHead(ctx),
    keyUsage(ekKeyUsageBits(key)),
    extKeyUsage([CA_OID.ekCertificate]),
    tpmSpecificationAttributes(config.tpmSpecification),
    tpmSubjectAltName(tpm, true),
    identityExtension(config, identity),
  ];
}

export function akExtensions(
  ctx: ProfileContext,
  identity: GceInstanceIdentity,
  tpm: TpmDeviceInfo,
  subjectIsEmpty: boolean,
  requestedNames: readonly Der[],
): Extension[] {
  const { config } = ctx;
  return [
    ...endEntityHead(ctx),
    keyUsage([KeyUsage.digitalSignature]),
    extKeyUsage([CA_OID.akCertificate]),
    tpmSpecificationAttributes(config.tpmSpecification),
    tpmSubjectAltName(tpm, subjectIsEmpty, requestedNames),
    identityExtension(config, identity),
  ];
}

function identityExtension(config: CaConfig, identity: GceInstanceIdentity): Extension {
  const sp = config.identitySecurityProperties;
  const id: GceInstanceIdentity =
    sp === null ? stripSecurity(identity) : { ...identity, securityProperties: sp };
  return instanceIdentityExtension(id, config.identityOid);
}

function stripSecurity(id: GceInstanceIdentity): GceInstanceIdentity {
  return {
    zone: id.zone,
    projectNumber: id.projectNumber,
    projectId: id.projectId,
    instanceId: id.instanceId,
    instanceName: id.instanceName,
  };
}
