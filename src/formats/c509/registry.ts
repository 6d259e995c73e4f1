import { toHex } from '../../util/bytes.js';
import { oidContentFromString } from '../der/writer.js';

/**
 * The C509 IANA registries of draft-ietf-cose-cbor-encoded-cert-20 §8 (C509 RDN Attributes, CR Attributes,
 * Extensions, Certificate Policies, Policy Qualifiers, Information Access, Extended Key Usages, General Names,
 * Signature Algorithms, Public Key Algorithms), as null-prototype tables keyed both ways.
 *
 * Extension 24 (subjectDirectoryAttributes) is in -20 and in its test vectors (draft-ietf-cose-c509-test-vectors-03
 * §3.10); a later editor's copy removed it, so it is kept here for the -20 vectors.
 */

/** How a signature algorithm is checked with node:crypto (or why it cannot be). */
export type SigScheme =
  | { kind: 'ecdsa'; hash: 'sha1' | 'sha256' | 'sha384' | 'sha512' }
  | { kind: 'ecdsa-unsupported'; why: string } // fixed-length r||s encoding, but no node:crypto verifier
  | { kind: 'eddsa'; keyType: 'ed25519' | 'ed448' }
  | { kind: 'rsa-pkcs1'; hash: 'sha1' | 'sha256' | 'sha384' | 'sha512' }
  | { kind: 'rsa-pss'; hash: 'sha256' | 'sha384' | 'sha512'; saltLength: number }
  | { kind: 'unsupported'; why: string }
  | { kind: 'unsigned' }
  | { kind: 'pop-hmac'; hash: 'sha256' | 'sha384' | 'sha512' };

export interface SigAlg {
  readonly value: number;
  readonly name: string;
  /** DER of the whole AlgorithmIdentifier, as in the registry's DER column. */
  readonly der: Uint8Array;
  readonly scheme: SigScheme;
}

export type PkScheme =
  | { kind: 'rsa' }
  | { kind: 'ec'; curve: string; size: number; nodeCurve: string | null }
  | { kind: 'raw'; keyType: 'x25519' | 'x448' | 'ed25519' | 'ed448' };

export interface PkAlg {
  readonly value: number;
  readonly name: string;
  readonly der: Uint8Array;
  readonly scheme: PkScheme;
}

function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

function table<T extends { value: number; der: Uint8Array }>(
  rows: T[],
): {
  byValue: Record<number, T>;
  byDer: Record<string, T>;
} {
  const byValue: Record<number, T> = Object.create(null);
  const byDer: Record<string, T> = Object.create(null);
  for (const r of rows) {
    byValue[r.value] = r;
    byDer[toHex(r.der)] = r;
  }
  return { byValue, byDer };
}

const PSS = (h: string, s: string) =>
  hex(
    `3041 0609 2A864886F70D01010A 3034 A00F 300D 0609 60864801650304020${h} 0500 A11C 301A 0609 2A864886F70D010108 300D 0609 60864801650304020${h} 0500 A203 0201 ${s}`,
  );

export const SIG_ALGS = table<SigAlg>([
  {
    value: -256,
    name: 'sha1WithRSAEncryption',
    der: hex('300D06092A864886F70D0101050500'),
    scheme: { kind: 'rsa-pkcs1', hash: 'sha1' },
  },
  {
    value: -255,
    name: 'ecdsa-with-SHA1',
    der: hex('300906072A8648CE3D0401'),
    scheme: { kind: 'ecdsa', hash: 'sha1' },
  },
  {
    value: 0,
    name: 'ecdsa-with-SHA256',
    der: hex('300A06082A8648CE3D040302'),
    scheme: { kind: 'ecdsa', hash: 'sha256' },
  },
  {
    value: 1,
    name: 'ecdsa-with-SHA384',
    der: hex('300A06082A8648CE3D040303'),
    scheme: { kind: 'ecdsa', hash: 'sha384' },
  },
  {
    value: 2,
    name: 'ecdsa-with-SHA512',
    der: hex('300A06082A8648CE3D040304'),
    scheme: { kind: 'ecdsa', hash: 'sha512' },
  },
  {
    value: 3,
    name: 'id-ecdsa-with-shake128',
    der: hex('300A06082B06010505070620'),
    scheme: {
      kind: 'ecdsa-unsupported',
      why: 'ECDSA with SHAKE128 (RFC 8692 256-bit output) has no node:crypto verifier',
    },
  },
  {
    value: 4,
    name: 'id-ecdsa-with-shake256',
    der: hex('300A06082B06010505070621'),
    scheme: {
      kind: 'ecdsa-unsupported',
      why: 'ECDSA with SHAKE256 (RFC 8692 512-bit output) has no node:crypto verifier',
    },
  },
  { value: 5, name: 'id-alg-unsigned', der: hex('300A06082B06010505070624'), scheme: { kind: 'unsigned' } },
  {
    value: 8,
    name: 'sm2-with-sm3',
    der: hex('300A06082A811CCF55018375'),
    scheme: {
      kind: 'ecdsa-unsupported',
      why: 'SM2 signatures (with the SM2 ZA prefix) are not offered by node:crypto',
    },
  },
  { value: 12, name: 'Ed25519', der: hex('300506032B6570'), scheme: { kind: 'eddsa', keyType: 'ed25519' } },
  { value: 13, name: 'Ed448', der: hex('300506032B6571'), scheme: { kind: 'eddsa', keyType: 'ed448' } },
  {
    value: 14,
    name: 'sa-ecdhPop-sha256-hmac-sha256',
    der: hex('300A06082B0601050507061A'),
    scheme: { kind: 'pop-hmac', hash: 'sha256' },
  },
  {
    value: 15,
    name: 'sa-ecdhPop-sha384-hmac-sha384',
    der: hex('300A06082B0601050507061B'),
    scheme: { kind: 'pop-hmac', hash: 'sha384' },
  },
  {
    value: 16,
    name: 'sa-ecdhPop-sha512-hmac-sha512',
    der: hex('300A06082B0601050507061C'),
    scheme: { kind: 'pop-hmac', hash: 'sha512' },
  },
  {
    value: 23,
    name: 'sha256WithRSAEncryption',
    der: hex('300D06092A864886F70D01010B0500'),
    scheme: { kind: 'rsa-pkcs1', hash: 'sha256' },
  },
  {
    value: 24,
    name: 'sha384WithRSAEncryption',
    der: hex('300D06092A864886F70D01010C0500'),
    scheme: { kind: 'rsa-pkcs1', hash: 'sha384' },
  },
  {
    value: 25,
    name: 'sha512WithRSAEncryption',
    der: hex('300D06092A864886F70D01010D0500'),
    scheme: { kind: 'rsa-pkcs1', hash: 'sha512' },
  },
  {
    value: 26,
    name: 'rsassa-pss-sha256',
    der: PSS('1', '20'),
    scheme: { kind: 'rsa-pss', hash: 'sha256', saltLength: 32 },
  },
  {
    value: 27,
    name: 'rsassa-pss-sha384',
    der: PSS('2', '30'),
    scheme: { kind: 'rsa-pss', hash: 'sha384', saltLength: 48 },
  },
  {
    value: 28,
    name: 'rsassa-pss-sha512',
    der: PSS('3', '40'),
    scheme: { kind: 'rsa-pss', hash: 'sha512', saltLength: 64 },
  },
  {
    value: 29,
    name: 'id-RSASSA-PSS-SHAKE128',
    der: hex('300A06082B0601050507061E'),
    scheme: {
      kind: 'unsupported',
      why: 'RSASSA-PSS with SHAKE128 (RFC 8692, SHAKE as MGF) has no node:crypto verifier',
    },
  },
  {
    value: 30,
    name: 'id-RSASSA-PSS-SHAKE256',
    der: hex('300A06082B0601050507061F'),
    scheme: {
      kind: 'unsupported',
      why: 'RSASSA-PSS with SHAKE256 (RFC 8692, SHAKE as MGF) has no node:crypto verifier',
    },
  },
]);

const EC = (curveOidDer: string) => hex(`06072A8648CE3D0201${curveOidDer}`);
const ecAlg = (curveOidDer: string) => {
  const body = EC(curveOidDer);
  return new Uint8Array([0x30, body.length, ...body]);
};

export const PK_ALGS = table<PkAlg>([
  { value: 0, name: 'rsaEncryption', der: hex('300D06092A864886F70D0101010500'), scheme: { kind: 'rsa' } },
  {
    value: 1,
    name: 'secp256r1',
    der: ecAlg('06082A8648CE3D030107'),
    scheme: { kind: 'ec', curve: 'secp256r1', size: 32, nodeCurve: 'prime256v1' },
  },
  {
    value: 2,
    name: 'secp384r1',
    der: ecAlg('06052B81040022'),
    scheme: { kind: 'ec', curve: 'secp384r1', size: 48, nodeCurve: 'secp384r1' },
  },
  {
    value: 3,
    name: 'secp521r1',
    der: ecAlg('06052B81040023'),
    scheme: { kind: 'ec', curve: 'secp521r1', size: 66, nodeCurve: 'secp521r1' },
  },
  {
    value: 6,
    name: 'sm2p256v1',
    der: ecAlg('06082A811CCF5501822D'),
    scheme: { kind: 'ec', curve: 'sm2p256v1', size: 32, nodeCurve: 'SM2' },
  },
  { value: 8, name: 'X25519', der: hex('300506032B656E'), scheme: { kind: 'raw', keyType: 'x25519' } },
  { value: 9, name: 'X448', der: hex('300506032B656F'), scheme: { kind: 'raw', keyType: 'x448' } },
  { value: 12, name: 'Ed25519', der: hex('300506032B6570'), scheme: { kind: 'raw', keyType: 'ed25519' } },
  { value: 13, name: 'Ed448', der: hex('300506032B6571'), scheme: { kind: 'raw', keyType: 'ed448' } },
  {
    value: 24,
    name: 'brainpoolP256r1',
    der: ecAlg('06092B2403030208010107'),
    scheme: { kind: 'ec', curve: 'brainpoolP256r1', size: 32, nodeCurve: 'brainpoolP256r1' },
  },
  {
    value: 25,
    name: 'brainpoolP384r1',
    der: ecAlg('06092B240303020801010B'),
    scheme: { kind: 'ec', curve: 'brainpoolP384r1', size: 48, nodeCurve: 'brainpoolP384r1' },
  },
  {
    value: 26,
    name: 'brainpoolP512r1',
    der: ecAlg('06092B240303020801010D'),
    scheme: { kind: 'ec', curve: 'brainpoolP512r1', size: 64, nodeCurve: 'brainpoolP512r1' },
  },
  {
    value: 27,
    name: 'FRP256v1',
    der: ecAlg('060A2A817A01815F65820001'),
    scheme: { kind: 'ec', curve: 'FRP256v1', size: 32, nodeCurve: null },
  },
]);

/** An int <-> OID registry (dotted OIDs converted once to content octets, looked up by their hex). */
export interface OidRegistry<E extends object = object> {
  readonly byValue: Record<number, { value: number; oid: Uint8Array; name: string } & E>;
  readonly byOid: Record<string, { value: number; name: string } & E>;
}

function oids<E extends object = object>(rows: [number, string, string, E?][]): OidRegistry<E> {
  const byValue: Record<number, { value: number; oid: Uint8Array; name: string } & E> = Object.create(null);
  const byOid: Record<string, { value: number; name: string } & E> = Object.create(null);
  for (const [value, oid, name, extra] of rows) {
    const content = oidContentFromString(oid, 'c509.oid');
    byValue[value] = { value, oid: content, name, ...(extra as E) };
    byOid[toHex(content)] = { value, name, ...(extra as E) };
  }
  return { byValue, byOid };
}

/** C509 RDN Attributes (§8.6). `ia5Only`: values are always IA5String, so the int is never negative. */
export const RDN_ATTRIBUTES = oids<{ ia5Only: boolean }>([
  [0, '1.2.840.113549.1.9.1', 'emailAddress', { ia5Only: true }],
  [1, '2.5.4.3', 'commonName', { ia5Only: false }],
  [2, '2.5.4.4', 'surname', { ia5Only: false }],
  [3, '2.5.4.5', 'serialNumber', { ia5Only: false }],
  [4, '2.5.4.6', 'countryName', { ia5Only: false }],
  [5, '2.5.4.7', 'localityName', { ia5Only: false }],
  [6, '2.5.4.8', 'stateOrProvinceName', { ia5Only: false }],
  [7, '2.5.4.9', 'streetAddress', { ia5Only: false }],
  [8, '2.5.4.10', 'organizationName', { ia5Only: false }],
  [9, '2.5.4.11', 'organizationalUnitName', { ia5Only: false }],
  [10, '2.5.4.12', 'title', { ia5Only: false }],
  [11, '2.5.4.15', 'businessCategory', { ia5Only: false }],
  [12, '2.5.4.17', 'postalCode', { ia5Only: false }],
  [13, '2.5.4.42', 'givenName', { ia5Only: false }],
  [14, '2.5.4.43', 'initials', { ia5Only: false }],
  [15, '2.5.4.44', 'generationQualifier', { ia5Only: false }],
  [16, '2.5.4.46', 'dnQualifier', { ia5Only: false }],
  [17, '2.5.4.65', 'pseudonym', { ia5Only: false }],
  [18, '2.5.4.97', 'organizationIdentifier', { ia5Only: false }],
  [19, '1.3.6.1.4.1.311.60.2.1.1', 'jurisdictionLocalityName', { ia5Only: false }],
  [20, '1.3.6.1.4.1.311.60.2.1.2', 'jurisdictionStateOrProvinceName', { ia5Only: false }],
  [21, '1.3.6.1.4.1.311.60.2.1.3', 'jurisdictionCountryName', { ia5Only: false }],
  [22, '0.9.2342.19200300.100.1.25', 'domainComponent', { ia5Only: true }],
  [25, '2.5.4.41', 'name', { ia5Only: false }],
  [26, '2.5.4.20', 'telephoneNumber', { ia5Only: false }],
  [27, '2.5.4.54', 'dmdName', { ia5Only: false }],
  [28, '0.9.2342.19200300.100.1.1', 'uid', { ia5Only: false }],
  [29, '1.2.840.113549.1.9.2', 'unstructuredName', { ia5Only: false }],
  [30, '1.2.840.113549.1.9.8', 'unstructuredAddress', { ia5Only: false }],
]);

/** C509 CR Attributes (§8.7). */
export const CR_ATTRIBUTES = oids([
  [0, '1.2.840.113549.1.9.14', 'extensionRequest'],
  [1, '1.2.840.113549.1.9.7', 'challengePassword'],
  [2, '1.3.6.1.4.1.22112.2.1', 'privateKeyPossessionStatement'],
]);

/** C509 Extensions (§8.8). */
export const EXTENSIONS = oids([
  [1, '2.5.29.14', 'subjectKeyIdentifier'],
  [2, '2.5.29.15', 'keyUsage'],
  [3, '2.5.29.17', 'subjectAltName'],
  [4, '2.5.29.19', 'basicConstraints'],
  [5, '2.5.29.31', 'cRLDistributionPoints'],
  [6, '2.5.29.32', 'certificatePolicies'],
  [7, '2.5.29.35', 'authorityKeyIdentifier'],
  [8, '2.5.29.37', 'extKeyUsage'],
  [9, '1.3.6.1.5.5.7.1.1', 'authorityInfoAccess'],
  [24, '2.5.29.9', 'subjectDirectoryAttributes'],
  [25, '2.5.29.18', 'issuerAltName'],
  [26, '2.5.29.30', 'nameConstraints'],
  [27, '2.5.29.33', 'policyMappings'],
  [28, '2.5.29.36', 'policyConstraints'],
  [29, '2.5.29.46', 'freshestCRL'],
  [30, '2.5.29.54', 'inhibitAnyPolicy'],
  [31, '1.3.6.1.5.5.7.1.11', 'subjectInfoAccess'],
  [32, '1.3.6.1.5.5.7.1.7', 'id-pe-ipAddrBlocks'],
  [33, '1.3.6.1.5.5.7.1.8', 'id-pe-autonomousSysIds'],
  [34, '1.3.6.1.5.5.7.1.28', 'id-pe-ipAddrBlocks-v2'],
  [35, '1.3.6.1.5.5.7.1.29', 'id-pe-autonomousSysIds-v2'],
  [36, '1.3.6.1.5.5.7.48.1.5', 'id-pkix-ocsp-nocheck'],
  [38, '1.3.6.1.5.5.7.1.24', 'id-pe-tlsfeature'],
]);

/** C509 Certificate Policies (§8.9). */
export const CERTIFICATE_POLICIES = oids([
  [0, '2.5.29.32.0', 'anyPolicy'],
  [1, '2.23.140.1.2.1', 'domain-validated'],
  [2, '2.23.140.1.2.2', 'organization-validated'],
  [3, '2.23.140.1.2.3', 'individual-validated'],
  [4, '2.23.140.1.1', 'ev-guidelines'],
  [7, '1.3.6.1.5.5.7.14.2', 'id-cp-ipAddr-asNumber'],
  [8, '1.3.6.1.5.5.7.14.3', 'id-cp-ipAddr-asNumber-v2'],
  [24, '2.23.146.1.2.1.0', 'id-rspRole-ci'],
  [25, '2.23.146.1.2.1.1', 'id-rspRole-euicc-v2'],
  [26, '2.23.146.1.2.1.0.0.0.0.0', 'id-rspRole-euicc'],
  [27, '2.23.146.1.2.1.2', 'id-rspRole-eum-v2'],
  [28, '2.23.146.1.2.1.0.0.0', 'id-rspRole-eum'],
  [29, '2.23.146.1.2.1.3', 'id-rspRole-dp-tls-v2'],
  [30, '2.23.146.1.2.1.0.0.1.0', 'id-rspRole-dp-tls'],
  [31, '2.23.146.1.2.1.4', 'id-rspRole-dp-auth-v2'],
  [32, '2.23.146.1.2.1.0.0.1.1', 'id-rspRole-dp-auth'],
  [33, '2.23.146.1.2.1.5', 'id-rspRole-dp-pb-v2'],
  [34, '2.23.146.1.2.1.0.0.1.2', 'id-rspRole-dp-pb'],
  [35, '2.23.146.1.2.1.6', 'id-rspRole-ds-tls-v2'],
  [36, '2.23.146.1.2.1.0.0.2.0', 'id-rspRole-ds-tls'],
  [37, '2.23.146.1.2.1.7', 'id-rspRole-ds-auth-v2'],
  [38, '2.23.146.1.2.1.0.0.2.1', 'id-rspRole-ds-auth'],
]);

/** C509 Policies Qualifiers (§8.10). */
export const POLICY_QUALIFIERS = oids([
  [1, '1.3.6.1.5.5.7.2.1', 'id-qt-cps'],
  [2, '1.3.6.1.5.5.7.2.2', 'id-qt-unotice'],
]);

/** C509 Information Access (§8.11). */
export const INFORMATION_ACCESS = oids([
  [1, '1.3.6.1.5.5.7.48.1', 'id-ad-ocsp'],
  [2, '1.3.6.1.5.5.7.48.2', 'id-ad-caIssuers'],
  [3, '1.3.6.1.5.5.7.48.3', 'id-ad-timeStamping'],
  [5, '1.3.6.1.5.5.7.48.5', 'id-ad-caRepository'],
  [10, '1.3.6.1.5.5.7.48.10', 'id-ad-rpkiManifest'],
  [11, '1.3.6.1.5.5.7.48.11', 'id-ad-signedObject'],
  [13, '1.3.6.1.5.5.7.48.13', 'id-ad-rpkiNotify'],
]);

/** C509 Extended Key Usages (§8.12). */
export const EXTENDED_KEY_USAGES = oids([
  [0, '2.5.29.37.0', 'anyExtendedKeyUsage'],
  [1, '1.3.6.1.5.5.7.3.1', 'id-kp-serverAuth'],
  [2, '1.3.6.1.5.5.7.3.2', 'id-kp-clientAuth'],
  [3, '1.3.6.1.5.5.7.3.3', 'id-kp-codeSigning'],
  [4, '1.3.6.1.5.5.7.3.4', 'id-kp-emailProtection'],
  [8, '1.3.6.1.5.5.7.3.8', 'id-kp-timeStamping'],
  [9, '1.3.6.1.5.5.7.3.9', 'id-kp-OCSPSigning'],
  [10, '1.3.6.1.5.2.3.4', 'id-pkinit-KPClientAuth'],
  [11, '1.3.6.1.5.2.3.5', 'id-pkinit-KPKdc'],
  [12, '1.3.6.1.5.5.7.3.21', 'id-kp-secureShellClient'],
  [13, '1.3.6.1.5.5.7.3.22', 'id-kp-secureShellServer'],
  [14, '1.3.6.1.5.5.7.3.35', 'id-kp-bundleSecurity'],
  [15, '1.3.6.1.5.5.7.3.27', 'id-kp-cmcCA'],
  [16, '1.3.6.1.5.5.7.3.28', 'id-kp-cmcRA'],
  [17, '1.3.6.1.5.5.7.3.29', 'id-kp-cmcArchive'],
  [18, '1.3.6.1.5.5.7.3.32', 'id-kp-cmKGA'],
  [20, '1.3.6.1.4.1.45605.1', 'id-kp-wisun-fan-device'],
]);

/** otherName type-ids with their own C509 General Names value (§8.13, negative values). */
export const OTHER_NAMES = oids([
  [-3, '1.3.6.1.5.5.7.8.12', 'id-on-MACAddress'],
  [-2, '1.3.6.1.5.5.7.8.9', 'id-on-SmtpUTF8Mailbox'],
  [-1, '1.3.6.1.5.5.7.8.4', 'id-on-hardwareModuleName'],
]);

/** Looks up a registry entry by OID content octets. */
export function lookupOid<E extends object>(
  reg: OidRegistry<E>,
  oid: Uint8Array,
): ({ value: number; name: string } & E) | undefined {
  return reg.byOid[toHex(oid)];
}
