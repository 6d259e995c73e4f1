import { createHash } from 'node:crypto';
import { MalformedEvidence, NotSupported } from '../../errors.js';
import { Reader } from '../reader.js';
import { algLabel, type CurveInfo, ECC_CURVES, TPM_ALG, TPMA_OBJECT_RESERVED } from './constants.js';
import { hashInfo, readHashAlg, readTpm2b, TPM2B_MAX, TpmWriter } from './marshal.js';

/**
 * TPMT_PUBLIC and TPM2B_PUBLIC (TPM 2.0 Library Part 2 rev 1.59 §12.2.4-§12.2.5) for RSA and ECC objects,
 * with their parameters (§12.2.3.5 TPMS_RSA_PARMS, §12.2.3.6 TPMS_ECC_PARMS), the symmetric definition
 * (§11.1.7 TPMT_SYM_DEF_OBJECT), schemes (§11.2.4/§11.2.5) and KDF (§11.2.3), and the object Name
 * (Part 1 §16: nameAlg ‖ H_nameAlg(TPMT_PUBLIC)).
 *
 * Selector-dependent layouts come from null-prototype tables: an id missing there is NotSupported (its
 * layout is unknown, so nothing after it can be read).
 */

/** TPMT_SYM_DEF_OBJECT. `algorithm` NULL means no symmetric key (keyBits and mode are then 0). */
export interface SymDefObject {
  readonly algorithm: number;
  readonly keyBits: number;
  readonly mode: number;
}

/** TPMT_RSA_SCHEME / TPMT_ECC_SCHEME / TPMT_KDF_SCHEME: `hashAlg` is NULL when the scheme has no hash. */
export interface AsymScheme {
  readonly scheme: number;
  readonly hashAlg: number;
  /** ECDAA only. */
  readonly count?: number;
}

export interface RsaParms {
  readonly symmetric: SymDefObject;
  readonly scheme: AsymScheme;
  readonly keyBits: number;
  /** As marshalled: 0 means the default 65537 (use {@link rsaExponent}). */
  readonly exponent: number;
}

export interface EccParms {
  readonly symmetric: SymDefObject;
  readonly scheme: AsymScheme;
  readonly curveId: number;
  readonly kdf: AsymScheme;
}

interface PublicCommon {
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Uint8Array;
}

export interface RsaPublic extends PublicCommon {
  readonly type: typeof TPM_ALG.RSA;
  readonly parameters: RsaParms;
  readonly unique: { readonly n: Uint8Array };
}

export interface EccPublic extends PublicCommon {
  readonly type: typeof TPM_ALG.ECC;
  readonly parameters: EccParms;
  readonly unique: { readonly x: Uint8Array; readonly y: Uint8Array };
}

/** A TPMT_PUBLIC's fields (what encoders take). */
export type TpmtPublic = RsaPublic | EccPublic;

/** A parsed TPMT_PUBLIC: the fields plus the exact bytes they came from (what the Name hashes). */
export type ParsedPublic = TpmtPublic & { readonly raw: Uint8Array };

type Layout = 'none' | 'hash' | 'hash+count' | 'keybits+mode';

function layouts(entries: readonly [number, Layout][]): Readonly<Record<number, Layout>> {
  const t: Record<number, Layout> = Object.create(null);
  for (const [id, l] of entries) t[id] = l;
  return Object.freeze(t);
}

/** TPMU_SYM_DETAILS for objects: AES, SM4, CAMELLIA carry keyBits and mode; XOR is not an object cipher. */
const SYM_OBJECT = layouts([
  [TPM_ALG.NULL, 'none'],
  [TPM_ALG.AES, 'keybits+mode'],
  [TPM_ALG.SM4, 'keybits+mode'],
  [TPM_ALG.CAMELLIA, 'keybits+mode'],
]);
/** TPMI_ALG_RSA_SCHEME (§11.2.4.1). */
const RSA_SCHEMES = layouts([
  [TPM_ALG.NULL, 'none'],
  [TPM_ALG.RSAES, 'none'],
  [TPM_ALG.RSASSA, 'hash'],
  [TPM_ALG.RSAPSS, 'hash'],
  [TPM_ALG.OAEP, 'hash'],
]);
/** TPMI_ALG_ECC_SCHEME (§11.2.5.4). */
const ECC_SCHEMES = layouts([
  [TPM_ALG.NULL, 'none'],
  [TPM_ALG.ECDSA, 'hash'],
  [TPM_ALG.ECDH, 'hash'],
  [TPM_ALG.ECSCHNORR, 'hash'],
  [TPM_ALG.SM2, 'hash'],
  [TPM_ALG.ECMQV, 'hash'],
  [TPM_ALG.ECDAA, 'hash+count'],
]);
/** TPMI_ALG_KDF (§9.32). */
const KDF_SCHEMES = layouts([
  [TPM_ALG.NULL, 'none'],
  [TPM_ALG.MGF1, 'hash'],
  [TPM_ALG.KDF1_SP800_56A, 'hash'],
  [TPM_ALG.KDF2, 'hash'],
  [TPM_ALG.KDF1_SP800_108, 'hash'],
]);
/** TPMI_ALG_SYM_MODE+ (§9.31). */
const SYM_MODES = layouts([
  [TPM_ALG.NULL, 'none'],
  [TPM_ALG.CTR, 'none'],
  [TPM_ALG.OFB, 'none'],
  [TPM_ALG.CBC, 'none'],
  [TPM_ALG.CFB, 'none'],
  [TPM_ALG.ECB, 'none'],
]);

function readSymDef(r: Reader): SymDefObject {
  const algorithm = r.u16be();
  const layout = SYM_OBJECT[algorithm];
  if (layout === undefined) {
    throw new NotSupported(
      'tpm.public.symmetric',
      `symmetric algorithm ${algLabel(algorithm)} is not supported`,
    );
  }
  if (layout === 'none') return { algorithm, keyBits: 0, mode: TPM_ALG.NULL };
  const keyBits = r.u16be();
  const mode = r.u16be();
  if (SYM_MODES[mode] === undefined) {
    throw new NotSupported('tpm.public.symmetric_mode', `symmetric mode ${algLabel(mode)} is not supported`);
  }
  return { algorithm, keyBits, mode };
}

function readScheme(r: Reader, table: Readonly<Record<number, Layout>>, reason: string): AsymScheme {
  const scheme = r.u16be();
  const layout = table[scheme];
  if (layout === undefined) {
    throw new NotSupported(reason, `${reason}: scheme ${algLabel(scheme)} is not supported`);
  }
  if (layout === 'none') return { scheme, hashAlg: TPM_ALG.NULL };
  const hashAlg = readHashAlg(r, `${reason}_hash`).id;
  if (layout === 'hash+count') return { scheme, hashAlg, count: r.u16be() };
  return { scheme, hashAlg };
}

/** Reads a TPMT_PUBLIC from the reader's position (used by TPM2B_PUBLIC and other containers). */
export function readPublic(r: Reader): ParsedPublic {
  const start = r.offset;
  const type = r.u16be();
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) {
    throw new NotSupported(
      'tpm.public.type',
      `object type ${algLabel(type)} is not supported (RSA and ECC are)`,
    );
  }
  const nameAlg = readHashAlg(r, 'tpm.public.name_alg').id;
  const objectAttributes = r.u32be();
  if ((objectAttributes & TPMA_OBJECT_RESERVED) !== 0) {
    throw new MalformedEvidence(
      'tpm.public.attributes',
      `objectAttributes 0x${objectAttributes.toString(16)} has reserved bits set`,
    );
  }
  const authPolicy = readTpm2b(r, TPM2B_MAX.digest, 'tpm.public.auth_policy');
  const common = { nameAlg, objectAttributes, authPolicy };
  if (type === TPM_ALG.RSA) {
    const symmetric = readSymDef(r);
    const scheme = readScheme(r, RSA_SCHEMES, 'tpm.public.rsa_scheme');
    const keyBits = r.u16be();
    const exponent = r.u32be();
    const n = readTpm2b(r, TPM2B_MAX.rsaKey, 'tpm.public.rsa_modulus');
    return {
      ...common,
      type,
      parameters: { symmetric, scheme, keyBits, exponent },
      unique: { n },
      raw: r.buf.subarray(start, r.offset),
    };
  }
  const symmetric = readSymDef(r);
  const scheme = readScheme(r, ECC_SCHEMES, 'tpm.public.ecc_scheme');
  const curveId = r.u16be();
  const kdf = readScheme(r, KDF_SCHEMES, 'tpm.public.kdf');
  const x = readTpm2b(r, TPM2B_MAX.eccParameter, 'tpm.public.ecc_point');
  const y = readTpm2b(r, TPM2B_MAX.eccParameter, 'tpm.public.ecc_point');
  return {
    ...common,
    type,
    parameters: { symmetric, scheme, curveId, kdf },
    unique: { x, y },
    raw: r.buf.subarray(start, r.offset),
  };
}

/**
 * Parses a bare TPMT_PUBLIC (go-tpm-tools' `ak_pub`). Throws MalformedEvidence `tpm.public.truncated`,
 * `.trailing_bytes`, `.attributes`, `.<field>` for oversized TPM2Bs; NotSupported `tpm.public.type`,
 * `.name_alg`, `.symmetric`, `.rsa_scheme`, `.ecc_scheme`, `.kdf` for algorithm ids without a known layout.
 */
export function parsePublic(bytes: Uint8Array): ParsedPublic {
  const r = new Reader(bytes, 'tpm.public');
  const p = readPublic(r);
  r.end();
  return p;
}

/**
 * Parses a TPM2B_PUBLIC (u16 size ‖ TPMT_PUBLIC; tpm2-tools' `-u key.pub`). The size must equal the
 * TPMT_PUBLIC's own length: MalformedEvidence `tpm.public.size` otherwise.
 */
export function parseTpm2bPublic(bytes: Uint8Array): ParsedPublic {
  const r = new Reader(bytes, 'tpm.public');
  const size = r.u16be();
  if (size === 0 || size > TPM2B_MAX.public || size !== r.remaining) {
    throw new MalformedEvidence(
      'tpm.public.size',
      `TPM2B_PUBLIC size ${size} but ${r.remaining} bytes follow`,
    );
  }
  const p = readPublic(r);
  r.end();
  return p;
}

function writeSymDef(w: TpmWriter, s: SymDefObject): void {
  w.u16(s.algorithm);
  if (s.algorithm !== TPM_ALG.NULL) w.u16(s.keyBits).u16(s.mode);
}

function writeScheme(
  w: TpmWriter,
  s: AsymScheme,
  table: Readonly<Record<number, Layout>>,
  reason: string,
): void {
  const layout = table[s.scheme];
  if (layout === undefined)
    throw new NotSupported(reason, `${reason}: scheme ${algLabel(s.scheme)} is not supported`);
  w.u16(s.scheme);
  if (layout === 'none') return;
  w.u16(s.hashAlg);
  if (layout === 'hash+count') w.u16(s.count ?? 0);
}

/** Encodes a TPMT_PUBLIC (no size prefix). Inverse of {@link parsePublic}. */
export function encodePublic(p: TpmtPublic): Uint8Array {
  const w = new TpmWriter().u16(p.type).u16(p.nameAlg).u32(p.objectAttributes).tpm2b(p.authPolicy);
  if (p.type === TPM_ALG.RSA) {
    const { symmetric, scheme, keyBits, exponent } = p.parameters;
    writeSymDef(w, symmetric);
    writeScheme(w, scheme, RSA_SCHEMES, 'tpm.public.rsa_scheme');
    w.u16(keyBits).u32(exponent).tpm2b(p.unique.n);
  } else {
    const { symmetric, scheme, curveId, kdf } = p.parameters;
    writeSymDef(w, symmetric);
    writeScheme(w, scheme, ECC_SCHEMES, 'tpm.public.ecc_scheme');
    w.u16(curveId);
    writeScheme(w, kdf, KDF_SCHEMES, 'tpm.public.kdf');
    w.tpm2b(p.unique.x).tpm2b(p.unique.y);
  }
  return w.finish();
}

/** Encodes a TPM2B_PUBLIC (u16 size ‖ TPMT_PUBLIC). */
export function encodeTpm2bPublic(p: TpmtPublic): Uint8Array {
  return new TpmWriter().tpm2b(encodePublic(p)).finish();
}

/** The RSA public exponent (0 on the wire means 65537, Part 2 §12.2.3.5). */
export function rsaExponent(p: RsaParms): number {
  return p.exponent === 0 ? 65537 : p.exponent;
}

/**
 * The object's Name: u16 nameAlg ‖ H_nameAlg(TPMT_PUBLIC) (Part 1 §16). For a parsed public area the hash
 * covers the exact bytes received. Throws NotSupported `tpm.name.hash` for a nameAlg node cannot compute.
 */
export function computeName(p: TpmtPublic | ParsedPublic): Uint8Array {
  const h = hashInfo(p.nameAlg, 'tpm.name.hash');
  const body = 'raw' in p ? p.raw : encodePublic(p);
  return new TpmWriter().u16(h.id).bytes(createHash(h.node).update(body).digest()).finish();
}

/** Curve metadata for an ECC public area: NotSupported `tpm.public.curve` for curves other than P-256/384/521. */
export function curveOf(p: EccParms): CurveInfo {
  const c = ECC_CURVES[p.curveId];
  if (c === undefined) {
    throw new NotSupported('tpm.public.curve', `ECC curve 0x${p.curveId.toString(16)} is not supported`);
  }
  return c;
}
