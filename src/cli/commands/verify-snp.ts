import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { KdsClient } from '../../collateral/index.js';
import { InvalidArgument, PolicyRejected } from '../../errors.js';
import {
  type SnpAttestation,
  type SnpClaims,
  snpEvidence,
  type TrustedRoot,
} from '../../evidence/snp/index.js';
import { decodeSignerInfo, isSnpProduct, SigningKey, type SnpProduct } from '../../formats/snp/index.js';
import { appraiseSnp, parseSnpPolicy, type SnpAppraisal, type SnpPolicy } from '../../policy/snp/index.js';
import { Exit, parseTime, readInput, reportError } from '../io.js';
import { readSnpInput } from './snp-input.js';

interface VerifySnpOptions {
  vcek?: string;
  vlek?: string;
  ask?: string;
  asvk?: string;
  ark?: string;
  certTable?: string;
  crl?: string;
  checkRevocation?: boolean;
  product?: string;
  at?: string;
  policy?: string;
  permitProvisionalFirmware?: boolean;
  trustRoot: string[];
  offline?: boolean;
  cacheDir?: string;
  kdsUrl?: string;
  json?: boolean;
}

export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'vouchsafe', 'kds');
}

const collect = (v: string, acc: string[]) => [...acc, v];

/** `PRODUCT:SHA256` as given to --trust-root. */
export function parseTrustRoot(s: string): TrustedRoot {
  const m = /^([A-Za-z]+):([0-9a-fA-F]{64})$/.exec(s);
  if (!m || !isSnpProduct(m[1]!)) {
    throw new InvalidArgument(
      'cli.trust_root',
      `--trust-root wants PRODUCT:SHA256 (e.g. Milan:<64 hex>), got ${s}`,
    );
  }
  return { product: m[1] as SnpProduct, sha256: m[2]!.toLowerCase() };
}

function loadPolicy(o: VerifySnpOptions): SnpPolicy {
  let policy: SnpPolicy = {};
  if (o.policy) {
    const text = Buffer.from(readInput(o.policy, '--policy')).toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new InvalidArgument('policy.invalid', `--policy: ${o.policy} is not JSON`);
    }
    policy = parseSnpPolicy(json);
  }
  if (o.permitProvisionalFirmware) policy = { ...policy, permitProvisionalFirmware: true };
  return policy;
}

export interface SnpVerdict {
  verdict: 'accepted' | 'rejected';
  claims: SnpClaims;
  certificates: SnpAttestation['sources'];
  appraisal: SnpAppraisal;
}

async function run(reportPath: string, o: VerifySnpOptions): Promise<number> {
  const now = parseTime(o.at);
  const policy = loadPolicy(o);
  if (o.product !== undefined && !isSnpProduct(o.product)) {
    throw new InvalidArgument('cli.product', `--product must be Milan, Genoa or Turin, got ${o.product}`);
  }
  // A raw report, or Trustee's JSON evidence rebuilt to the same bytes (its cert_chain as a table).
  const input = readSnpInput(reportPath);
  const evidence = snpEvidence.parse({ report: input.report });
  const vlek = decodeSignerInfo(evidence.report.signerInfo).signingKey === SigningKey.VLEK;
  const read = (path: string | undefined, what: string) => (path ? readInput(path, what) : undefined);
  const leafPath = vlek ? (o.vlek ?? o.vcek) : (o.vcek ?? o.vlek);
  const given = {
    leaf: read(leafPath, vlek ? '--vlek' : '--vcek'),
    intermediate: read(vlek ? (o.asvk ?? o.ask) : (o.ask ?? o.asvk), vlek ? '--asvk' : '--ask'),
    root: read(o.ark, '--ark'),
  };
  const certTable = read(o.certTable, '--cert-table') ?? input.certTable;
  const crl = read(o.crl, '--crl');
  // The one SEV-SNP pipeline (src/evidence/snp verifySnpAttestation), as the broker and the CA run it.
  const attestation = await snpEvidence.verify(
    {
      ...evidence,
      certs: given,
      ...(certTable ? { certTable } : {}),
      ...(crl ? { crl } : {}),
    },
    {
      now,
      trustedRoots: o.trustRoot.map(parseTrustRoot),
      getter: new KdsClient({
        cacheDir: o.cacheDir ?? defaultCacheDir(),
        offline: o.offline ?? false,
        ...(o.kdsUrl ? { baseUrl: o.kdsUrl } : {}),
      }),
      checkRevocations: o.checkRevocation ?? false,
      ...(o.product ? { product: o.product as SnpProduct } : {}),
    },
  );
  const verified = attestation.verified;
  const appraisal = appraiseSnp(verified.report, verified.product, policy);
  const result: SnpVerdict = {
    verdict: appraisal.failures.length === 0 ? 'accepted' : 'rejected',
    claims: snpEvidence.toClaims(attestation).details,
    certificates: attestation.sources,
    appraisal,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else printVerdict(reportPath, result, now);
  if (appraisal.failures.length > 0 && !o.json) reportError(new PolicyRejected(appraisal.failures), false);
  return appraisal.failures.length === 0 ? Exit.Ok : Exit.Rejected;
}

function tcbText(t: SnpClaims['reportedTcb']): string {
  const parts = (['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const)
    .filter((k) => t[k] !== undefined)
    .map((k) => `${k}=${t[k]}`);
  return `${parts.join(' ')} (${t.raw})`;
}

function printVerdict(path: string, r: SnpVerdict, now: Date): void {
  const c = r.claims;
  const v = c.verification;
  const s = r.certificates;
  const lines: [string, string][] = [
    ['report', `${path}: SEV-SNP report v${c.version}, ${c.product}, signed by the ${c.signer}`],
    [
      'chain',
      `${c.signer} (${s.leaf}) -> ${c.signer === 'VLEK' ? 'ASVK' : 'ASK'} (${s.intermediate}) -> ARK (${s.root}), ` +
        `${v.rootTrust === 'pinned' ? 'pinned AMD root' : 'CONFIGURED root (not AMD)'} ${v.rootSha256.slice(0, 16)}…, ` +
        `valid at ${now.toISOString()}`,
    ],
    ['signature', 'ECDSA P-384 over the report verifies with the leaf key'],
    ['tcb binding', `REPORTED_TCB equals the ${c.signer}'s TCB: ${tcbText(c.reportedTcb)}`],
    [
      'chip id',
      v.chipIdChecked
        ? `CHIP_ID equals the VCEK's hwID`
        : c.signer === 'VLEK'
          ? 'not bound (a VLEK names no chip)'
          : 'NOT CHECKED: the host masked CHIP_ID',
    ],
    [
      'revocation',
      v.crlChecked ? 'intermediate not revoked (CRL checked)' : 'not checked (--crl or --check-revocation)',
    ],
    ['measurement', c.measurement],
    ['host data', c.hostData],
    ['report data', c.reportData],
    ['vmpl', String(c.vmpl)],
    [
      'guest policy',
      `${c.policy.raw} abi ${c.policy.abiMajor}.${c.policy.abiMinor} debug=${c.policy.debug} ` +
        `migrate_ma=${c.policy.migrateMa} smt=${c.policy.smt}`,
    ],
    ['current tcb', tcbText(c.currentTcb)],
    ['committed tcb', tcbText(c.committedTcb)],
    ['launch tcb', tcbText(c.launchTcb)],
    ['firmware', `${c.currentFirmware.version} (committed ${c.committedFirmware.version})`],
    ['policy checked', r.appraisal.checked.join(', ') || '-'],
    ['not checked', r.appraisal.unchecked.join(', ') || '-'],
    ['verdict', r.verdict.toUpperCase()],
  ];
  const w = Math.max(...lines.map(([k]) => k.length));
  for (const [k, val] of lines) process.stdout.write(`${k.padEnd(w)}  ${val}\n`);
}

export function registerVerifySnp(verify: Command): void {
  verify
    .command('snp')
    .description(
      'verify an AMD SEV-SNP attestation report: signature, certificate chain to a pinned AMD root, TCB and\n' +
        'CHIP_ID binding, then appraise it against a policy',
    )
    .argument(
      '<report>',
      'the 1184-byte ATTESTATION_REPORT (binary), or Trustee SEV-SNP evidence JSON (told apart by content)',
    )
    .option('--vcek <file>', 'VCEK certificate (DER or PEM)')
    .option('--vlek <file>', 'VLEK certificate (DER or PEM); VLEKs come only from the host')
    .option('--ask <file>', 'ASK certificate (for a VCEK)')
    .option('--asvk <file>', 'ASVK certificate (for a VLEK)')
    .option('--ark <file>', 'ARK certificate; must be one of the pinned AMD roots (or a --trust-root)')
    .option('--cert-table <file>', 'extended-report certificate table (GHCB layout) as the host returned it')
    .option('--crl <file>', 'AMD CRL (DER) to check the ASK/ASVK against')
    .option('--check-revocation', 'fetch the CRL from AMD KDS (cache first) and check it')
    .option('--product <name>', 'Milan, Genoa or Turin: needed for v2 reports when no certificate names it')
    .option('--at <time>', 'verify as of this time (ISO 8601 or Unix seconds); default now')
    .option('--policy <file>', 'appraisal policy (JSON; see docs/policy.md); default: the safe defaults')
    .option(
      '--permit-provisional-firmware',
      'accept COMMITTED_TCB/version below CURRENT (firmware not committed)',
    )
    .option(
      '--trust-root <product:sha256>',
      'also trust this root (e.g. the simulator ARK); repeatable',
      collect,
      [],
    )
    .option('--offline', 'never contact AMD KDS; read only the collateral cache')
    .option('--cache-dir <dir>', 'collateral cache directory', undefined)
    .option('--kds-url <url>', 'AMD KDS base URL (default https://kdsintf.amd.com)')
    .option('--json', 'print the verdict, every claim and the appraisal as JSON')
    .addHelpText(
      'after',
      `
Certificates come from the options first, then --cert-table (or the JSON evidence's cert_chain), then
AMD KDS (cached in ${defaultCacheDir()}). Every certificate is checked against the pinned AMD ARKs
whatever its source. A JSON <report> is Trustee's SEV-SNP evidence: its report bytes are rebuilt from the
fields exactly (any field that would not rebuild exactly is refused) and verified as the binary report.

Exit status: 0 accepted, 1 rejected (signature, chain, binding or policy; every failure is listed),
2 unusable input (malformed report or certificate, missing collateral, bad arguments).

Examples:
  vouchsafe verify snp report.bin --vcek vcek.pem --ask ask.pem --ark ark.pem
  vouchsafe verify snp report.bin --cert-table certs.bin --policy policy.json --json
  vouchsafe verify snp report.bin --offline --cache-dir ./collateral
  vouchsafe verify snp evidence.json --offline     # Trustee SEV-SNP evidence JSON, same verdict`,
    )
    .action(async (report: string, o: VerifySnpOptions) => {
      let code: number;
      try {
        code = await run(report, o);
      } catch (e) {
        code = reportError(e, o.json ?? false);
      }
      process.exitCode = code;
    });
}
