import { AttestationError, MalformedEvidence, SignatureInvalid } from '../errors.js';
import { csrSubjectDer, parseC509Csr } from '../formats/c509/csr.js';
import {
  c509CsrKey,
  c509CsrToX509,
  csrAttribute,
  extensionsFromC509,
  verifyC509Csr,
} from '../formats/c509/index.js';
import { checkDerTree, oidToString, parseOne, sequence, type Tlv } from '../formats/der/reader.js';
import { OID } from '../formats/x509/extensions.js';
import type { SanType } from './config.js';
import { x509 } from './x509-lib.js';

/**
 * Certification requests: PKCS#10 (RFC 2986, DER) and C509 (draft-ietf-cose-cbor-encoded-cert-20 §4, type
 * 3 re-encoded PKCS#10 or type 2 natively signed). The request's signature is its proof that the requester
 * holds the private key; it is checked here, before anything in the request is used. What the CA then
 * takes from it (subject, subjectAltName entries) is CA policy, applied by the caller.
 */

export interface RequestedName {
  readonly type: SanType | 'other';
  /** The GeneralName's DER, copied into the certificate unchanged when policy allows its type. */
  readonly der: Uint8Array;
}

export interface CertificationRequest {
  readonly format: 'pkcs10' | 'c509-type2' | 'c509-type3';
  /** DER SubjectPublicKeyInfo of the requested key. */
  readonly subjectPublicKeyInfo: Uint8Array;
  /** DER Name. */
  readonly subject: Uint8Array;
  /** GeneralNames of a requested subjectAltName extension (empty when none was requested). */
  readonly subjectAltNames: readonly RequestedName[];
}

/** Largest request accepted (a P-384/RSA-3072 request with a few names is well under 2 KiB). */
export const MAX_REQUEST_SIZE = 16 * 1024;

const SAN_TAGS: Readonly<Record<number, SanType>> = Object.freeze(
  Object.assign(Object.create(null), { 1: 'email', 2: 'dns', 6: 'uri', 7: 'ip' }),
);

/** Decodes `bytes` as one element and checks its whole tree is DER (@peculiar/x509 accepts some BER). */
function strictDer(bytes: Uint8Array, reason: string): Tlv {
  const top = parseOne(bytes, reason);
  checkDerTree(top, reason);
  return top;
}

function sanNames(extnValue: Uint8Array): RequestedName[] {
  const reason = 'ca.csr.subject_alt_name';
  return sequence(strictDer(extnValue, reason), reason).map((g) => {
    if ((g.tag & 0xc0) !== 0x80) throw new MalformedEvidence(reason, 'GeneralName must be context-tagged');
    // GeneralName is a CHOICE: its DER is copied as is.
    return { type: SAN_TAGS[g.tag & 0x1f] ?? 'other', der: g.raw };
  });
}

async function parsePkcs10(
  der: Uint8Array,
  format: CertificationRequest['format'],
): Promise<CertificationRequest> {
  let req: InstanceType<typeof x509.Pkcs10CertificateRequest>;
  try {
    // The strict DER check first: @peculiar/x509 accepts some BER.
    strictDer(der, 'ca.csr.malformed');
    req = new x509.Pkcs10CertificateRequest(Uint8Array.from(der).buffer);
  } catch (cause) {
    if (cause instanceof AttestationError) throw cause;
    throw new MalformedEvidence('ca.csr.malformed', 'not a PKCS#10 certification request', { cause });
  }
  let ok = false;
  try {
    ok = await req.verify();
  } catch {
    ok = false;
  }
  if (!ok)
    throw new SignatureInvalid('ca.csr.signature', 'the certification request signature does not verify');
  const san = req.extensions.find((e) => e.type === OID.subjectAltName);
  return {
    format,
    subjectPublicKeyInfo: new Uint8Array(req.publicKey.rawData),
    subject: new Uint8Array(req.subjectName.toArrayBuffer()),
    subjectAltNames: san ? sanNames(new Uint8Array(san.value)) : [],
  };
}

function parseNativeC509(bytes: Uint8Array): CertificationRequest {
  const csr = parseC509Csr(bytes);
  try {
    verifyC509Csr(csr);
  } catch (e) {
    if (e instanceof SignatureInvalid) {
      throw new SignatureInvalid('ca.csr.signature', 'the certification request signature does not verify');
    }
    throw e;
  }
  const key = c509CsrKey(csr);
  const requested = csrAttribute(csr, 0); // extensionRequest
  const exts = requested === undefined ? [] : extensionsFromC509(requested);
  const san = exts.find((e) => oidToString(e.oid) === OID.subjectAltName);
  return {
    format: 'c509-type2',
    subjectPublicKeyInfo: new Uint8Array(key.export({ type: 'spki', format: 'der' })),
    subject: csrSubjectDer(csr),
    subjectAltNames: san ? sanNames(san.value) : [],
  };
}

/**
 * Parses a certification request and verifies its signature. DER (first byte 0x30) is PKCS#10; anything
 * else is read as a C509 request. Throws MalformedEvidence `ca.csr.malformed`, `ca.csr.size`,
 * `ca.csr.subject_alt_name` and the C509 decoder's `c509.*` reasons; SignatureInvalid `ca.csr.signature`;
 * NotSupported `c509.alg_unsupported`.
 */
export async function parseCertificationRequest(bytes: Uint8Array): Promise<CertificationRequest> {
  if (bytes.length === 0 || bytes.length > MAX_REQUEST_SIZE) {
    throw new MalformedEvidence('ca.csr.size', `a request of ${bytes.length} bytes is out of range`);
  }
  if (bytes[0] === 0x30) return parsePkcs10(bytes, 'pkcs10');
  const csr = parseC509Csr(bytes);
  if (csr.type === 3) return parsePkcs10(c509CsrToX509(bytes), 'c509-type3');
  return parseNativeC509(bytes);
}
