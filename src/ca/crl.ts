import { algorithmIdentifier, type SignatureAlgorithm, signatureAlgorithm } from './algorithms.js';
import { type Der, explicit, integer, sequence, time, tlv, unsignedInteger } from './der.js';
import { authorityKeyIdentifier, CA_OID, type CertExtension, extensionList } from './extensions.js';

/**
 * X.509 v2 CRL (RFC 5280 §5): TBSCertList with the CA's issuer name, thisUpdate/nextUpdate, one entry per
 * revoked certificate (serial, revocationDate, reasonCode unless unspecified, §5.3.1) and the CRL extensions
 * authorityKeyIdentifier (§5.2.1) and cRLNumber (§5.2.3, monotonically increasing).
 */

/** CRLReason codes (RFC 5280 §5.3.1); 7 is unused. */
export const CrlReason = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export function isCrlReason(n: number): boolean {
  return Object.values(CrlReason).includes(n as never);
}

export interface RevokedEntry {
  readonly serialNumber: Uint8Array;
  readonly revocationDate: Date;
  readonly reason: number;
}

export interface TbsCrlInput {
  readonly signatureAlgorithm: SignatureAlgorithm;
  readonly issuer: Uint8Array;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly revoked: readonly RevokedEntry[];
  readonly crlNumber: number;
  readonly issuerKeyId: Uint8Array;
}

function entry(e: RevokedEntry): Der {
  const parts: Der[] = [unsignedInteger(e.serialNumber), time(e.revocationDate)];
  if (e.reason !== CrlReason.unspecified) {
    const reasonCode: CertExtension = {
      oid: CA_OID.cRLReason,
      critical: false,
      value: tlv(0x0a, Uint8Array.of(e.reason)),
    };
    parts.push(extensionList([reasonCode]));
  }
  return sequence(...parts);
}

/** Encodes a v2 TBSCertList. */
export function encodeTbsCertList(t: TbsCrlInput): Der {
  const crlNumber: CertExtension = { oid: CA_OID.cRLNumber, critical: false, value: integer(t.crlNumber) };
  return sequence(
    integer(1), // v2
    algorithmIdentifier(signatureAlgorithm(t.signatureAlgorithm)),
    t.issuer,
    time(t.thisUpdate),
    time(t.nextUpdate),
    ...(t.revoked.length > 0 ? [sequence(...t.revoked.map(entry))] : []),
    explicit(0, extensionList([authorityKeyIdentifier(t.issuerKeyId), crlNumber])),
  );
}
