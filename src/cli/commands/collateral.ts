import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { importCollateral } from '../../collateral/import.js';
import { KdsClient } from '../../collateral/kds-client.js';
import { listCollateralDir } from '../../collateral/listing.js';
import { InvalidArgument } from '../../errors.js';
import {
  decodeSignerInfo,
  isSnpProduct,
  parseReport,
  productFromCpuid,
  SigningKey,
  type SnpProduct,
} from '../../formats/snp/index.js';
import { Exit, reportError } from '../io.js';
import { readSnpInput } from './snp-input.js';
import { defaultCacheDir } from './verify-snp.js';

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
  c.option(
    '--dir <dir>',
    `collateral directory: verify snp --cache-dir (default ${defaultCacheDir()}), or a broker's <data>/kds-cache`,
  );

/**
 * `vouchsafe collateral import|fetch|list|prune`: fill, inspect and trim a collateral directory in the KDS
 * cache layout (src/collateral/cache.ts), which is what `verify snp --offline --cache-dir` and `serve
 * --kds-offline` (`<data>/kds-cache`) read.
 */
export function register(program: Command): void {
  const col = program
    .command('collateral')
    .description('AMD KDS collateral (VCEKs, cert chains, CRLs) for offline and cached verification');

  dirOption(
    col
      .command('import')
      .description(
        'check collateral files (PEM or DER; a directory is walked) and file them into the directory',
      )
      .argument('<paths...>', 'files or directories: KDS cert_chain PEMs, ASK/ASVK + ARK, VCEKs, CRLs'),
  )
    .option('--json', 'print JSON')
    .action(async (paths: string[], o: { dir?: string; json?: boolean }) => {
      try {
        const dir = o.dir ?? defaultCacheDir();
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
      .argument('[reports...]', 'reports (binary or Trustee JSON); none: --product chains and CRLs only'),
  )
    .option('--product <name>', 'Milan, Genoa or Turin (v2 reports; or without a report)')
    .option('--kds-url <url>', 'AMD KDS base URL or mirror (default https://kdsintf.amd.com)')
    .option('--json', 'print JSON')
    .action(
      async (reports: string[], o: { dir?: string; product?: string; kdsUrl?: string; json?: boolean }) => {
        try {
          const dir = o.dir ?? defaultCacheDir();
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
    .action(async (o: { dir?: string; json?: boolean }) => {
      try {
        const dir = o.dir ?? defaultCacheDir();
        const items = await listCollateralDir(dir, Date.now());
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
        'remove VCEKs not written for --older-than days and leftover temporary files; chains and CRLs are kept',
      ),
  )
    .option('--older-than <days>', 'age of the VCEKs to remove, in days', '180')
    .option('--dry-run', 'list what would be removed')
    .option('--json', 'print JSON')
    .action(async (o: { dir?: string; olderThan: string; dryRun?: boolean; json?: boolean }) => {
      try {
        const dir = o.dir ?? defaultCacheDir();
        if (!/^\d{1,6}$/.test(o.olderThan))
          throw new InvalidArgument('cli.options', '--older-than: whole days');
        const cutoff = Date.now() - Number(o.olderThan) * DAY_MS;
        const items = await listCollateralDir(dir, Date.now());
        // A VCEK is immutable and re-fetchable, so an old one costs only a KDS request when it is needed again.
        const doomed = items.filter(
          (i) => i.kind === 'temporary' || (i.kind === 'vcek' && Date.parse(i.modified) < cutoff),
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
    });
}
