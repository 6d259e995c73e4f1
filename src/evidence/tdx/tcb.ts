import { BindingMismatch } from '../../errors.js';
import type {
  IsvSvnLevel,
  TcbStatus,
  TdQeIdentity,
  TdxPlatformTcbLevel,
  TdxTcbInfo,
} from '../../formats/tdx/collateral-json.js';
import type { PckSgxExtension } from '../../formats/tdx/pck-extension.js';
import type { SgxReportBody, TdxReportBody } from '../../formats/tdx/quote.js';
import { bytesEqual, toHex } from '../../util/bytes.js';

/**
 * TCB evaluation of a TDX quote against verified collateral (Intel "TDX DCAP Quote Verification", TCB
 * Info v3 and TD QE Identity v2 matching; the same steps as go-tdx-guest's verify and Intel's QVL):
 * platform level from the PCK's SVNs and TEE_TCB_SVN, the TDX module identity TDX_%02X, the QE identity
 * level. The result is data (statuses and advisory IDs): the policy decides what passes. Mismatched
 * identities (FMSPC, PCE-ID, module signer, QE signer) are not a status but a refusal: BindingMismatch.
 */

/** A matched level's status; null status when no level matches (the TCB is below every published level). */
export interface TcbMatch {
  readonly status: TcbStatus | null;
  readonly advisoryIds: readonly string[];
  readonly tcbDate: string | null;
}

export interface TdxTcbEvaluation {
  /** The worst of the three statuses; `NoMatchingTcbLevel` when any evaluation found no level. */
  readonly status: TcbStatus | 'NoMatchingTcbLevel';
  /** Every advisory ID of the matched levels, sorted, without repeats. */
  readonly advisoryIds: readonly string[];
  readonly platform: TcbMatch;
  /** Null when the quote's module has major SVN 0 (TEE_TCB_SVN[1] = 0: no module identity applies). */
  readonly tdxModule: (TcbMatch & { readonly id: string }) | null;
  readonly qe: TcbMatch;
  readonly fmspc: string;
  readonly tcbEvaluationDataNumber: number;
}

/** Intel's statuses from best to worst (the order used to combine them). */
const RANK: Readonly<Record<TcbStatus, number>> = {
  UpToDate: 0,
  SWHardeningNeeded: 1,
  ConfigurationNeeded: 2,
  ConfigurationAndSWHardeningNeeded: 3,
  OutOfDate: 4,
  OutOfDateConfigurationNeeded: 5,
  Revoked: 6,
};

const NO_ADVISORIES: readonly string[] = Object.freeze([]);
const NONE: TcbMatch = { status: null, advisoryIds: NO_ADVISORIES, tcbDate: null };

function matchOf(
  l: { tcbStatus: TcbStatus; advisoryIds: readonly string[]; tcbDate: string } | undefined,
): TcbMatch {
  return l ? { status: l.tcbStatus, advisoryIds: l.advisoryIds, tcbDate: l.tcbDate } : NONE;
}

/** Whether `a` masked with `mask` equals `want` (byte by byte, without building the masked copy). */
function maskedEqual(a: Uint8Array, mask: Uint8Array, want: Uint8Array): boolean {
  if (a.length !== want.length) return false;
  for (let i = 0; i < a.length; i++) if ((a[i]! & (mask[i] ?? 0)) !== want[i]) return false;
  return true;
}

/** First platform level whose every SVN is <= the platform's (TCB Info v3 "tcbLevels" are ordered best first). */
export function matchPlatformLevel(
  levels: readonly TdxPlatformTcbLevel[],
  pck: PckSgxExtension,
  teeTcbSvn: Uint8Array,
): TdxPlatformTcbLevel | undefined {
  // With a module major SVN (TEE_TCB_SVN[1] > 0), bytes 0-1 are judged by the module identity instead.
  const from = teeTcbSvn[1]! > 0 ? 2 : 0;
  return levels.find(
    (l) =>
      l.sgxComponents.every((s, i) => pck.componentSvns[i]! >= s) &&
      pck.pceSvn >= l.pceSvn &&
      l.tdxComponents.every((s, i) => i < from || teeTcbSvn[i]! >= s),
  );
}

function matchIsvLevel(levels: readonly IsvSvnLevel[], isvSvn: number): IsvSvnLevel | undefined {
  return levels.find((l) => isvSvn >= l.isvSvn);
}

/**
 * Evaluates the TCB. Throws BindingMismatch `tdx.tcb.fmspc`, `tdx.tcb.pce_id`, `tdx.tcb.mr_signer_seam`,
 * `tdx.tcb.seam_attributes`, `tdx.tcb.module_identity`, `tdx.qe.identity`.
 */
export function evaluateTdxTcb(
  body: TdxReportBody,
  qeReport: SgxReportBody,
  pck: PckSgxExtension,
  tcbInfo: TdxTcbInfo,
  qeId: TdQeIdentity,
): TdxTcbEvaluation {
  // The TCB Info must be the one for this platform's family and PCE.
  if (!bytesEqual(pck.fmspc, tcbInfo.fmspc))
    throw new BindingMismatch(
      'tdx.tcb.fmspc',
      `PCK FMSPC ${toHex(pck.fmspc)} is not the TCB Info's ${toHex(tcbInfo.fmspc)}`,
    );
  if (!bytesEqual(pck.pceId, tcbInfo.pceId))
    throw new BindingMismatch('tdx.tcb.pce_id', `PCK PCE-ID ${toHex(pck.pceId)} is not the TCB Info's`);
  // The SEAM module must be Intel's: MRSIGNERSEAM and masked SEAM_ATTRIBUTES as tdxModule names them.
  const mod = tcbInfo.tdxModule;
  if (!bytesEqual(body.mrSignerSeam, mod.mrSigner))
    throw new BindingMismatch(
      'tdx.tcb.mr_signer_seam',
      'MRSIGNERSEAM is not the TCB Info tdxModule.mrsigner',
    );
  if (!maskedEqual(body.seamAttributes, mod.attributesMask, mod.attributes))
    throw new BindingMismatch(
      'tdx.tcb.seam_attributes',
      'SEAM_ATTRIBUTES do not match the TCB Info tdxModule',
    );

  const platformLevel = matchPlatformLevel(tcbInfo.tcbLevels, pck, body.teeTcbSvn);
  const platform = matchOf(platformLevel);

  let tdxModule: (TcbMatch & { id: string }) | null = null;
  const major = body.teeTcbSvn[1]!;
  if (major > 0) {
    const id = `TDX_${major.toString(16).toUpperCase().padStart(2, '0')}`;
    const ident = tcbInfo.tdxModuleIdentities.find((m) => m.id === id);
    if (!ident) throw new BindingMismatch('tdx.tcb.module_identity', `TCB Info has no module identity ${id}`);
    if (
      !bytesEqual(body.mrSignerSeam, ident.mrSigner) ||
      !maskedEqual(body.seamAttributes, ident.attributesMask, ident.attributes)
    )
      throw new BindingMismatch('tdx.tcb.module_identity', `the module does not match identity ${id}`);
    tdxModule = { id, ...matchOf(matchIsvLevel(ident.tcbLevels, body.teeTcbSvn[0]!)) };
  }

  // QE identity: masked MISCSELECT and ATTRIBUTES, MRSIGNER and ISVPRODID exact, then the ISVSVN level.
  const qeOk =
    (qeReport.miscSelect & qeId.miscSelectMask) >>> 0 === qeId.miscSelect &&
    maskedEqual(qeReport.attributes, qeId.attributesMask, qeId.attributes) &&
    bytesEqual(qeReport.mrSigner, qeId.mrSigner) &&
    qeReport.isvProdId === qeId.isvProdId;
  if (!qeOk) throw new BindingMismatch('tdx.qe.identity', 'the QE report does not match the TD QE Identity');
  const qe = matchOf(matchIsvLevel(qeId.tcbLevels, qeReport.isvSvn));

  const parts = [platform, qe, ...(tdxModule ? [tdxModule] : [])];
  let status: TdxTcbEvaluation['status'] = 'UpToDate';
  for (const p of parts) {
    if (p.status === null) status = 'NoMatchingTcbLevel';
    else if (status !== 'NoMatchingTcbLevel' && RANK[p.status] > RANK[status]) status = p.status;
  }
  const advisoryIds = parts.some((p) => p.advisoryIds.length > 0)
    ? [...new Set(parts.flatMap((p) => p.advisoryIds))].sort()
    : NO_ADVISORIES;
  return {
    status,
    advisoryIds,
    platform,
    tdxModule,
    qe,
    fmspc: toHex(pck.fmspc),
    tcbEvaluationDataNumber: tcbInfo.tcbEvaluationDataNumber,
  };
}
