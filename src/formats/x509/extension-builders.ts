import {
  boolean,
  type Der,
  explicit,
  implicitPrimitive,
  integer,
  namedBits,
  octetString,
  oid,
  sequence,
} from '../der/writer.js';
import { type Extension, OID } from './extensions.js';
import { keyIdentifier } from './key-identifier.js';

/**
 * The RFC 5280 extensions that every issuer here writes the same way (the SNP simulator and the platform
 * CA; what only the CA writes, the TCG ones, is src/ca/extensions.ts). Each builder returns an
 * {@link Extension}: `value` is the extension's own DER, what goes inside extnValue. The reader side is
 * extensions.ts.
 */

/**
 * Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } (RFC 5280
 * §4.1); critical FALSE is left out, as DER requires of a DEFAULT (X.690 §11.5). `reason` is the
 * InvalidArgument reason for an extnID that is not an OID.
 */
export function encodeExtension(e: Extension, reason?: string): Der {
  const id = oid(e.oid, reason);
  return e.critical ? sequence(id, boolean(true), octetString(e.value)) : sequence(id, octetString(e.value));
}

/** Extensions ::= SEQUENCE OF Extension, in the order given (without the [3] or [0] tag around it). */
export function encodeExtensionList(exts: readonly Extension[], reason?: string): Der {
  return sequence(...exts.map((e) => encodeExtension(e, reason)));
}

/** basicConstraints (§4.2.1.9), critical: cA TRUE with an optional pathLenConstraint, or empty for an end entity. */
export function basicConstraints(ca: boolean, pathLen?: number): Extension {
  const items: Der[] = [];
  if (ca) {
    items.push(boolean(true));
    if (pathLen !== undefined) items.push(integer(pathLen));
  }
  return { oid: OID.basicConstraints, critical: true, value: sequence(...items) };
}

/** keyUsage (§4.2.1.3), critical; `bits` per KeyUsage (extensions.ts), trailing zero bits dropped (DER). */
export function keyUsage(bits: readonly number[]): Extension {
  return { oid: OID.keyUsage, critical: true, value: namedBits(bits) };
}

/**
 * subjectKeyIdentifier (§4.2.1.2) by method (1), SHA-1 of the subjectPublicKey bits, non-critical. Throws
 * MalformedEvidence `reason` (default `x509.spki`) for a SubjectPublicKeyInfo that does not parse.
 */
export function subjectKeyIdentifier(spki: Uint8Array, reason?: string): Extension {
  return { oid: OID.subjectKeyIdentifier, critical: false, value: octetString(keyIdentifier(spki, reason)) };
}

/** authorityKeyIdentifier (§4.2.1.1) with keyIdentifier [0] only, non-critical. */
export function authorityKeyIdentifier(keyId: Uint8Array): Extension {
  return { oid: OID.authorityKeyIdentifier, critical: false, value: sequence(implicitPrimitive(0, keyId)) };
}

/** cRLDistributionPoints (§4.2.1.13), non-critical: one DistributionPoint whose fullName lists the URIs. */
export function crlDistributionPoints(uris: readonly string[]): Extension {
  const names = uris.map((u) => implicitPrimitive(6, new Uint8Array(Buffer.from(u, 'ascii')))); // URI [6]
  const fullName = explicit(0, ...names); // DistributionPointName.fullName [0] IMPLICIT GeneralNames
  const point = sequence(explicit(0, fullName)); // DistributionPoint.distributionPoint [0]
  return { oid: OID.crlDistributionPoints, critical: false, value: sequence(point) };
}

/** cRLNumber (§5.2.3), non-critical. */
export function crlNumber(n: bigint | number): Extension {
  return { oid: OID.crlNumber, critical: false, value: integer(n) };
}
