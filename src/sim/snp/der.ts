import { constants as cryptoConstants, type KeyObject, sign } from 'node:crypto';
import {
  bitString,
  boolean,
  type Der,
  explicit as explicitTag,
  ia5String,
  implicitPrimitive,
  integer,
  NULL,
  octetString,
  oid as oidDer,
  printableString,
  sequence,
  setOf,
  time as timeDer,
  utf8String,
  wholeSeconds,
} from '../../formats/der/writer.js';
import { AlgorithmOid } from '../../formats/x509/algorithm.js';
import { OID } from '../../formats/x509/extensions.js';
import { keyIdentifier as spkiKeyIdentifier } from '../../formats/x509/key-identifier.js';
import { NameOid } from '../../formats/x509/name.js';

export { wholeSeconds };

/**
 * DER building blocks for the simulator's AMD-shaped certificates and CRLs (RFC 5280 structures, encoded
 * with the project's DER writer, src/formats/der). Everything here is shaped after AMD's real
 * ARK/ASK/ASVK/VCEK/VLEK (KDS spec 57230 and the certificates in shared/vectors): the simulator exists to
 * produce evidence a verifier cannot tell apart from AMD's by shape, so these helpers make no choice of
 * their own where AMD's bytes show one.
 */

export const Oid = {
  rsassaPss: AlgorithmOid.rsassaPss,
  mgf1: AlgorithmOid.mgf1,
  sha384: AlgorithmOid.sha384,
  ...NameOid,
  subjectKeyIdentifier: OID.subjectKeyIdentifier,
  keyUsage: OID.keyUsage,
  basicConstraints: OID.basicConstraints,
  cRLNumber: OID.crlNumber,
  cRLDistributionPoints: OID.crlDistributionPoints,
  authorityKeyIdentifier: OID.authorityKeyIdentifier,
} as const;

/** An encoded element (the simulator builds DER bottom-up). */
export type Asn1 = Der;

/** [n] EXPLICIT / constructed context-specific tag. */
export const explicit = (tagNumber: number, value: readonly Asn1[]): Asn1 => explicitTag(tagNumber, ...value);

export const seq = sequence;
export const oid = (value: string): Asn1 => oidDer(value, 'sim.snp.der');
export const int = integer;
export const octets = octetString;
export const ia5 = ia5String;
/** Already-encoded DER (a SubjectPublicKeyInfo, a TBS) as an element: it is one already. */
export const raw = (der: Uint8Array): Asn1 => der;
export const toDer = (node: Asn1): Uint8Array => node;

/**
 * RSASSA-PSS AlgorithmIdentifier with SHA-384, MGF1-SHA-384, salt 48 (RFC 4055 section 3.1). AMD's ARK, ASK
 * and ASVK spell out the default trailerField [3] INTEGER 1; VCEKs and VLEKs issued since 2024 omit it
 * (older ones carried it too), so the caller chooses.
 */
export function pssAlgorithm(explicitTrailer: boolean): Asn1 {
  const sha384 = seq(oid(Oid.sha384), NULL);
  const params = [
    explicit(0, [sha384]),
    explicit(1, [seq(oid(Oid.mgf1), seq(oid(Oid.sha384), NULL))]),
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
  const rdn = (type: string, value: Asn1) => setOf(seq(oid(type), value));
  return seq(
    rdn(Oid.organizationalUnitName, utf8String('Engineering')),
    rdn(Oid.countryName, printableString('US')),
    rdn(Oid.localityName, utf8String('Santa Clara')),
    rdn(Oid.stateOrProvinceName, utf8String('CA')),
    rdn(Oid.organizationName, utf8String('Advanced Micro Devices')),
    rdn(Oid.commonName, utf8String(cn)),
  );
}

/** RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 (ARK/ASK validity reaches it). */
export function time(d: Date): Asn1 {
  return timeDer(wholeSeconds(d), 'sim.snp.time');
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }. */
export function extension(id: string, value: Uint8Array, critical = false): Asn1 {
  return critical ? seq(oid(id), boolean(true), octets(value)) : seq(oid(id), octets(value));
}

/**
 * KeyUsage BIT STRING (RFC 5280 4.2.1.3). AMD encodes it with one unused bit whatever is set (ARK 03 02 01 06,
 * ASK 03 02 01 04), although strict DER would drop every trailing zero bit of the ASK's value; we copy AMD.
 */
export function keyUsage(bits: { keyCertSign?: boolean; cRLSign?: boolean }): Uint8Array {
  // keyCertSign is bit 5 and cRLSign bit 6: in the first octet, MSB first, 0x04 and 0x02.
  const byte = (bits.keyCertSign ? 0x04 : 0) | (bits.cRLSign ? 0x02 : 0);
  return bitString(Uint8Array.of(byte), 1);
}

export function basicConstraints(pathLen?: number): Uint8Array {
  return pathLen === undefined ? seq(boolean(true)) : seq(boolean(true), int(pathLen));
}

/** CRLDistributionPoints with one fullName URI, as AMD's (RFC 5280 4.2.1.13). */
export function crlDistributionPoint(uri: string): Uint8Array {
  const uriName = implicitPrimitive(6, new Uint8Array(Buffer.from(uri, 'ascii')));
  // DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } }
  return seq(seq(explicit(0, [explicit(0, [uriName])])));
}

/** Key identifier method 1 of RFC 5280 4.2.1.2: SHA-1 of the subjectPublicKey bits (AMD uses it). */
export function keyIdentifier(publicKey: KeyObject): Uint8Array {
  return spkiKeyIdentifier(new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })));
}

export function subjectKeyIdentifier(publicKey: KeyObject): Uint8Array {
  return octets(keyIdentifier(publicKey));
}

export function authorityKeyIdentifier(issuerKey: KeyObject): Uint8Array {
  return seq(implicitPrimitive(0, keyIdentifier(issuerKey)));
}

/** RSASSA-PSS SHA-384 salt 48 signature, as AMD signs certificates and CRLs. */
export function signPss(data: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(
    sign('sha384', data, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }),
  );
}

/** Certificate / CertificateList ::= SEQUENCE { tbs, signatureAlgorithm, signatureValue BIT STRING }. */
export function signedStructure(tbs: Uint8Array, algorithm: Asn1, key: KeyObject): Uint8Array {
  return seq(tbs, algorithm, bitString(signPss(tbs, key)));
}
