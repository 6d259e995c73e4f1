import { constants as cryptoConstants, type KeyObject, sign } from 'node:crypto';
import {
  bitString,
  type Der,
  explicit,
  integer,
  NULL,
  oid,
  printableString,
  sequence,
  setOf,
  time,
  utf8String,
} from '../../formats/der/writer.js';
import { AlgorithmOid } from '../../formats/x509/algorithm.js';
import { encodeExtensionList } from '../../formats/x509/extension-builders.js';
import { type Extension, OID } from '../../formats/x509/extensions.js';
import { NameOid } from '../../formats/x509/name.js';

/**
 * What makes the simulator's certificates and CRLs AMD-shaped (KDS spec 57230 and AMD's ARK/ASK/ASVK/VCEK/
 * VLEK in shared/vectors): AMD's RSASSA-PSS parameters, AMD's names, AMD's KeyUsage encoding and the
 * certificate layout. Everything generic comes from the project's DER writer (src/formats/der/writer.ts)
 * and X.509 extension builders (src/formats/x509/extension-builders.ts). The simulator exists to produce
 * evidence a verifier cannot tell apart from AMD's by shape, so these make no choice of their own where
 * AMD's bytes show one.
 */

/** InvalidArgument reason for a date the certificate cannot carry. */
const TIME_REASON = 'sim.snp.time';

/**
 * RSASSA-PSS AlgorithmIdentifier with SHA-384, MGF1-SHA-384, salt 48 (RFC 4055 section 3.1). AMD's ARK, ASK
 * and ASVK spell out the default trailerField [3] INTEGER 1; VCEKs and VLEKs issued since 2024 omit it
 * (older ones carried it too), so the caller chooses.
 */
export function pssAlgorithm(explicitTrailer: boolean): Der {
  const sha384 = sequence(oid(AlgorithmOid.sha384), NULL);
  const params = [
    explicit(0, sha384),
    explicit(1, sequence(oid(AlgorithmOid.mgf1), sequence(oid(AlgorithmOid.sha384), NULL))),
    explicit(2, integer(48)),
  ];
  if (explicitTrailer) params.push(explicit(3, integer(1)));
  return sequence(oid(AlgorithmOid.rsassaPss), sequence(...params));
}

/**
 * AMD's distinguished name, attribute by attribute in AMD's order: OU=Engineering, C=US, L=Santa Clara,
 * ST=CA, O=Advanced Micro Devices, CN=<cn>. Every value is a UTF8String except C (PrintableString), as in
 * AMD's certificates.
 */
export function amdName(cn: string): Der {
  const rdn = (type: string, value: Der) => setOf(sequence(oid(type), value));
  return sequence(
    rdn(NameOid.organizationalUnitName, utf8String('Engineering')),
    rdn(NameOid.countryName, printableString('US')),
    rdn(NameOid.localityName, utf8String('Santa Clara')),
    rdn(NameOid.stateOrProvinceName, utf8String('CA')),
    rdn(NameOid.organizationName, utf8String('Advanced Micro Devices')),
    rdn(NameOid.commonName, utf8String(cn)),
  );
}

/** Certificate and CRL times (RFC 5280 section 4.1.2.5; ARK/ASK validity reaches GeneralizedTime years). */
export const amdTime = (d: Date): Der => time(d, TIME_REASON);

/**
 * keyUsage (RFC 5280 4.2.1.3), critical, as AMD encodes it: one unused bit whatever is set (ARK 03 02 01 06,
 * ASK 03 02 01 04), although DER would drop every trailing zero bit of the ASK's value (03 02 02 04, what
 * the shared keyUsage builder writes). We copy AMD.
 */
export function amdKeyUsage(bits: { keyCertSign?: boolean; cRLSign?: boolean }): Extension {
  // keyCertSign is bit 5 and cRLSign bit 6: in the first octet, MSB first, 0x04 and 0x02.
  const byte = (bits.keyCertSign ? 0x04 : 0) | (bits.cRLSign ? 0x02 : 0);
  return { oid: OID.keyUsage, critical: true, value: bitString(Uint8Array.of(byte), 1) };
}

/** RSASSA-PSS SHA-384 salt 48 signature, as AMD signs certificates and CRLs. */
export function signPss(data: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(
    sign('sha384', data, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }),
  );
}

/** Certificate / CertificateList ::= SEQUENCE { tbs, signatureAlgorithm, signatureValue BIT STRING }. */
export function signedStructure(tbs: Uint8Array, algorithm: Der, key: KeyObject): Uint8Array {
  return sequence(tbs, algorithm, bitString(signPss(tbs, key)));
}

/** One AMD-shaped certificate: names, validity, the subject's key and the extensions in the order given. */
export interface AmdCertificateSpec {
  readonly serial: number;
  readonly issuerCn: string;
  readonly subjectCn: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectKey: KeyObject;
  readonly issuerKey: KeyObject;
  readonly extensions: readonly Extension[];
  /** AMD's CA certificates spell out the PSS trailerField; 2024+ leaves do not. */
  readonly explicitTrailer: boolean;
}

/** An X.509 v3 certificate laid out as AMD's, signed RSASSA-PSS SHA-384 by `issuerKey`. */
export function amdCertificate(c: AmdCertificateSpec): Uint8Array {
  const algorithm = pssAlgorithm(c.explicitTrailer);
  const tbs = sequence(
    explicit(0, integer(2)), // version v3
    integer(c.serial),
    algorithm,
    amdName(c.issuerCn),
    sequence(amdTime(c.notBefore), amdTime(c.notAfter)),
    amdName(c.subjectCn),
    new Uint8Array(c.subjectKey.export({ type: 'spki', format: 'der' })), // SubjectPublicKeyInfo, DER already
    explicit(3, encodeExtensionList(c.extensions)),
  );
  return signedStructure(tbs, algorithm, c.issuerKey);
}
