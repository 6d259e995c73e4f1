import { type Der, explicit, integer, sequence, time, tlv, unsignedInteger } from '../formats/der/writer.js';
import {
  authorityKeyIdentifier,
  crlNumber,
  encodeExtensionList,
} from '../formats/x509/extension-builders.js';
import { type Extension, OID } from '../formats/x509/extensions.js';
import { algorithmIdentifier, type SignatureAlgorithm, signatureAlgorithm } from './algorithms.js';

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
    const reasonCode: Extension = {
      oid: OID.crlReason,
      critical: false,
      value: tlv(0x0a, Uint8Array.of(e.reason)),
    };
    parts.push(encodeExtensionList([reasonCode]));
  }
  return sequence(...parts);
}

/** Encodes a v2 TBSCertList. */
export function encodeTbsCertList(t: TbsCrlInput): Der {
  return sequence(
    integer(1), // v2
    algorithmIdentifier(signatureAlgorithm(t.signatureAlgorithm)),
    t.issuer,
    time(t.thisUpdate),
    time(t.nextUpdate),
    ...(t.revoked.length > 0 ? [sequence(...t.revoked.map(entry))] : []),
    explicit(0, encodeExtensionList([authorityKeyIdentifier(t.issuerKeyId), crlNumber(t.crlNumber)])),
  );
}
