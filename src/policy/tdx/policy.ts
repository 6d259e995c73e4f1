import { InvalidArgument, type PolicyFailure } from '../../errors.js';
import { attributesOf, TD_ATTRIBUTES_DEBUG, type TdxVerified } from '../../evidence/tdx/index.js';
import { TCB_STATUSES } from '../../formats/tdx/collateral-json.js';
import { ctEqual, fromHex, toHex } from '../../util/bytes.js';
import { shown } from '../../util/shown.js';

/**
 * TDX appraisal policy (the rules of go-tdx-guest's validate.TdxQuote, reference snp-tdx.md §B), with the
 * SNP policy's rules (src/policy/snp): every failure is listed; an unset rule takes a safe default; a rule
 * that places no constraint must say `'any'`, and is reported as not checked.
 * Defaults: MRTD must be given (an allow-list or `'any'`); debug refused; reserved TD_ATTRIBUTES bits
 * refused; XFAM must have bits 0-1 and none outside 0x6DBE7; SEAM_ATTRIBUTES zero; TCB status UpToDate only.
 */
export interface TdxPolicy {
  readonly mrTd: readonly Uint8Array[] | 'any';
  readonly rtmrs: readonly (Uint8Array | 'any')[];
  readonly mrConfigId: Uint8Array | 'any';
  readonly mrOwner: Uint8Array | 'any';
  readonly mrOwnerConfig: Uint8Array | 'any';
  readonly reportData: Uint8Array | 'any';
  readonly allowDebug: boolean;
  readonly minTeeTcbSvn: Uint8Array | 'any';
  readonly minQeSvn: number;
  readonly minPceSvn: number;
  /** TCB statuses accepted; `SWHardeningNeeded` and the like only when named. Revoked never. */
  readonly tcbStatuses: readonly string[];
}

/** TD_ATTRIBUTES bits a TD may have: DEBUG (0), SEPT_VE_DISABLE (28), PKS (30), PERFMON (63). */
export const TD_ATTRIBUTES_KNOWN = (1n << 0n) | (1n << 28n) | (1n << 30n) | (1n << 63n);
/** XFAM bits a TD may enable (go-tdx-guest: 0x6DBE7), and those it must (x87, SSE). */
export const XFAM_ALLOWED = 0x6dbe7n;
export const XFAM_REQUIRED = 0x3n;

const fail = (m: string): never => {
  throw new InvalidArgument('policy.invalid', m);
};

function hexOrAny(
  v: unknown,
  name: string,
  bytes: number,
  dflt: 'any' | undefined = 'any',
): Uint8Array | 'any' {
  if (v === undefined && dflt) return dflt;
  if (v === 'any') return 'any';
  const b = typeof v === 'string' ? fromHex(v) : undefined;
  if (!b || b.length !== bytes) fail(`${name} is ${bytes} bytes of hex or 'any'`);
  return b as Uint8Array;
}

/** Validates a TDX policy document. Throws InvalidArgument `policy.invalid`. */
export function parseTdxPolicy(doc: unknown): TdxPolicy {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('a TDX policy is an object');
  const d = doc as Record<string, unknown>;
  const known = [
    'mrTd',
    'rtmrs',
    'mrConfigId',
    'mrOwner',
    'mrOwnerConfig',
    'reportData',
    'allowDebug',
    'minTeeTcbSvn',
    'minQeSvn',
    'minPceSvn',
    'tcbStatuses',
  ];
  for (const k of Object.keys(d)) if (!known.includes(k)) fail(`unknown TDX policy rule ${k}`);
  if (d.mrTd === undefined) fail("mrTd is required: a list of hex MRTDs, or 'any'");
  const mrTd =
    d.mrTd === 'any'
      ? 'any'
      : Array.isArray(d.mrTd) && d.mrTd.length > 0
        ? d.mrTd.map((m) => hexOrAny(m, 'mrTd entry', 48, undefined) as Uint8Array)
        : fail("mrTd is a non-empty list or 'any'");
  const rtmrsIn = d.rtmrs ?? ['any', 'any', 'any', 'any'];
  if (!Array.isArray(rtmrsIn) || rtmrsIn.length !== 4) fail('rtmrs is a list of 4 (hex or any)');
  const int = (v: unknown, n: string) => {
    if (v === undefined) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) fail(`${n} is 0..65535`);
    return v as number;
  };
  const statuses = d.tcbStatuses ?? ['UpToDate'];
  if (!Array.isArray(statuses) || statuses.length === 0) fail('tcbStatuses is a non-empty list');
  for (const s of statuses as unknown[]) {
    if (s === 'Revoked' || !(TCB_STATUSES as readonly unknown[]).includes(s))
      fail(`tcbStatuses: ${shown(s)} cannot be accepted`);
  }
  if (d.allowDebug !== undefined && typeof d.allowDebug !== 'boolean') fail('allowDebug is a boolean');
  return {
    mrTd: mrTd as TdxPolicy['mrTd'],
    rtmrs: (rtmrsIn as unknown[]).map((r, i) => hexOrAny(r, `rtmrs[${i}]`, 48)),
    mrConfigId: hexOrAny(d.mrConfigId, 'mrConfigId', 48),
    mrOwner: hexOrAny(d.mrOwner, 'mrOwner', 48),
    mrOwnerConfig: hexOrAny(d.mrOwnerConfig, 'mrOwnerConfig', 48),
    reportData: hexOrAny(d.reportData, 'reportData', 64),
    allowDebug: d.allowDebug === true,
    minTeeTcbSvn: hexOrAny(d.minTeeTcbSvn, 'minTeeTcbSvn', 16),
    minQeSvn: int(d.minQeSvn, 'minQeSvn'),
    minPceSvn: int(d.minPceSvn, 'minPceSvn'),
    tcbStatuses: statuses as string[],
  };
}

export interface TdxAppraisal {
  readonly failures: readonly PolicyFailure[];
  readonly checked: readonly string[];
  readonly unchecked: readonly string[];
}

/** Appraises a verified quote against `p`: every failed rule, and which rules constrained it. */
export function appraiseTdx(v: TdxVerified, p: TdxPolicy): TdxAppraisal {
  const b = v.quote.body;
  const failures: PolicyFailure[] = [];
  const checked: string[] = [];
  const unchecked: string[] = [];
  const f = (code: string, message: string, expected?: string, actual?: string) =>
    failures.push({ code, message, ...(expected ? { expected } : {}), ...(actual ? { actual } : {}) });
  const exact = (rule: string, want: Uint8Array | 'any', got: Uint8Array) => {
    if (want === 'any') return void unchecked.push(rule);
    checked.push(rule);
    if (!ctEqual(want, got)) f(`tdx.${rule}`, `${rule} differs`, toHex(want), toHex(got));
  };
  if (p.mrTd === 'any') unchecked.push('mr_td');
  else {
    checked.push('mr_td');
    if (!p.mrTd.some((m) => ctEqual(m, b.mrTd)))
      f('tdx.mr_td', 'MRTD is not in the allow-list', undefined, toHex(b.mrTd));
  }
  p.rtmrs.forEach((r, i) => {
    exact(`rtmr${i}`, r, b.rtmrs[i]!);
  });
  exact('mr_config_id', p.mrConfigId, b.mrConfigId);
  exact('mr_owner', p.mrOwner, b.mrOwner);
  exact('mr_owner_config', p.mrOwnerConfig, b.mrOwnerConfig);
  exact('report_data', p.reportData, b.reportData);

  const td = attributesOf(b.tdAttributes);
  checked.push('td_attributes');
  if (td & ~TD_ATTRIBUTES_KNOWN)
    f('tdx.td_attributes.reserved', 'reserved TD_ATTRIBUTES bits are set', undefined, toHex(b.tdAttributes));
  if (td & TD_ATTRIBUTES_DEBUG && !p.allowDebug) f('tdx.td_attributes.debug', 'the TD is debuggable');
  const xfam = attributesOf(b.xfam);
  checked.push('xfam');
  if ((xfam & XFAM_REQUIRED) !== XFAM_REQUIRED || xfam & ~XFAM_ALLOWED)
    f('tdx.xfam', 'XFAM enables features outside 0x6DBE7 or lacks x87/SSE', undefined, toHex(b.xfam));
  checked.push('seam_attributes');
  if (attributesOf(b.seamAttributes) !== 0n)
    f('tdx.seam_attributes', 'SEAM_ATTRIBUTES are not zero', undefined, toHex(b.seamAttributes));

  if (p.minTeeTcbSvn === 'any') unchecked.push('min_tee_tcb_svn');
  else {
    checked.push('min_tee_tcb_svn');
    const min = p.minTeeTcbSvn;
    if (min.some((m, i) => b.teeTcbSvn[i]! < m))
      f(
        'tdx.tee_tcb_svn',
        'TEE_TCB_SVN is below the minimum (component-wise)',
        toHex(min),
        toHex(b.teeTcbSvn),
      );
  }
  (p.minQeSvn > 0 ? checked : unchecked).push('min_qe_svn');
  if (v.quote.header.qeSvn < p.minQeSvn)
    f('tdx.qe_svn', 'QE SVN below the minimum', String(p.minQeSvn), String(v.quote.header.qeSvn));
  (p.minPceSvn > 0 ? checked : unchecked).push('min_pce_svn');
  if (v.quote.header.pceSvn < p.minPceSvn)
    f('tdx.pce_svn', 'PCE SVN below the minimum', String(p.minPceSvn), String(v.quote.header.pceSvn));

  checked.push('tcb_status');
  if (!p.tcbStatuses.includes(v.tcb.status))
    f(
      'tdx.tcb_status',
      `TCB status ${v.tcb.status} is not accepted`,
      p.tcbStatuses.join(','),
      `${v.tcb.status} ${v.tcb.advisoryIds.join(',')}`.trim(),
    );
  if (!v.revocationChecked) unchecked.push('revocation');
  return { failures, checked, unchecked };
}
