import type { Command } from 'commander';
import { InvalidArgument } from '../../errors.js';
import { reportClaims } from '../../evidence/snp/index.js';
import { isSnpProduct, parseReport, productFromCpuid, type SnpProduct } from '../../formats/snp/index.js';
import { Exit, reportError } from '../io.js';
import { readSnpInput } from './snp-input.js';

function flatten(prefix: string, v: unknown, out: [string, string][]): void {
  if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) flatten(prefix ? `${prefix}.${k}` : k, x, out);
  } else out.push([prefix, String(v)]);
}

export function registerInspectSnp(inspect: Command): void {
  inspect
    .command('snp')
    .description('decode every field of an SEV-SNP attestation report (no verification)')
    .argument('<report>', 'the 1184-byte ATTESTATION_REPORT, or Trustee SEV-SNP evidence JSON')
    .option('--product <name>', 'Milan, Genoa or Turin, to decode TCBs of a v2 report (no CPUID fields)')
    .option('--json', 'print JSON')
    .action((path: string, o: { product?: string; json?: boolean }) => {
      try {
        if (o.product !== undefined && !isSnpProduct(o.product)) {
          throw new InvalidArgument(
            'cli.product',
            `--product must be Milan, Genoa or Turin, got ${o.product}`,
          );
        }
        const report = parseReport(readSnpInput(path).report);
        const product =
          (o.product as SnpProduct | undefined) ??
          (report.cpuid ? productFromCpuid(report.cpuid.family, report.cpuid.model) : undefined);
        const claims = reportClaims(report, product);
        if (o.json) {
          process.stdout.write(`${JSON.stringify(claims, null, 2)}\n`);
        } else {
          const rows: [string, string][] = [];
          flatten('', claims, rows);
          const w = Math.max(...rows.map(([k]) => k.length));
          for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
          if (!product)
            process.stdout.write('\n(v2 report: TCBs shown raw; give --product to decode them)\n');
          process.stdout.write(
            '\nNot verified: use `vouchsafe verify snp` to check the signature and chain.\n',
          );
        }
        process.exitCode = Exit.Ok;
      } catch (e) {
        process.exitCode = reportError(e, o.json ?? false);
      }
    });
}
