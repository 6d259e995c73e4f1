import { asciiString, cursor, type DerReason, oid, parseOne, Tag } from '../der/reader.js';

/**
 * X.509 distinguished names (RFC 5280 §4.1.2.4) in a readable form. Certificates keep names as their DER
 * (chaining compares those bytes); this reads the attributes when a check or a message needs them. Values
 * must be printable ASCII in a PrintableString, IA5String or UTF8String (every AMD name, and what the
 * collateral layer classifies by); anything else is MalformedEvidence with the caller's reason.
 */

export interface X509Name {
  /** The whole Name element; issuer/subject chaining compares these bytes. */
  readonly der: Uint8Array;
  /** AttributeTypeAndValue pairs in encoding order (most significant RDN first). */
  readonly attributes: readonly { readonly oid: string; readonly value: string }[];
}

export const NameOid = {
  commonName: '2.5.4.3',
  countryName: '2.5.4.6',
  localityName: '2.5.4.7',
  stateOrProvinceName: '2.5.4.8',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
} as const;

const ATTR_SHORT: Readonly<Record<string, string>> = Object.assign(Object.create(null), {
  [NameOid.commonName]: 'CN',
  [NameOid.countryName]: 'C',
  [NameOid.localityName]: 'L',
  [NameOid.stateOrProvinceName]: 'ST',
  [NameOid.organizationName]: 'O',
  [NameOid.organizationalUnitName]: 'OU',
});

/** Reads a DER Name (RDNSequence). Throws MalformedEvidence `reason`. */
export function parseName(der: Uint8Array, reason: DerReason): X509Name {
  const attributes: { oid: string; value: string }[] = [];
  const rdns = cursor(parseOne(der, reason, Tag.Sequence), reason);
  while (!rdns.done) {
    const set = cursor(rdns.next(Tag.Set, 'RDN'), reason);
    do {
      const atv = cursor(set.next(Tag.Sequence, 'AttributeTypeAndValue'), reason);
      const type = oid(atv.next(Tag.Oid, 'attribute type'), reason);
      attributes.push({ oid: type, value: asciiString(atv.any('attribute value'), reason) });
      atv.end();
    } while (!set.done);
  }
  return { der, attributes };
}

/** RFC 4514 rendering: most significant RDN last in the encoding, first in the string: `CN=..,O=..`. */
export function formatName(n: X509Name): string {
  return n.attributes
    .map((a) => `${ATTR_SHORT[a.oid] ?? a.oid}=${a.value}`)
    .reverse()
    .join(',');
}

/** The one commonName of a name; undefined when there is none or more than one. */
export function commonName(n: X509Name): string | undefined {
  const cns = n.attributes.filter((a) => a.oid === NameOid.commonName);
  return cns.length === 1 ? cns[0]!.value : undefined;
}
