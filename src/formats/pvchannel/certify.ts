import { MalformedEvidence } from '../../errors.js';
import { Reader, Writer } from '../reader.js';
import { DEFAULT_MAX_MESSAGE } from './constants.js';

/**
 * CERTIFY_EK (call 3) and CERTIFY_AK (call 4) payloads (docs/pvchannel.md §7.2). Both calls run in two
 * steps on the same call id: op NONCE (the CA's nonce, fetched through the VMM), then op CERTIFY (the SNP
 * report over SHA-512(nonce ‖ manifest), the manifest, and for CERTIFY_AK the AK's certification request).
 *
 * Byte layout, little-endian, as the rest of the channel (and not CBOR): the SVSM parses it in a no_std
 * kernel with fixed offsets, every length is explicit and bounded before anything is read, and there is
 * one encoding of each message (no canonical-form check needed, as CBOR maps and integer widths would):
 * ```
 * 0x0  u16  op          1 NONCE, 2 CERTIFY
 * 0x2  u16  format      CERTIFY: 0 X.509, 1 C509 (needs feature bit 5); NONCE: 0
 * 0x4  u16  fieldCount  exactly what the op and direction have (answers to CERTIFY: 2..MAX_CHAIN+1)
 * 0x6  u16  reserved    zero
 * 0x8  fieldCount × { u32 length, length bytes }   each length within its field's bound; nothing after
 * ```
 * | message | fields |
 * |---|---|
 * | NONCE request | none |
 * | NONCE answer | nonce (64) |
 * | CERTIFY_EK request | nonce (64), report (1184), certTable (0..16 KiB), manifest (1..64 KiB) |
 * | CERTIFY_AK request | as CERTIFY_EK, then csr (1..16 KiB) |
 * | CERTIFY answer | certificate (1..16 KiB, in `format`), then the CA chain, X.509 DER, issuer first (1..MAX_CHAIN) |
 */

export const CertifyOp = { Nonce: 1, Certify: 2 } as const;
export type CertifyOp = (typeof CertifyOp)[keyof typeof CertifyOp];

export const CertFormat = { X509: 0, C509: 1 } as const;
export type CertFormat = (typeof CertFormat)[keyof typeof CertFormat];

/** The SVSM_ATTEST nonce size (AMD 58019): what the CA issues. */
export const CERTIFY_NONCE_SIZE = 64;
/** An SEV-SNP ATTESTATION_REPORT (AMD 56860 Table 22). */
export const SNP_REPORT_SIZE = 0x4a0;
/** Bounds of the variable fields. */
export const CERTIFY_BOUNDS = {
  certTable: 16 * 1024,
  manifest: 64 * 1024,
  csr: 16 * 1024,
  certificate: 16 * 1024,
} as const;
/** Most CA certificates an answer carries (the issuing CA and its issuers). */
export const MAX_CHAIN = 4;

const HEADER = 8;

export interface CertifyEkRequest {
  readonly nonce: Uint8Array;
  readonly report: Uint8Array;
  /** Empty when the SVSM has no certificate table (the CA then uses its AMD KDS). */
  readonly certTable: Uint8Array;
  readonly manifest: Uint8Array;
}

export interface CertifyAkRequest extends CertifyEkRequest {
  /** A C509 or PKCS#10 request for the manifest's AK. */
  readonly csr: Uint8Array;
}

export type CertifyRequest =
  | { readonly op: typeof CertifyOp.Nonce }
  | { readonly op: typeof CertifyOp.Certify; readonly format: CertFormat; readonly body: CertifyAkRequest };

export type CertifyAnswer =
  | { readonly op: typeof CertifyOp.Nonce; readonly nonce: Uint8Array }
  | {
      readonly op: typeof CertifyOp.Certify;
      readonly format: CertFormat;
      readonly certificate: Uint8Array;
      /** X.509 DER, the issuing CA first. */
      readonly chain: readonly Uint8Array[];
    };

type Bound = readonly [min: number, max: number];

function encode(op: number, format: number, fields: readonly Uint8Array[]): Uint8Array {
  const size = HEADER + fields.reduce((n, f) => n + 4 + f.length, 0);
  const w = new Writer(size).u16le(op).u16le(format).u16le(fields.length).u16le(0);
  for (const f of fields) w.u32le(f.length).bytes(f);
  return w.buf;
}

function decodeHeader(b: Uint8Array, what: string): { r: Reader; op: number; format: number; count: number } {
  if (b.length > DEFAULT_MAX_MESSAGE) throw new MalformedEvidence(`${what}.size`, `${what}: too large`);
  const r = new Reader(b, what);
  const op = r.at(0).u16le();
  const format = r.u16le();
  const count = r.u16le();
  r.mbz(2, '0x6');
  if (op !== CertifyOp.Nonce && op !== CertifyOp.Certify) {
    throw new MalformedEvidence(`${what}.op`, `${what}: unknown op ${op}`);
  }
  if (format !== CertFormat.X509 && format !== CertFormat.C509) {
    throw new MalformedEvidence(`${what}.format`, `${what}: unknown format ${format}`);
  }
  if (op === CertifyOp.Nonce && format !== 0) {
    throw new MalformedEvidence(`${what}.format`, `${what}: NONCE carries a format`);
  }
  return { r, op, format, count };
}

function readFields(
  r: Reader,
  what: string,
  names: readonly string[],
  bounds: readonly Bound[],
): Uint8Array[] {
  const out = names.map((name, i) => {
    const n = r.u32le();
    const [min, max] = bounds[i]!;
    // The length is checked against the field's bound before it is used, never trusted to size anything.
    if (n < min || n > max) {
      throw new MalformedEvidence(`${what}.${name}`, `${what}: ${name} of ${n} bytes is out of range`);
    }
    return r.bytes(n).slice();
  });
  r.end();
  return out;
}

function expectCount(count: number, want: number, what: string): void {
  if (count !== want)
    throw new MalformedEvidence(`${what}.field_count`, `${what}: ${count} fields, not ${want}`);
}

const REQUEST_FIELDS = ['nonce', 'report', 'cert_table', 'manifest', 'csr'] as const;
const REQUEST_BOUNDS: readonly Bound[] = [
  [CERTIFY_NONCE_SIZE, CERTIFY_NONCE_SIZE],
  [SNP_REPORT_SIZE, SNP_REPORT_SIZE],
  [0, CERTIFY_BOUNDS.certTable],
  [1, CERTIFY_BOUNDS.manifest],
  [1, CERTIFY_BOUNDS.csr],
];

/** Encodes a NONCE request (both calls). */
export function encodeNonceRequest(): Uint8Array {
  return encode(CertifyOp.Nonce, 0, []);
}

/** Encodes a CERTIFY_EK CERTIFY request. */
export function encodeCertifyEkRequest(format: CertFormat, q: CertifyEkRequest): Uint8Array {
  return encode(CertifyOp.Certify, format, [q.nonce, q.report, q.certTable, q.manifest]);
}

/** Encodes a CERTIFY_AK CERTIFY request. */
export function encodeCertifyAkRequest(format: CertFormat, q: CertifyAkRequest): Uint8Array {
  return encode(CertifyOp.Certify, format, [q.nonce, q.report, q.certTable, q.manifest, q.csr]);
}

/**
 * Decodes a CERTIFY_EK (`ak` false) or CERTIFY_AK (`ak` true) request, as the device reads it from the guest.
 * Throws MalformedEvidence `pvchannel.certify_ek.*` / `pvchannel.certify_ak.*`. A CERTIFY_EK request has
 * an empty `csr`.
 */
export function decodeCertifyRequest(b: Uint8Array, ak: boolean): CertifyRequest {
  const what = ak ? 'pvchannel.certify_ak' : 'pvchannel.certify_ek';
  const { r, op, format, count } = decodeHeader(b, what);
  if (op === CertifyOp.Nonce) {
    expectCount(count, 0, what);
    r.end();
    return { op: CertifyOp.Nonce };
  }
  const n = ak ? 5 : 4;
  expectCount(count, n, what);
  const f = readFields(r, what, REQUEST_FIELDS.slice(0, n), REQUEST_BOUNDS.slice(0, n));
  return {
    op: CertifyOp.Certify,
    format: format as CertFormat,
    body: { nonce: f[0]!, report: f[1]!, certTable: f[2]!, manifest: f[3]!, csr: f[4] ?? new Uint8Array(0) },
  };
}

/** Encodes a NONCE answer. */
export function encodeNonceAnswer(nonce: Uint8Array): Uint8Array {
  return encode(CertifyOp.Nonce, 0, [nonce]);
}

/** Encodes a CERTIFY answer: the certificate in `format`, then the CA chain (X.509 DER). */
export function encodeCertifyAnswer(
  format: CertFormat,
  certificate: Uint8Array,
  chain: readonly Uint8Array[],
): Uint8Array {
  return encode(CertifyOp.Certify, format, [certificate, ...chain]);
}

/**
 * Decodes an answer to either call, as the guest reads it from a VMM it does not trust (the certificate is
 * then verified against the CA it pinned; this only bounds the bytes). `expect` is the op the guest sent.
 * Throws MalformedEvidence `pvchannel.certify_answer.*`.
 */
export function decodeCertifyAnswer(b: Uint8Array, expect: CertifyOp): CertifyAnswer {
  const what = 'pvchannel.certify_answer';
  const { r, op, format, count } = decodeHeader(b, what);
  if (op !== expect) throw new MalformedEvidence(`${what}.op`, `${what}: answer to another op`);
  if (op === CertifyOp.Nonce) {
    expectCount(count, 1, what);
    const [nonce] = readFields(r, what, ['nonce'], [[CERTIFY_NONCE_SIZE, CERTIFY_NONCE_SIZE]]);
    return { op: CertifyOp.Nonce, nonce: nonce! };
  }
  if (count < 2 || count > MAX_CHAIN + 1) {
    throw new MalformedEvidence(`${what}.field_count`, `${what}: ${count} fields`);
  }
  const names = ['certificate', ...Array.from({ length: count - 1 }, (_, i) => `chain_${i}`)];
  const bounds = names.map((): Bound => [1, CERTIFY_BOUNDS.certificate]);
  const [certificate, ...chain] = readFields(r, what, names, bounds);
  return { op: CertifyOp.Certify, format: format as CertFormat, certificate: certificate!, chain };
}
