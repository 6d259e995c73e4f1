import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PcsClient } from '../../collateral/pcs-client.js';
import { tdxCollateralFromDirectory } from '../../collateral/pcs-directory.js';
import { InvalidArgument, PolicyRejected } from '../../errors.js';
import {
  type TdxClaims,
  type TdxCollateralSource,
  tdxCollateralQuery,
  tdxEvidence,
  verifyCcelEventLog,
} from '../../evidence/tdx/index.js';
import { appraiseTdx, parseTdxPolicy, type TdxAppraisal, type TdxPolicy } from '../../policy/tdx/policy.js';
import { toHex } from '../../util/bytes.js';
import { Exit, parseTime, readInput, reportError } from '../io.js';

interface VerifyTdxOptions {
  collateral?: string;
  checkRevocation: boolean;
  at?: string;
  policy?: string;
  trustRoot: string[];
  offline?: boolean;
  cacheDir?: string;
  pcsUrl?: string;
  eventLog?: string;
  json?: boolean;
}

/** Where PCS responses are cached: files land in `pcs/` below it (src/collateral/pcs-url.ts). */
export function defaultTdxCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'vouchsafe');
}

const collect = (v: string, acc: string[]) => [...acc, v];

function loadPolicy(path: string | undefined): TdxPolicy {
  // No policy: every rule at its safe default, MRTD explicitly unconstrained (and listed as not checked).
  if (!path) return parseTdxPolicy({ mrTd: 'any' });
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(readInput(path, '--policy')).toString('utf8'));
  } catch (e) {
    if (e instanceof InvalidArgument) throw e;
    throw new InvalidArgument('policy.invalid', `--policy: ${path} is not JSON`);
  }
  return parseTdxPolicy(json);
}

function trustRoot(s: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(s))
    throw new InvalidArgument('cli.trust_root', `--trust-root wants a SHA-256 (64 hex digits), got ${s}`);
  return s.toLowerCase();
}

export interface TdxVerdict {
  verdict: 'accepted' | 'rejected';
  claims: TdxClaims;
  collateral: { source: 'directory' | 'pcs' | 'offline-cache'; location: string };
  appraisal: TdxAppraisal;
  /** With --event-log: the CCEL log replayed to the quote's RTMR 0..3 (a mismatch is a refusal, exit 1). */
  eventLog?: { events: number; rtmrs: string[] };
}

async function run(quotePath: string, o: VerifyTdxOptions): Promise<number> {
  const now = parseTime(o.at);
  const policy = loadPolicy(o.policy);
  const trustedRoots = o.trustRoot.map(trustRoot);
  const quote = tdxEvidence.parse({ quote: readInput(quotePath, '<quote>') });
  const cacheDir = o.cacheDir ?? defaultTdxCacheDir();
  let source: TdxCollateralSource;
  let where: TdxVerdict['collateral'];
  if (o.collateral) {
    source = tdxCollateralFromDirectory(o.collateral);
    where = { source: 'directory', location: o.collateral };
  } else {
    source = new PcsClient({
      cacheDir,
      offline: o.offline ?? false,
      ...(o.pcsUrl ? { baseUrl: o.pcsUrl } : {}),
    });
    where = o.offline
      ? { source: 'offline-cache', location: cacheDir }
      : { source: 'pcs', location: cacheDir };
  }
  const collateral = await source.getTdxCollateral(tdxCollateralQuery(quote));
  // The one TDX pipeline (src/evidence/tdx verifyTdx), as the TEE table runs it.
  const verified = await tdxEvidence.verify(quote, {
    collateral,
    now,
    trustedRoots,
    checkRevocations: o.checkRevocation,
  });
  // The CCEL log is evidence only once it replays to the RTMRs of the quote just verified.
  const ccel = o.eventLog ? verifyCcelEventLog(readInput(o.eventLog, '--event-log'), verified) : undefined;
  const appraisal = appraiseTdx(verified, policy);
  const result: TdxVerdict = {
    verdict: appraisal.failures.length === 0 ? 'accepted' : 'rejected',
    claims: tdxEvidence.toClaims(verified).details,
    collateral: where,
    appraisal,
    ...(ccel ? { eventLog: { events: ccel.log.events.length, rtmrs: ccel.rtmrs.map(toHex) } } : {}),
  };
  if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else printVerdict(quotePath, result, now);
  if (appraisal.failures.length > 0 && !o.json) reportError(new PolicyRejected(appraisal.failures), false);
  return appraisal.failures.length === 0 ? Exit.Ok : Exit.Rejected;
}

function printVerdict(path: string, r: TdxVerdict, now: Date): void {
  const c = r.claims;
  const t = c.tcb;
  const lines: [string, string][] = [
    ['quote', `${path}: TDX quote v${c.quoteVersion} (${c.bodyKind}), FMSPC ${c.fmspc}`],
    ['chain', `PCK -> PCK CA -> Intel SGX Root CA, valid at ${now.toISOString()}`],
    [
      'collateral',
      `${r.collateral.source} (${r.collateral.location}): TCB Info and QE Identity signatures verify`,
    ],
    [
      'revocation',
      c.revocationChecked ? 'PCK, PCK CA and TCB Signing not revoked (CRLs checked)' : 'NOT CHECKED',
    ],
    ['signatures', 'QE report by the PCK, attestation key bound by the QE, quote by the attestation key'],
    ['tcb status', `${t.status}${t.advisoryIds.length ? ` (${t.advisoryIds.join(', ')})` : ''}`],
    ['mrtd', c.mrTd],
    ['mrconfigid', c.mrConfigId],
    ['rtmrs', c.rtmrs.join(' ')],
    ...(r.eventLog
      ? [
          ['event log', `${r.eventLog.events} CCEL events replay to RTMR 0..3 of the quote`] as [
            string,
            string,
          ],
        ]
      : []),
    ['report data', c.reportData],
    ['td attributes', c.tdAttributes],
    ['policy checked', r.appraisal.checked.join(', ') || '-'],
    ['not checked', r.appraisal.unchecked.join(', ') || '-'],
    ['verdict', r.verdict.toUpperCase()],
  ];
  const w = Math.max(...lines.map(([k]) => k.length));
  for (const [k, val] of lines) process.stdout.write(`${k.padEnd(w)}  ${val}\n`);
}

export function registerVerifyTdx(verify: Command): void {
  verify
    .command('tdx')
    .description(
      'verify an Intel TDX quote (v4/v5): PCK chain to the pinned Intel root, collateral, CRLs, QE binding,\n' +
        'quote signature and TCB status, then appraise it against a policy',
    )
    .argument('<quote>', 'the quote as the guest got it (binary)')
    .option(
      '--collateral <dir>',
      'offline collateral directory (tcb_info.json, tcb_info.sig.hex, … see docs/tdx.md)',
    )
    .option('--no-check-revocation', 'do not check the PCK CRL and the Root CA CRL (checked by default)')
    .option('--at <time>', 'verify as of this time (ISO 8601 or Unix seconds); default now')
    .option(
      '--policy <file>',
      'TDX appraisal policy (JSON; see docs/tdx.md); default: safe defaults, any MRTD',
    )
    .option(
      '--trust-root <sha256>',
      'also trust this root (e.g. the simulator root); repeatable',
      collect,
      [],
    )
    .option('--offline', 'never contact Intel PCS; read only the collateral cache')
    .option('--cache-dir <dir>', 'collateral cache directory')
    .option('--pcs-url <url>', 'Intel PCS base URL (default https://api.trustedservices.intel.com)')
    .option(
      '--event-log <file>',
      "the TD's CCEL event log (e.g. /sys/firmware/acpi/tables/data/CCEL): its replay must equal RTMR 0..3",
    )
    .option('--json', 'print the verdict, every claim and the appraisal as JSON')
    .addHelpText(
      'after',
      `
Collateral comes from --collateral, else Intel PCS v4 (cached in ${defaultTdxCacheDir()}/pcs).
Every chain is checked against Intel's pinned root whatever its source.

Exit status: 0 accepted, 1 rejected (signature, chain, binding or policy; every failure is listed),
2 unusable input (malformed quote or collateral, missing collateral, bad arguments).

Examples:
  vouchsafe verify tdx quote.bin --collateral ./collateral --policy policy.json
  vouchsafe verify tdx quote.bin --event-log CCEL --json`,
    )
    .action(async (quote: string, o: VerifyTdxOptions) => {
      let code: number;
      try {
        code = await run(quote, o);
      } catch (e) {
        code = reportError(e, o.json ?? false);
      }
      process.exitCode = code;
    });
}
