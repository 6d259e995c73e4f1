import { createHash, constants as cryptoConstants, type KeyObject, sign } from 'node:crypto';
import * as asn1js from 'asn1js';

/**
 * DER building blocks for the simulator's AMD-shaped certificates and CRLs (RFC 5280 structures, encoded
 * with asn1js). Everything here is shaped after AMD's real ARK/ASK/ASVK/VCEK/VLEK (KDS spec 57230 and the
 * certificates in shared/vectors): the simulator exists to produce evidence a verifier cannot tell apart
 * from AMD's by shape, so these helpers make no choice of their own where AMD's bytes show one.
 */

export const Oid = {
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  sha384: '2.16.840.1.101.3.4.2.2',
  commonName: '2.5.4.3',
  countryName: '2.5.4.6',
  localityName: '2.5.4.7',
  stateOrProvinceName: '2.5.4.8',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  cRLNumber: '2.5.29.20',
  cRLDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
} as const;

export type Asn1 = asn1js.AsnType;

/** [n] EXPLICIT / constructed context-specific tag. */
export const explicit = (tagNumber: number, value: Asn1[]): Asn1 =>
  new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber }, value });

const ctxPrimitive = (tagNumber: number, bytes: Uint8Array): Asn1 =>
  new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber }, valueHex: bytes });

export const seq = (...value: Asn1[]): Asn1 => new asn1js.Sequence({ value });
export const oid = (value: string): Asn1 => new asn1js.ObjectIdentifier({ value });
export const int = (value: number | bigint): Asn1 => asn1js.Integer.fromBigInt(BigInt(value));
export const octets = (bytes: Uint8Array): Asn1 => new asn1js.OctetString({ valueHex: bytes });
export const ia5 = (value: string): Asn1 => new asn1js.IA5String({ value });
/**
 * Already-encoded DER (a SubjectPublicKeyInfo, a TBS) as a node. asn1js's RawData is not counted inside a
 * constructed value, so the DER is decoded and re-encoding is checked to give back the same bytes.
 */
export function raw(der: Uint8Array): Asn1 {
  const parsed = asn1js.fromBER(der);
  if (parsed.offset !== der.length || !Buffer.from(parsed.result.toBER(false)).equals(der)) {
    throw new Error('sim: DER does not re-encode identically');
  }
  return parsed.result;
}

export function toDer(node: Asn1): Uint8Array {
  return new Uint8Array(node.toBER(false));
}

/**
 * RSASSA-PSS AlgorithmIdentifier with SHA-384, MGF1-SHA-384, salt 48 (RFC 4055 section 3.1). AMD's ARK, ASK
 * and ASVK spell out the default trailerField [3] INTEGER 1; VCEKs and VLEKs issued since 2024 omit it
 * (older ones carried it too), so the caller chooses.
 */
export function pssAlgorithm(explicitTrailer: boolean): Asn1 {
  const sha384 = seq(oid(Oid.sha384), new asn1js.Null());
  const params = [
    explicit(0, [sha384]),
    explicit(1, [seq(oid(Oid.mgf1), seq(oid(Oid.sha384), new asn1js.Null()))]),
    explicit(2, [int(48)]),
  ];
  if (explicitTrailer) params.push(explicit(3, [int(1)]));
  return seq(oid(Oid.rsassaPss), seq(...params));
}

/**
 * AMD's distinguished name, attribute by attribute in AMD's order: OU=Engineering, C=US, L=Santa Clara,
 * ST=CA, O=Advanced Micro Devices, CN=<cn>. Every value is a UTF8String except C (PrintableString), as in
 * AMD's certificates.
 */
export function amdName(cn: string): Asn1 {
  const rdn = (type: string, value: Asn1) => new asn1js.Set({ value: [seq(oid(type), value)] });
  const utf8 = (value: string) => new asn1js.Utf8String({ value });
  return seq(
    rdn(Oid.organizationalUnitName, utf8('Engineering')),
    rdn(Oid.countryName, new asn1js.PrintableString({ value: 'US' })),
    rdn(Oid.localityName, utf8('Santa Clara')),
    rdn(Oid.stateOrProvinceName, utf8('CA')),
    rdn(Oid.organizationName, utf8('Advanced Micro Devices')),
    rdn(Oid.commonName, utf8(cn)),
  );
}

/** Drops milliseconds: DER times have whole seconds, and a rounded-up notBefore would lie in the future. */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

/** RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 (ARK/ASK validity reaches it). */
export function time(d: Date): Asn1 {
  const valueDate = wholeSeconds(d);
  return valueDate.getUTCFullYear() < 2050
    ? new asn1js.UTCTime({ valueDate })
    : new asn1js.GeneralizedTime({ valueDate });
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
export function extension(id: string, value: Uint8Array, critical = false): Asn1 {
  return critical
    ? seq(oid(id), new asn1js.Boolean({ value: true }), octets(value))
    : seq(oid(id), octets(value));
}

/**
 * KeyUsage BIT STRING (RFC 5280 4.2.1.3). AMD encodes it with one unused bit whatever is set (ARK 03 02 01 06,
 * ASK 03 02 01 04), although strict DER would drop every trailing zero bit of the ASK's value; we copy AMD.
 */
export function keyUsage(bits: { keyCertSign?: boolean; cRLSign?: boolean }): Uint8Array {
  // keyCertSign is bit 5 and cRLSign bit 6: in the first octet, MSB first, 0x04 and 0x02.
  const byte = (bits.keyCertSign ? 0x04 : 0) | (bits.cRLSign ? 0x02 : 0);
  return toDer(new asn1js.BitString({ valueHex: new Uint8Array([byte]), unusedBits: 1 }));
}

export function basicConstraints(pathLen?: number): Uint8Array {
  const value: Asn1[] = [new asn1js.Boolean({ value: true })];
  if (pathLen !== undefined) value.push(int(pathLen));
  return toDer(seq(...value));
}

/** CRLDistributionPoints with one fullName URI, as AMD's (RFC 5280 4.2.1.13). */
export function crlDistributionPoint(uri: string): Uint8Array {
  const uriName = ctxPrimitive(6, new Uint8Array(Buffer.from(uri, 'ascii')));
  // DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } }
  return toDer(seq(seq(explicit(0, [explicit(0, [uriName])]))));
}

/** Key identifier method 1 of RFC 5280 4.2.1.2: SHA-1 of the subjectPublicKey bits (AMD uses it). */
export function keyIdentifier(publicKey: KeyObject): Uint8Array {
  const spki = asn1js.fromBER(publicKey.export({ type: 'spki', format: 'der' }));
  const bits = (spki.result as asn1js.Sequence).valueBlock.value[1] as asn1js.BitString;
  return new Uint8Array(createHash('sha1').update(bits.valueBlock.valueHexView).digest());
}

export function subjectKeyIdentifier(publicKey: KeyObject): Uint8Array {
  return toDer(octets(keyIdentifier(publicKey)));
}

export function authorityKeyIdentifier(issuerKey: KeyObject): Uint8Array {
  return toDer(seq(ctxPrimitive(0, keyIdentifier(issuerKey))));
}

/** RSASSA-PSS SHA-384 salt 48 signature, as AMD signs certificates and CRLs. */
export function signPss(data: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(
    sign('sha384', data, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }),
  );
}

/** Certificate / CertificateList ::= SEQUENCE { tbs, signatureAlgorithm, signatureValue BIT STRING }. */
export function signedStructure(tbs: Uint8Array, algorithm: Asn1, key: KeyObject): Uint8Array {
  const signature = signPss(tbs, key);
  return toDer(seq(raw(tbs), algorithm, new asn1js.BitString({ valueHex: signature, unusedBits: 0 })));
}
