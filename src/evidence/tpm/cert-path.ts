import {
  createHash,
  createPublicKey,
  verify as cryptoVerify,
  type KeyObject,
  X509Certificate,
} from 'node:crypto';
import { ChainInvalid, InvalidArgument, MalformedEvidence } from '../../errors.js';
import {
  type Certificate,
  findExtension,
  isEmptyName,
  KeyUsage,
  OID,
  parseCertificate,
  subjectAltNameTags,
} from '../../formats/x509/certificate.js';
import { GCE_INSTANCE_IDENTITY_OID } from '../../formats/x509/instance-identity.js';
import { Lru } from './lru.js';

/**
 * X.509 certification path validation for TPM EK/AK certificates (RFC 5280 §6.1, the parts that apply to
 * a pinned-root PKI): signatures (node:crypto over the TBS bytes; SHA-1-signed certificates are refused), validity at the caller's `now` for every
 * certificate, CA constraints (basicConstraints cA, keyCertSign, pathLenConstraint), and rejection of any
 * critical extension it does not process. Not done: revocation (CRLs are the collateral layer's), name
 * constraints and certificate policies (a critical one makes the path fail), EKU nesting.
 *
 * TPM certificates have known quirks that are accepted on purpose:
 * - an empty subject with a **critical** SubjectAltName holding only a directoryName (TCG EK credential
 *   profile §3.2.9; Go's crypto/x509 rejects it, go-tpm-tools strips it first);
 * - an AK certificate carrying the EK extended key usage 2.23.133.8.1 (GCE) — EKU is not checked.
 */

interface Held {
  readonly cert: Certificate;
  readonly key: KeyObject;
  /** Signature checks of this certificate by a given issuer: pure facts about fixed bytes, memoised. */
  readonly signedBy: WeakMap<Held, boolean>;
}

function hold(der: Uint8Array, reason: string): Held {
  const cert = parseCertificate(der);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(cert.subjectPublicKeyInfo), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new MalformedEvidence(reason, 'the certificate public key cannot be loaded', { cause });
  }
  return { cert, key, signedBy: new WeakMap() };
}

/**
 * Certificate signature algorithms verified directly over the TBS bytes (RFC 4055 / RFC 5758 OIDs); SHA-1
 * is absent on purpose. RSASSA-PSS, whose parameters live in the AlgorithmIdentifier, goes to OpenSSL's
 * own certificate verification instead.
 */
const CERT_SIG_HASH: Readonly<Record<string, string>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, string>, {
    '1.2.840.113549.1.1.11': 'sha256',
    '1.2.840.113549.1.1.12': 'sha384',
    '1.2.840.113549.1.1.13': 'sha512',
    '1.2.840.10045.4.3.2': 'sha256',
    '1.2.840.10045.4.3.3': 'sha384',
    '1.2.840.10045.4.3.4': 'sha512',
  }),
);
const RSASSA_PSS = '1.2.840.113549.1.1.10';

/** Did `issuer` sign `child`? False (never a throw) for a wrong key, key type or unsupported algorithm. */
function signedBy(child: Certificate, issuer: KeyObject): boolean {
  try {
    const hash = CERT_SIG_HASH[child.signatureAlgorithm.oid];
    if (hash !== undefined) return cryptoVerify(hash, child.tbs, issuer, child.signatureValue);
    if (child.signatureAlgorithm.oid === RSASSA_PSS) return new X509Certificate(child.der).verify(issuer);
    return false;
  } catch {
    return false;
  }
}

/**
 * A set of pinned trust anchors plus known (untrusted) intermediates, parsed once and reused, and a bounded
 * cache of certificates seen in evidence (parsing and signature checks only; validity, CA rules and
 * critical extensions are re-checked on every call, since they depend on `now` and on the path).
 */
export interface TrustStore {
  readonly anchors: readonly Held[];
  readonly intermediates: readonly Held[];
  readonly seen: Lru<string, Held>;
}

/** How many evidence certificates a trust store remembers. */
const SEEN_MAX = 4096;

function holdSeen(store: TrustStore, der: Uint8Array): Held {
  const k = createHash('sha256').update(der).digest('base64');
  let h = store.seen.get(k);
  if (h === undefined) {
    h = hold(der, 'x509.certificate');
    store.seen.set(k, h);
  }
  return h;
}

function isSignedBy(child: Held, issuer: Held): boolean {
  let ok = child.signedBy.get(issuer);
  if (ok === undefined) {
    ok = signedBy(child.cert, issuer.key);
    child.signedBy.set(issuer, ok);
  }
  return ok;
}

/**
 * Builds a trust store. `roots` are trusted as given (pin them by fingerprint in configuration);
 * `intermediates` only help to build paths and must themselves chain to a root. Throws MalformedEvidence
 * `x509.certificate*` for an unparsable certificate, InvalidArgument `x509.trust.no_roots`.
 */
export function createTrustStore(
  roots: readonly Uint8Array[],
  intermediates: readonly Uint8Array[] = [],
): TrustStore {
  if (roots.length === 0)
    throw new InvalidArgument('x509.trust.no_roots', 'at least one root certificate is required');
  return {
    anchors: roots.map((d) => hold(d, 'x509.trust.root')),
    intermediates: intermediates.map((d) => hold(d, 'x509.trust.intermediate')),
    seen: new Lru(SEEN_MAX),
  };
}

export interface PathOptions {
  readonly now: Date;
  readonly trust: TrustStore;
  /** Extra untrusted intermediates that came with the evidence. */
  readonly intermediates?: readonly Uint8Array[];
  /** A keyUsage bit the leaf must have when it carries keyUsage (digitalSignature for an AK). */
  readonly leafKeyUsage: number;
  /** Critical extensions besides the RFC 5280 ones that the caller processes (e.g. the identity OID). */
  readonly handledCritical?: readonly string[];
}

export interface CertPath {
  /** Leaf first, trust anchor last. */
  readonly certificates: readonly Certificate[];
  readonly leafKey: KeyObject;
}

const MAX_DEPTH = 6;

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

function checkValidity(c: Certificate, now: Date, what: string): void {
  if (now.getTime() < c.notBefore.getTime()) {
    throw new ChainInvalid(
      'x509.chain.not_yet_valid',
      `${what} is not valid before ${c.notBefore.toISOString()}`,
    );
  }
  if (now.getTime() > c.notAfter.getTime()) {
    throw new ChainInvalid('x509.chain.expired', `${what} expired at ${c.notAfter.toISOString()}`);
  }
}

function checkCritical(c: Certificate, handled: ReadonlySet<string>, what: string): void {
  for (const e of c.extensions) {
    if (!e.critical || handled.has(e.oid)) continue;
    if (e.oid === OID.subjectAltName) {
      // TCG profile: empty subject ⇒ critical SAN; we accept it when it parses (names are not matched here).
      const tags = subjectAltNameTags(e);
      if (tags.length > 0) continue;
    }
    throw new ChainInvalid(
      'x509.chain.unhandled_critical_extension',
      `${what} has unhandled critical extension ${e.oid}`,
    );
  }
}

function checkCa(c: Certificate, belowNonSelfIssued: number, what: string): void {
  if (c.version < 3 || !c.basicConstraints?.ca) {
    throw new ChainInvalid('x509.chain.not_ca', `${what} is not a CA certificate (basicConstraints cA)`);
  }
  if (c.keyUsage && !c.keyUsage.has(KeyUsage.keyCertSign)) {
    throw new ChainInvalid('x509.chain.key_usage', `${what} lacks keyCertSign`);
  }
  const pathLen = c.basicConstraints.pathLen;
  if (pathLen !== undefined && belowNonSelfIssued > pathLen) {
    throw new ChainInvalid('x509.chain.path_length', `${what} allows ${pathLen} intermediates below it`);
  }
}

/**
 * Finds and validates a path from `leafDer` to one of the trust anchors. Throws ChainInvalid
 * `x509.chain.no_path` (no issuer whose signature verifies leads to a root), `.expired`, `.not_yet_valid`,
 * `.not_ca`, `.key_usage`, `.path_length`, `.leaf_key_usage`, `.unhandled_critical_extension`;
 * MalformedEvidence `x509.certificate*` for an unparsable certificate.
 */
export function verifyCertPath(leafDer: Uint8Array, opts: PathOptions): CertPath {
  const leaf = holdSeen(opts.trust, leafDer);
  const extra = (opts.intermediates ?? []).map((d) => holdSeen(opts.trust, d));
  const pool = [...opts.trust.intermediates, ...extra];
  const handled = new Set<string>([
    OID.basicConstraints,
    OID.keyUsage,
    OID.extKeyUsage,
    GCE_INSTANCE_IDENTITY_OID,
    ...(opts.handledCritical ?? []),
  ]);

  // Leaf checks first: they do not depend on which path is found.
  checkValidity(leaf.cert, opts.now, 'the leaf certificate');
  checkCritical(leaf.cert, handled, 'the leaf certificate');
  if (leaf.cert.keyUsage && !leaf.cert.keyUsage.has(opts.leafKeyUsage)) {
    throw new ChainInvalid(
      'x509.chain.leaf_key_usage',
      'the leaf certificate key usage does not allow its use',
    );
  }
  if (isEmptyName(leaf.cert.subject) && !findExtension(leaf.cert, OID.subjectAltName)?.critical) {
    throw new ChainInvalid(
      'x509.chain.subject',
      'an empty subject requires a critical subjectAltName (RFC 5280)',
    );
  }

  let firstError: ChainInvalid | undefined;
  const search = (path: Held[], nonSelfIssued: number): Held[] | undefined => {
    const child = path[path.length - 1]!;
    if (opts.trust.anchors.some((a) => equalBytes(a.cert.der, child.cert.der))) return path;
    if (path.length > MAX_DEPTH) return undefined;
    const candidates = [...opts.trust.anchors, ...pool].filter(
      (c) =>
        equalBytes(c.cert.subject, child.cert.issuer) &&
        !path.some((p) => equalBytes(p.cert.der, c.cert.der)),
    );
    for (const issuer of candidates) {
      if (!isSignedBy(child, issuer)) continue;
      const isAnchor = opts.trust.anchors.includes(issuer);
      const what = isAnchor ? 'the root certificate' : 'an intermediate certificate';
      try {
        checkValidity(issuer.cert, opts.now, what);
        checkCritical(issuer.cert, handled, what);
        checkCa(issuer.cert, nonSelfIssued, what);
      } catch (e) {
        if (e instanceof ChainInvalid) firstError ??= e;
        continue;
      }
      const selfIssued = equalBytes(issuer.cert.subject, issuer.cert.issuer);
      const found = search([...path, issuer], nonSelfIssued + (selfIssued || isAnchor ? 0 : 1));
      if (found) return found;
    }
    return undefined;
  };
  const path = search([leaf], 0);
  if (!path) {
    throw (
      firstError ?? new ChainInvalid('x509.chain.no_path', 'the certificate does not chain to a trusted root')
    );
  }
  return { certificates: path.map((h) => h.cert), leafKey: leaf.key };
}

/**
 * True when a certificate is self-issued and its signature verifies with its own key (a root, when the
 * operator trusts it). Throws MalformedEvidence `x509.certificate*` for an unparsable certificate.
 */
export function isSelfSigned(der: Uint8Array): boolean {
  const h = hold(der, 'x509.certificate');
  return equalBytes(h.cert.subject, h.cert.issuer) && signedBy(h.cert, h.key);
}
