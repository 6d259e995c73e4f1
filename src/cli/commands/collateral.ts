import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { importCollateral } from '../../collateral/import.js';
import { KdsClient } from '../../collateral/kds-client.js';
import { listCollateralDir } from '../../collateral/listing.js';
import { PcsClient } from '../../collateral/pcs-client.js';
import { importTdxCollateral } from '../../collateral/pcs-directory.js';
import { describePcsItem, normalizeFmspc } from '../../collateral/pcs-url.js';
import { InvalidArgument } from '../../errors.js';
import { tdxCollateralQuery } from '../../evidence/tdx/index.js';
import {
  decodeSignerInfo,
  isSnpProduct,
  parseReport,
  productFromCpuid,
  SigningKey,
  type SnpProduct,
} from '../../formats/snp/index.js';
import { parseTdxQuote } from '../../formats/tdx/quote.js';
import { Exit, readInput, reportError } from '../io.js';
import { readSnpInput } from './snp-input.js';
import { defaultCacheDir } from './verify-snp.js';
import { defaultTdxCacheDir } from './verify-tdx.js';

const DAY_MS = 86_400_000;
function productOf(report: ReturnType<typeof parseReport>, given: string | undefined): SnpProduct {
  if (given !== undefined) {
    if (!isSnpProduct(given))
      throw new InvalidArgument('cli.product', `--product must be Milan, Genoa or Turin, got ${given}`);
    return given;
  }
  const p = report.cpuid ? productFromCpuid(report.cpuid.family, report.cpuid.model) : undefined;
  if (p) return p;
  throw new InvalidArgument(
    'cli.product',
    'the report names no known product (v2, or an unknown CPUID): give --product Milan, Genoa or Turin',
  );
}

const dirOption = (c: Command) =>
  c
    .option(
      '--dir <dir>',
      `collateral directory: verify snp --cache-dir (default ${defaultCacheDir()}), or a broker's <data>/kds-cache; with --tdx: verify tdx --cache-dir (default ${defaultTdxCacheDir()})`,
    )
    .option(
      '--tdx',
      'Intel TDX collateral from Intel PCS (TCB Info, QE Identity, PCK and Root CA CRLs) instead of AMD KDS',
    );

const dirOf = (o: { dir?: string; tdx?: boolean }) =>
  o.dir ?? (o.tdx ? defaultTdxCacheDir() : defaultCacheDir());

/**
 * `collateral fetch --tdx`: the TDX collateral each quote needs (its PCK's FMSPC and CA) from Intel PCS into
 * the directory's PCS cache, or with no quote the collateral of `--fmspc` (both PCK CRLs).
 */
async function fetchTdx(
  quotes: string[],
  o: { dir?: string; fmspc?: string; pcsUrl?: string; pcsCertificatesUrl?: string },
): Promise<string[]> {
  const pcs = new PcsClient({
    cacheDir: dirOf({ ...o, tdx: true }),
    ...(o.pcsUrl ? { baseUrl: o.pcsUrl } : {}),
    ...(o.pcsCertificatesUrl ? { certificatesUrl: o.pcsCertificatesUrl } : {}),
  });
  const fetched: string[] = [];
  for (const path of quotes) {
    const q = tdxCollateralQuery(parseTdxQuote(readInput(path, '<quote>')));
    await pcs.getTdxCollateral(q);
    fetched.push(`${path}: TCB Info (FMSPC ${q.fmspc}), QE Identity, PCK ${q.ca} CA CRL, Root CA CRL`);
  }
  if (quotes.length === 0) {
    if (o.fmspc === undefined)
      throw new InvalidArgument('cli.options', 'collateral fetch --tdx: give quotes, or --fmspc');
    const fmspc = normalizeFmspc(o.fmspc);
    await pcs.getTcbInfo(fmspc);
    await pcs.getQeIdentity();
    await pcs.getPckCrl('platform');
    await pcs.getPckCrl('processor');
    await pcs.getRootCaCrl();
    fetched.push(`FMSPC ${fmspc}: TCB Info, QE Identity, PCK platform and processor CA CRLs, Root CA CRL`);
  }
  return fetched;
}

/**
 * `vouchsafe collateral import|fetch|list|prune`: fill, inspect and trim a collateral directory in the KDS
 * cache layout (src/collateral/cache.ts), which is what `verify snp --offline --cache-dir` and `serve
 * --kds-offline` (`<data>/kds-cache`) read.
 */
export function register(program: Command): void {
  const col = program
    .command('collateral')
    .description(
      'AMD KDS collateral (VCEKs, cert chains, CRLs) and, with --tdx, Intel PCS collateral for TDX, for offline and cached verification',
    );

  dirOption(
    col
      .command('import')
      .description(
        'check collateral files (PEM or DER; a directory is walked) and file them into the directory',
      )
      .argument(
        '<paths...>',
        'files or directories: KDS cert_chain PEMs, ASK/ASVK + ARK, VCEKs, CRLs; with --tdx, TDX collateral directories (docs/tdx.md)',
      ),
  )
    .option('--json', 'print JSON')
    .action(async (paths: string[], o: { dir?: string; tdx?: boolean; json?: boolean }) => {
      try {
        const dir = dirOf(o);
        if (o.tdx) {
          // Each directory in the offline layout (tcb_info.json, tcb_info.sig.hex, …) is checked and filed as
          // the PCS responses it came in, which `verify tdx --offline --cache-dir` and PcsClient read.
          const imported: { from: string; items: string[] }[] = [];
          for (const p of paths)
            imported.push({ from: p, items: (await importTdxCollateral(p, dir)).map(describePcsItem) });
          if (o.json) process.stdout.write(`${JSON.stringify({ dir, imported }, null, 2)}\n`);
          else {
            for (const i of imported) process.stdout.write(`imported ${i.items.join(', ')}  <- ${i.from}\n`);
            process.stdout.write(
              `${imported.length} director${imported.length === 1 ? 'y' : 'ies'} into ${dir}\n`,
            );
          }
          process.exitCode = Exit.Ok;
          return;
        }
        const r = await importCollateral(paths.length === 1 ? paths[0]! : paths, dir);
        if (o.json) process.stdout.write(`${JSON.stringify({ dir, ...r }, null, 2)}\n`);
        else {
          for (const e of r.imported) process.stdout.write(`imported ${e.path}  <- ${e.files.join(' + ')}\n`);
          for (const u of r.unused) process.stdout.write(`unused   ${u.file}: ${u.why}\n`);
          process.stdout.write(`${r.imported.length} item(s) in ${dir}\n`);
        }
        process.exitCode = Exit.Ok;
      } catch (e) {
        process.exitCode = reportError(e, o.json ?? false);
      }
    });

  dirOption(
    col
      .command('fetch')
      .description(
        'fetch from AMD KDS into the directory what verifying a report needs: its VCEK, the chain and the CRL',
      )
      .argument(
        '[reports...]',
        'reports (binary or Trustee JSON); none: --product chains and CRLs only. With --tdx: TDX quotes; none: --fmspc',
      ),
  )
    .option('--product <name>', 'Milan, Genoa or Turin (v2 reports; or without a report)')
    .option('--kds-url <url>', 'AMD KDS base URL or mirror (default https://kdsintf.amd.com)')
    .option('--fmspc <hex>', 'with --tdx and no quote: the platform FMSPC (12 hex digits)')
    .option(
      '--pcs-url <url>',
      'with --tdx: Intel PCS base URL (default https://api.trustedservices.intel.com)',
    )
    .option(
      '--pcs-certificates-url <url>',
      'with --tdx: where the SGX Root CA CRL is (default https://certificates.trustedservices.intel.com)',
    )
    .option('--json', 'print JSON')
    .action(
      async (
        reports: string[],
        o: {
          dir?: string;
          tdx?: boolean;
          product?: string;
          kdsUrl?: string;
          fmspc?: string;
          pcsUrl?: string;
          pcsCertificatesUrl?: string;
          json?: boolean;
        },
      ) => {
        try {
          const dir = dirOf(o);
          if (o.tdx) {
            const fetched = await fetchTdx(reports, o);
            if (o.json) process.stdout.write(`${JSON.stringify({ dir, fetched }, null, 2)}\n`);
            else process.stdout.write(`${fetched.map((f) => `fetched ${f}\n`).join('')}into ${dir}\n`);
            process.exitCode = Exit.Ok;
            return;
          }
          const kds = new KdsClient({ cacheDir: dir, ...(o.kdsUrl ? { baseUrl: o.kdsUrl } : {}) });
          const fetched: string[] = [];
          const chains = new Set<string>();
          const want: { product: SnpProduct; signer: 'vcek' | 'vlek' }[] = [];
          for (const path of reports) {
            const report = parseReport(readSnpInput(path).report);
            const product = productOf(report, o.product);
            const vlek = decodeSignerInfo(report.signerInfo).signingKey === SigningKey.VLEK;
            // KDS does not serve VLEKs: for those only the ASVK chain and CRL are fetched.
            if (!vlek) {
              await kds.getVcekForReport(report, product);
              fetched.push(`${path}: VCEK`);
            }
            want.push({ product, signer: vlek ? 'vlek' : 'vcek' });
          }
          if (reports.length === 0) {
            const product = o.product;
            if (product === undefined || !isSnpProduct(product)) {
              throw new InvalidArgument('cli.product', 'give reports, or --product Milan, Genoa or Turin');
            }
            want.push({ product, signer: 'vcek' }, { product, signer: 'vlek' });
          }
          for (const w of want) {
            const key = `${w.signer}/${w.product}`;
            if (chains.has(key)) continue;
            chains.add(key);
            await kds.getCertChain(w.product, w.signer);
            const crl = await kds.getCrl(w.product, w.signer);
            fetched.push(`${key}: cert_chain, crl (next update ${crl.nextUpdate?.toISOString() ?? 'none'})`);
          }
          if (o.json) process.stdout.write(`${JSON.stringify({ dir, fetched }, null, 2)}\n`);
          else process.stdout.write(`${fetched.map((f) => `fetched ${f}\n`).join('')}into ${dir}\n`);
          process.exitCode = Exit.Ok;
        } catch (e) {
          process.exitCode = reportError(e, o.json ?? false);
        }
      },
    );

  dirOption(col.command('list').description('list the directory: each item, its size and age; CRL dates'))
    .option('--json', 'print JSON')
    .action(async (o: { dir?: string; tdx?: boolean; json?: boolean }) => {
      try {
        const dir = dirOf(o);
        const all = await listCollateralDir(dir, Date.now());
        // --tdx: the PCS part of the directory (verify tdx's default cache also holds the KDS one under kds/).
        const items = o.tdx ? all.filter((i) => i.path.startsWith('pcs/')) : all;
        if (o.json) process.stdout.write(`${JSON.stringify({ dir, items }, null, 2)}\n`);
        else {
          for (const i of items) {
            const c = i.crl;
            const crl = !c
              ? ''
              : 'unreadable' in c
                ? `  unreadable: ${c.unreadable}`
                : `  next update ${c.nextUpdate ?? 'none'}${c.stale ? ' (STALE)' : ''}`;
            process.stdout.write(
              `${i.kind.padEnd(10)} ${String(i.bytes).padStart(6)}  ${i.modified}  ${i.path}${crl}\n`,
            );
          }
          process.stdout.write(`${items.length} file(s) in ${dir}\n`);
        }
        process.exitCode = Exit.Ok;
      } catch (e) {
        process.exitCode = reportError(e, o.json ?? false);
      }
    });

  dirOption(
    col
      .command('prune')
      .description(
        'remove VCEKs (--tdx: TDX TCB Infos) not written for --older-than days and leftover temporary files; chains, CRLs and the QE Identity are kept',
      ),
  )
    .option('--older-than <days>', 'age of the VCEKs to remove, in days', '180')
    .option('--dry-run', 'list what would be removed')
    .option('--json', 'print JSON')
    .action(
      async (o: { dir?: string; tdx?: boolean; olderThan: string; dryRun?: boolean; json?: boolean }) => {
        try {
          const dir = dirOf(o);
          if (!/^\d{1,6}$/.test(o.olderThan))
            throw new InvalidArgument('cli.options', '--older-than: whole days');
          const cutoff = Date.now() - Number(o.olderThan) * DAY_MS;
          const items = await listCollateralDir(dir, Date.now());
          // A VCEK is immutable and re-fetchable, so an old one costs only a KDS request when it is needed again.
          // So is a TCB Info: one per platform FMSPC, re-fetched from PCS when a quote from that platform comes.
          const perPlatform = o.tdx ? 'tcb_info' : 'vcek';
          const old = items.filter((i) => i.kind === perPlatform && Date.parse(i.modified) < cutoff);
          const chains = new Set(old.map((i) => i.path.replace(/\.json$/, '.issuer-chain.pem')));
          const doomed = items.filter(
            (i) =>
              i.kind === 'temporary' ||
              old.includes(i) ||
              (o.tdx === true && i.kind === 'issuer_chain' && chains.has(i.path)),
          );
          if (!o.dryRun) for (const i of doomed) await unlink(join(dir, ...i.path.split('/')));
          const removed = doomed.map((i) => i.path);
          if (o.json)
            process.stdout.write(`${JSON.stringify({ dir, removed, dryRun: o.dryRun ?? false }, null, 2)}\n`);
          else {
            for (const p of removed) process.stdout.write(`${o.dryRun ? 'would remove' : 'removed'} ${p}\n`);
            process.stdout.write(
              `${removed.length} file(s)${o.dryRun ? ' would be' : ''} removed from ${dir}\n`,
            );
          }
          process.exitCode = Exit.Ok;
        } catch (e) {
          process.exitCode = reportError(e, o.json ?? false);
        }
      },
    );
}
