import type { TdxReportBody } from '../../formats/tdx/quote.js';
import { toHex } from '../../util/bytes.js';
import type { EvidenceClaims } from '../types.js';
import type { TdxTcbEvaluation } from './tcb.js';
import type { TdxVerified } from './verify.js';

/** TD_ATTRIBUTES bit 0: the TD is debuggable (the host can read its memory). Intel TDX Module ABI, TDINFO. */
export const TD_ATTRIBUTES_DEBUG = 1n;

/** Every TDX claim, JSON-friendly (byte fields as lower-case hex). */
export interface TdxClaims {
  readonly quoteVersion: number;
  readonly bodyKind: 'td1.0' | 'td1.5';
  readonly qeVendorId: string;
  readonly qeSvn: number;
  readonly pceSvn: number;
  readonly teeTcbSvn: string;
  readonly mrSeam: string;
  readonly mrSignerSeam: string;
  readonly seamAttributes: string;
  readonly tdAttributes: string;
  readonly xfam: string;
  readonly mrTd: string;
  /** The identity-bearing field: the host sets it at launch, the TD cannot change it. */
  readonly mrConfigId: string;
  readonly mrOwner: string;
  readonly mrOwnerConfig: string;
  readonly rtmrs: readonly string[];
  readonly reportData: string;
  readonly teeTcbSvn2?: string;
  readonly mrServiceTd?: string;
  readonly qe: { readonly isvSvn: number; readonly isvProdId: number; readonly mrSigner: string };
  readonly fmspc: string;
  readonly pceId: string;
  readonly tcb: TdxTcbEvaluation;
  readonly revocationChecked: boolean;
}

/** An 8-byte little-endian attribute field as a bigint. */
export function attributesOf(b: Uint8Array): bigint {
  return Buffer.from(b).readBigUInt64LE(0);
}

/** The body fields as JSON claims. */
export function tdxBodyClaims(b: TdxReportBody) {
  return {
    bodyKind: b.kind,
    teeTcbSvn: toHex(b.teeTcbSvn),
    mrSeam: toHex(b.mrSeam),
    mrSignerSeam: toHex(b.mrSignerSeam),
    seamAttributes: toHex(b.seamAttributes),
    tdAttributes: toHex(b.tdAttributes),
    xfam: toHex(b.xfam),
    mrTd: toHex(b.mrTd),
    mrConfigId: toHex(b.mrConfigId),
    mrOwner: toHex(b.mrOwner),
    mrOwnerConfig: toHex(b.mrOwnerConfig),
    rtmrs: b.rtmrs.map(toHex),
    reportData: toHex(b.reportData),
    ...(b.teeTcbSvn2 ? { teeTcbSvn2: toHex(b.teeTcbSvn2) } : {}),
    ...(b.mrServiceTd ? { mrServiceTd: toHex(b.mrServiceTd) } : {}),
  };
}

/** The full claim set of a verified quote. */
export function toTdxClaims(v: TdxVerified): TdxClaims {
  const q = v.quote;
  return {
    quoteVersion: q.header.version,
    qeVendorId: toHex(q.header.qeVendorId),
    qeSvn: q.header.qeSvn,
    pceSvn: q.header.pceSvn,
    ...tdxBodyClaims(q.body),
    qe: { isvSvn: q.qeReport.isvSvn, isvProdId: q.qeReport.isvProdId, mrSigner: toHex(q.qeReport.mrSigner) },
    fmspc: toHex(v.pck.fmspc),
    pceId: toHex(v.pck.pceId),
    tcb: v.tcb,
    revocationChecked: v.revocationChecked,
  };
}

/**
 * The TEE-independent claims (src/evidence/types.ts): measurements MRTD and RTMR0-3, identity MRCONFIGID
 * (what the broker will name an instance by), launch id MRTD with the RTMRs as the contract describes,
 * REPORTDATA, the TCB status, debug = TD_ATTRIBUTES bit 0. Every byte field is a private copy.
 */
export function toTdxEvidenceClaims(v: TdxVerified): EvidenceClaims<TdxClaims> {
  const b = v.quote.body;
  const c = (x: Uint8Array) => Uint8Array.from(x);
  const launch = new Uint8Array(48 * 5);
  launch.set(b.mrTd, 0);
  for (const [i, r] of b.rtmrs.entries()) launch.set(r, 48 * (i + 1));
  return {
    tee: 'tdx',
    measurements: {
      mrTd: c(b.mrTd),
      rtmr0: c(b.rtmrs[0]),
      rtmr1: c(b.rtmrs[1]),
      rtmr2: c(b.rtmrs[2]),
      rtmr3: c(b.rtmrs[3]),
    },
    identityField: { name: 'MRCONFIGID', value: c(b.mrConfigId) },
    launchId: { name: 'MRTD||RTMR0..3', value: launch },
    reportData: c(b.reportData),
    tcb: {
      status: v.tcb.status,
      teeTcbSvn: toHex(b.teeTcbSvn),
      fmspc: v.tcb.fmspc,
      tcbEvaluationDataNumber: v.tcb.tcbEvaluationDataNumber,
      advisoryIds: v.tcb.advisoryIds.join(','),
    },
    debug: (attributesOf(b.tdAttributes) & TD_ATTRIBUTES_DEBUG) !== 0n,
    evidenceDigest: v.evidenceDigest,
    details: toTdxClaims(v),
  };
}
