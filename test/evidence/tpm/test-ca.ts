import 'reflect-metadata';
import { type KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * A test-only certificate authority (@peculiar/x509 over node's WebCrypto): roots, intermediates and
 * leaf certificates for arbitrary public keys, with the knobs the path-validation tests need.
 */

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
export const T0 = new Date('2025-01-01T00:00:00Z');

export interface TestCa {
  readonly der: Uint8Array;
  readonly name: string;
  readonly keys: CryptoKeyPair;
}

export interface IssueOptions {
  readonly subject: string;
  /** CA certificate when set: basicConstraints cA (critical) with this path length (null: none). */
  readonly ca?: { pathLength?: number };
  readonly keyUsage?: number;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly extensions?: readonly { oid: string; critical: boolean; value: Uint8Array }[];
  /** Leave basicConstraints out entirely (for "not a CA" tests). */
  readonly noBasicConstraints?: boolean;
}

function extensionsFor(o: IssueOptions): x509.Extension[] {
  const out: x509.Extension[] = [];
  if (!o.noBasicConstraints) {
    out.push(new x509.BasicConstraintsExtension(o.ca !== undefined, o.ca?.pathLength, true));
  }
  const ku =
    o.keyUsage ??
    (o.ca
      ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
      : x509.KeyUsageFlags.digitalSignature);
  out.push(new x509.KeyUsagesExtension(ku, true));
  for (const e of o.extensions ?? []) out.push(new x509.Extension(e.oid, e.critical, e.value));
  return out;
}

export async function makeRoot(subject = 'CN=Test TPM Root', o: Partial<IssueOptions> = {}): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: subject,
    keys,
    signingAlgorithm: SIGN,
    notBefore: o.notBefore ?? new Date(T0.getTime() - 365 * DAY),
    notAfter: o.notAfter ?? new Date(T0.getTime() + 3650 * DAY),
    extensions: extensionsFor({ subject, ca: {}, ...o }),
  });
  return { der: new Uint8Array(cert.rawData), name: subject, keys };
}

/** Issues a certificate for a fresh key pair (returned, so the result can issue in turn). */
export async function issueCa(issuer: TestCa, o: IssueOptions): Promise<TestCa> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const spki = new Uint8Array(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  return { der: await sign(issuer, o, spki), name: o.subject, keys };
}

/** Issues a leaf certificate for an existing public key (an AK or EK): DER. */
export async function issueLeaf(issuer: TestCa, o: IssueOptions, publicKey: KeyObject): Promise<Uint8Array> {
  return sign(issuer, o, new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })));
}

async function sign(issuer: TestCa, o: IssueOptions, spki: Uint8Array): Promise<Uint8Array> {
  const cert = await x509.X509CertificateGenerator.create({
    subject: o.subject,
    issuer: issuer.name,
    publicKey: spki,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: SIGN,
    notBefore: o.notBefore ?? new Date(T0.getTime() - 30 * DAY),
    notAfter: o.notAfter ?? new Date(T0.getTime() + 365 * DAY),
    extensions: extensionsFor(o),
  });
  return new Uint8Array(cert.rawData);
}

export { x509 };
