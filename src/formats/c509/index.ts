/**
 * C509: CBOR-encoded X.509 certificates, certification requests and request templates
 * (draft-ietf-cose-cbor-encoded-cert-20; checked against draft-ietf-cose-c509-test-vectors-03).
 *
 * - {@link x509ToC509} / {@link c509ToX509}: DER X.509 v3 <-> C509 type 3, byte-exact both ways.
 * - {@link parseC509Certificate}: decode either type; {@link verifyC509Certificate}: check its signature.
 * - {@link signC509Certificate}: issue a natively signed (type 2) certificate.
 * - {@link x509CsrToC509} / {@link c509CsrToX509}, {@link parseC509Csr}, {@link verifyC509Csr} (including the
 *   RFC 6955 ECDH proof of possession), {@link signC509Csr}.
 * - {@link parseC509CsrTemplate} / {@link encodeC509CsrTemplate}.
 *
 * Every failure is an AttestationError: MalformedEvidence `c509.cbor.*` (non-deterministic or malformed CBOR),
 * `c509.der.*` (input not DER), `c509.cert.*`, `c509.csr.*`, `c509.name.*`, `c509.ext.*`, `c509.alg.*`,
 * `c509.key.*`, `c509.sig.*`, `c509.template.*`, `c509.not_canonical`; NotSupported `c509.alg_unsupported`
 * (SM2, SHAKE-based signatures, FRP256v1 keys), `c509.x509.*`, `c509.cert.native`, `c509.csr.native`;
 * SignatureInvalid `c509.signature.invalid`, `c509.signature.unsigned`; InvalidArgument `c509.key_mismatch`,
 * `c509.pop_requires_recipient`.
 */

export type { C509AlgorithmIdentifier, PublicKeyOptions } from './algorithms.js';
export {
  type CborDecodeOptions,
  type CborValue,
  decodeCbor,
  encodeCbor,
  encodeCborSequence,
  Tagged,
} from './cbor.js';
export {
  type C509Certificate,
  type C509CertificateFields,
  c509ToX509,
  encodeC509Certificate,
  parseC509Certificate,
  tbsCertificateDer,
  type X509ToC509Options,
  x509ToC509,
} from './certificate.js';
export {
  type C509Csr,
  type C509CsrFields,
  c509CsrToX509,
  certificationRequestInfoDer,
  csrAttribute,
  encodeC509Csr,
  parseC509Csr,
  x509CsrToC509,
} from './csr.js';
export { isCertificationRequest } from './der-input.js';
export { extensionsFromC509, extensionsToC509, type X509Extension, x509ExtensionsDer } from './extensions.js';
export { type C509PublicKey, c509KeyIdentifier, c509PublicKey, c509PublicKeyFromKeyObject } from './keys.js';
export { type C509Name, nameToC509, nameToDer, specialTextFromString, specialTextToString } from './name.js';
export { PK_ALGS, SIG_ALGS } from './registry.js';
export {
  type C509TbsCertificate,
  type C509TbsCsr,
  defaultSignatureAlgorithm,
  type SignOptions,
  signC509Certificate,
  signC509Csr,
} from './sign.js';
export {
  type C509CsrTemplate,
  type ExtensionTemplateEntry,
  encodeC509CsrTemplate,
  type NameTemplateEntry,
  parseC509CsrTemplate,
} from './template.js';
export {
  c509CertificateKey,
  c509CsrKey,
  type PopRecipient,
  type VerifyOptions,
  verifyC509Certificate,
  verifyC509Csr,
  verifyC509Signature,
} from './verify.js';
