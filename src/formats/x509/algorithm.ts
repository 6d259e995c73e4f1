import { MalformedEvidence } from '../../errors.js';
import {
  ctx,
  cursor,
  type DerReason,
  derFail,
  oid,
  parseOne,
  smallUint,
  Tag,
  type Tlv,
} from '../der/reader.js';

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL } (RFC 5280 §4.1.1.2). */
export interface AlgorithmIdentifier {
  readonly oid: string;
  /** The whole AlgorithmIdentifier element (what RFC 5280 §4.1.1.2 compares between TBS and outer copy). */
  readonly der: Uint8Array;
  /** The parameters element, when present. */
  readonly parameters?: Tlv;
}

export const AlgorithmOid = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  ecPublicKey: '1.2.840.10045.2.1',
  secp384r1: '1.3.132.0.34',
} as const;

/** Reads an AlgorithmIdentifier element. Throws MalformedEvidence `reason`. */
export function readAlgorithm(t: Tlv, reason: DerReason): AlgorithmIdentifier {
  const c = cursor(t, reason, Tag.Sequence);
  const id = oid(c.next(Tag.Oid, 'algorithm'), reason);
  const parameters = c.done ? undefined : c.any('parameters');
  c.end();
  return parameters ? { oid: id, der: t.raw, parameters } : { oid: id, der: t.raw };
}

/** RSASSA-PSS-params (RFC 4055 §3.1) with the defaults filled in. */
export interface RsaPssParams {
  readonly hash: string;
  readonly maskGen: string;
  readonly maskGenHash: string;
  readonly saltLength: number;
  readonly trailerField: number;
}

/** A digest AlgorithmIdentifier: parameters absent or NULL (RFC 4055 §2.1 allows both). */
function digestOid(t: Tlv, reason: DerReason): string {
  const a = readAlgorithm(t, reason);
  if (a.parameters && (a.parameters.tag !== Tag.Null || a.parameters.value.length !== 0)) {
    derFail(reason, 'structure', 'digest algorithm parameters must be absent or NULL');
  }
  return a.oid;
}

/**
 * The RSASSA-PSS parameters of an id-RSASSA-PSS AlgorithmIdentifier (RFC 4055 §3.1; absent fields take
 * their DEFAULT: SHA-1, MGF1 with SHA-1, salt 20, trailer 1). Throws MalformedEvidence `reason`.
 */
export function readRsaPssParams(alg: AlgorithmIdentifier, reason: DerReason): RsaPssParams {
  if (alg.oid !== AlgorithmOid.rsassaPss || !alg.parameters) {
    derFail(reason, 'structure', 'not an RSASSA-PSS AlgorithmIdentifier with parameters');
  }
  const p = cursor(alg.parameters, reason, Tag.Sequence);
  const h = p.optional(ctx(0));
  const hash = h ? digestOid(parseOne(h.value, reason, Tag.Sequence), reason) : AlgorithmOid.sha1;
  const m = p.optional(ctx(1));
  let maskGen: string = AlgorithmOid.mgf1;
  let maskGenHash: string = AlgorithmOid.sha1;
  if (m) {
    const mgf = readAlgorithm(parseOne(m.value, reason, Tag.Sequence), reason);
    if (!mgf.parameters) derFail(reason, 'structure', 'MGF without parameters');
    maskGen = mgf.oid;
    maskGenHash = digestOid(mgf.parameters, reason);
  }
  const s = p.optional(ctx(2));
  const saltLength = s ? smallUint(parseOne(s.value, reason, Tag.Integer), reason, 1 << 16) : 20;
  const t = p.optional(ctx(3));
  const trailerField = t ? smallUint(parseOne(t.value, reason, Tag.Integer), reason, 255) : 1;
  p.end();
  return { hash, maskGen, maskGenHash, saltLength, trailerField };
}

/**
 * Is this RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, trailer 1 — the only algorithm AMD uses for ARK,
 * ASK/ASVK and VCEK/VLEK signatures and CRLs (KDS 57230)? The parameters are read, not byte-compared: AMD's
 * ASKs encode the default trailer field explicitly, its VCEKs omit it. False (never a throw) otherwise.
 */
export function isRsaPssSha384(alg: AlgorithmIdentifier): boolean {
  try {
    const p = readRsaPssParams(alg, 'x509.algorithm');
    return (
      p.hash === AlgorithmOid.sha384 &&
      p.maskGen === AlgorithmOid.mgf1 &&
      p.maskGenHash === AlgorithmOid.sha384 &&
      p.saltLength === 48 &&
      p.trailerField === 1
    );
  } catch (e) {
    if (e instanceof MalformedEvidence) return false;
    throw e;
  }
}
