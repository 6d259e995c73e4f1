import { MalformedEvidence, NotSupported } from '../../errors.js';
import { checkOidContent } from '../der/reader.js';
import { type C509AlgorithmIdentifier, checkAlgId } from './algorithms.js';
import { type CborValue, decodeCbor, encodeCbor, isArray, isBytes, isInt, isUint } from './cbor.js';
import { C509_DER } from './der-input.js';
import { isSpecialText, specialTextToString } from './name.js';

/**
 * C509 Certification Request Templates (draft-ietf-cose-cbor-encoded-cert-20 §4.4), template type 0:
 *
 *   [ c509CertificationRequestTemplateType, c509CertificationRequestType: [+ int] / undefined,
 *     subjectSignatureAlgorithm: [+ AlgorithmIdentifier] / undefined, subject: NameTemplate / undefined,
 *     subjectPublicKeyAlgorithm: [+ AlgorithmIdentifier] / undefined, subjectPublicKey: undefined,
 *     extensionsRequest: ExtensionsTemplate / undefined ]
 *
 * `undefined` (0xf7) marks a field the client fills in; this is the only C509 structure that allows it.
 */

export interface NameTemplateEntry {
  /** A C509 RDN attribute int (non-negative) or OID content octets. */
  readonly attributeType: number | Uint8Array;
  readonly minOccurs: number;
  readonly maxOccurs: number;
  /** The value the server expects, or undefined for "client chooses". */
  readonly value: CborValue | undefined;
}

export interface ExtensionTemplateEntry {
  /** A C509 extension int (non-negative) or OID content octets. */
  readonly extensionId: number | Uint8Array;
  readonly optional: boolean;
  readonly value: CborValue | undefined;
}

export interface C509CsrTemplate {
  readonly templateType: 0;
  readonly requestTypes: readonly number[] | undefined;
  readonly signatureAlgorithms: readonly C509AlgorithmIdentifier[] | undefined;
  readonly subject: readonly NameTemplateEntry[] | undefined;
  readonly publicKeyAlgorithms: readonly C509AlgorithmIdentifier[] | undefined;
  readonly extensions: readonly ExtensionTemplateEntry[] | undefined;
}

function bad(message: string): never {
  throw new MalformedEvidence('c509.template.shape', message);
}

function smallUint(v: CborValue, what: string): number {
  if (!isUint(v) || typeof v !== 'number') bad(`${what} must be a small unsigned integer`);
  return v as number;
}

function algList(v: CborValue, what: string): C509AlgorithmIdentifier[] | undefined {
  if (v === undefined) return undefined;
  if (!isArray(v) || v.length === 0) bad(`${what} must be a non-empty array or undefined`);
  for (const a of v) checkAlgId(a, what);
  return v;
}

function typeOrOid(v: CborValue, what: string): number | Uint8Array {
  if (isBytes(v)) {
    checkOidContent(v, C509_DER);
    return v;
  }
  return smallUint(v, what); // §4.4: negative attributeType / extensionID are not allowed
}

/**
 * Decodes a C509CertificationRequestTemplate. Throws MalformedEvidence `c509.cbor.*`, `c509.template.shape`;
 * NotSupported `c509.template.type` for template types other than 0.
 */
export function parseC509CsrTemplate(bytes: Uint8Array): C509CsrTemplate {
  const v = decodeCbor(bytes, { allowUndefined: true });
  if (!isArray(v) || v.length !== 7) bad('a C509 request template is an array of 7 elements');
  const [tt, types, sigAlgs, subject, pkAlgs, pk, exts] = v as CborValue[];
  if (tt !== 0) {
    if (!isInt(tt!)) bad('c509CertificationRequestTemplateType must be an int');
    throw new NotSupported('c509.template.type', `request template type ${tt} is not supported (0 is)`);
  }
  let requestTypes: number[] | undefined;
  if (types !== undefined) {
    if (!isArray(types!) || types.length === 0)
      bad('c509CertificationRequestType must be a non-empty array or undefined');
    requestTypes = types.map((t) => {
      if (!isInt(t) || typeof t !== 'number') bad('c509CertificationRequestType entries must be ints');
      return t as number;
    });
  }
  let subjectT: NameTemplateEntry[] | undefined;
  if (subject !== undefined) {
    if (!isArray(subject!) || subject.length % 4 !== 0) bad('NameTemplate must be groups of 4');
    subjectT = [];
    for (let i = 0; i < subject.length; i += 4) {
      const attributeType = typeOrOid(subject[i]!, 'attributeType');
      const minOccurs = smallUint(subject[i + 1]!, 'minOccurs');
      const maxOccurs = smallUint(subject[i + 2]!, 'maxOccurs');
      if (maxOccurs < minOccurs || maxOccurs === 0)
        bad('maxOccurs must be positive and not less than minOccurs');
      const value = subject[i + 3];
      if (value !== undefined) {
        if (isBytes(attributeType) && !isBytes(value)) bad('an OID attribute template value must be bytes');
        if (!isBytes(attributeType)) {
          if (!isSpecialText(value)) bad('attribute template value must be a SpecialText');
          specialTextToString(value, 'attribute template value');
        }
      }
      subjectT.push({ attributeType, minOccurs, maxOccurs, value });
    }
  }
  if (pk !== undefined) bad('subjectPublicKey is always undefined in a template');
  let extsT: ExtensionTemplateEntry[] | undefined;
  if (exts !== undefined) {
    if (!isArray(exts!) || exts.length % 3 !== 0) bad('ExtensionsTemplate must be groups of 3');
    extsT = [];
    for (let i = 0; i < exts.length; i += 3) {
      const extensionId = typeOrOid(exts[i]!, 'extensionID');
      const optional = exts[i + 1];
      if (typeof optional !== 'boolean') bad('optional must be a bool');
      const value = exts[i + 2];
      if (isBytes(extensionId) && value !== undefined && !isBytes(value))
        bad('an OID extension template value must be bytes');
      extsT.push({ extensionId, optional: optional as boolean, value });
    }
  }
  return {
    templateType: 0,
    requestTypes,
    signatureAlgorithms: algList(sigAlgs!, 'subjectSignatureAlgorithm'),
    subject: subjectT,
    publicKeyAlgorithms: algList(pkAlgs!, 'subjectPublicKeyAlgorithm'),
    extensions: extsT,
  };
}

/** Deterministic CBOR of a request template (the inverse of {@link parseC509CsrTemplate}). */
export function encodeC509CsrTemplate(t: C509CsrTemplate): Uint8Array {
  return encodeCbor([
    t.templateType,
    t.requestTypes === undefined ? undefined : [...t.requestTypes],
    t.signatureAlgorithms === undefined ? undefined : [...t.signatureAlgorithms],
    t.subject === undefined
      ? undefined
      : t.subject.flatMap((e) => [e.attributeType, e.minOccurs, e.maxOccurs, e.value]),
    t.publicKeyAlgorithms === undefined ? undefined : [...t.publicKeyAlgorithms],
    undefined,
    t.extensions === undefined
      ? undefined
      : t.extensions.flatMap((e) => [e.extensionId, e.optional, e.value]),
  ]);
}
