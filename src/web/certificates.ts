import { x509 } from '../ca/x509-lib.js';
import type { CborValue } from '../formats/c509/cbor.js';
import { parseC509Certificate } from '../formats/c509/certificate.js';
import { GCE_INSTANCE_IDENTITY_OID, parseInstanceIdentity } from '../formats/x509/instance-identity.js';
import type { CertificateRecord } from '../store/ca-types.js';
import { toHex } from '../util/bytes.js';

/** RFC 5280 §5.3.1 CRLReason names. */
const CRL_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  '',
  'removeFromCRL',
  'privilegeWithdrawn',
  'aACompromise',
];

const EXTENSION_NAMES: Readonly<Record<string, string>> = {
  '2.5.29.14': 'subjectKeyIdentifier',
  '2.5.29.15': 'keyUsage',
  '2.5.29.17': 'subjectAltName',
  '2.5.29.19': 'basicConstraints',
  '2.5.29.35': 'authorityKeyIdentifier',
  '2.5.29.37': 'extKeyUsage',
  '2.5.29.9': 'subjectDirectoryAttributes',
  '2.5.29.32': 'certificatePolicies',
  '1.3.6.1.5.5.7.1.1': 'authorityInfoAccess',
  [GCE_INSTANCE_IDENTITY_OID]: 'instanceIdentity',
};

/** The project a CA record belongs to (its identity's projectId), or null (CA certificates). */
export function certificateProject(r: CertificateRecord): string | null {
  const id = identityOf(r);
  return typeof id?.projectId === 'string' ? id.projectId : null;
}

function identityOf(r: CertificateRecord): Record<string, unknown> | undefined {
  if (!r.identityJson) return undefined;
  try {
    const v = JSON.parse(r.identityJson) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A CA record in the list: no certificate bytes. */
export function certificateSummary(r: CertificateRecord) {
  return {
    serial: r.serial,
    kind: r.kind,
    instanceId: r.instanceId,
    identity: identityOf(r) ?? null,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    issuedAt: r.issuedAt,
    revokedAt: r.revokedAt,
    revocationReason:
      r.revocationReason === null ? null : (CRL_REASONS[r.revocationReason] ?? String(r.revocationReason)),
    hasC509: r.c509 !== null,
  };
}

/**
 * One certificate decoded for the side-by-side view: the X.509 fields (the instance identity extension
 * decoded by the project's own parser, src/formats/x509/instance-identity.ts) and, when one was issued, the
 * C509 form's fields (draft-ietf-cose-cbor-encoded-cert; CBOR as JSON: byte strings hex, big integers as
 * decimal text, tags as `{tag, value}`), each with its size.
 */
export function certificateDetail(r: CertificateRecord) {
  const cert = new x509.X509Certificate(r.der);
  const extensions = cert.extensions.map((e) => {
    const value = new Uint8Array(e.value);
    let decoded: unknown = null;
    if (e.type === GCE_INSTANCE_IDENTITY_OID) {
      try {
        decoded = jsonOf(parseInstanceIdentity(value) as unknown as CborValue);
      } catch (err) {
        decoded = { error: err instanceof Error ? err.message : 'unreadable' };
      }
    }
    return {
      oid: e.type,
      name: EXTENSION_NAMES[e.type] ?? null,
      critical: e.critical,
      valueHex: toHex(value),
      decoded,
    };
  });
  let c509: unknown = null;
  if (r.c509) {
    try {
      const c = parseC509Certificate(r.c509);
      c509 = {
        bytes: r.c509.length,
        hex: toHex(r.c509),
        type: c.type,
        serialNumber: toHex(c.serialNumber),
        signatureAlgorithm: jsonOf(c.signatureAlgorithm as CborValue),
        issuer: jsonOf(c.issuer),
        notBefore: new Date(c.notBefore * 1000).toISOString(),
        notAfter: c.notAfter === null ? null : new Date(c.notAfter * 1000).toISOString(),
        subject: jsonOf(c.subject),
        subjectPublicKeyAlgorithm: jsonOf(c.subjectPublicKeyAlgorithm as CborValue),
        subjectPublicKey: jsonOf(c.subjectPublicKey),
        extensions: jsonOf(c.extensions),
      };
    } catch (err) {
      c509 = { error: err instanceof Error ? err.message : 'unreadable' };
    }
  }
  return {
    ...certificateSummary(r),
    x509: {
      bytes: r.der.length,
      pem: cert.toString('pem'),
      subject: cert.subject,
      issuer: cert.issuer,
      serialNumber: cert.serialNumber,
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      signatureAlgorithm: algorithmText(cert.signatureAlgorithm),
      publicKeyAlgorithm: cert.publicKey.algorithm.name,
      extensions,
    },
    c509,
  };
}

/** CBOR (and the identity's bigints) as JSON the browser can show. */
function jsonOf(v: unknown, depth = 0): unknown {
  if (depth > 16) return '…';
  if (v === undefined) return null;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return toHex(v);
  if (Array.isArray(v)) return v.map((x) => jsonOf(x, depth + 1));
  if (v instanceof Map) return [...v].map(([k, x]) => [jsonOf(k, depth + 1), jsonOf(x, depth + 1)]);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = jsonOf(x, depth + 1);
    return out;
  }
  return v;
}

function algorithmText(a: unknown): string {
  const v = a as { name?: unknown; hash?: { name?: unknown } };
  const name = typeof v.name === 'string' ? v.name : 'unknown';
  return typeof v.hash?.name === 'string' ? `${name} with ${v.hash.name}` : name;
}
