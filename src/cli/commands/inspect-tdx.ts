import type { Command } from 'commander';
import { tdxBodyClaims } from '../../evidence/tdx/claims.js';
import { parseTdxQuote } from '../../formats/tdx/quote.js';
import { toHex } from '../../util/bytes.js';
import { Exit, readInput, reportError } from '../io.js';

function flatten(prefix: string, v: unknown, out: [string, string][]): void {
  if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) flatten(prefix ? `${prefix}.${k}` : k, x, out);
  } else out.push([prefix, String(v)]);
}

/** Every decoded field of a quote, JSON-friendly (no verification). */
function inspectClaims(bytes: Uint8Array) {
  const q = parseTdxQuote(bytes);
  return {
    header: {
      version: q.header.version,
      qeSvn: q.header.qeSvn,
      pceSvn: q.header.pceSvn,
      qeVendorId: toHex(q.header.qeVendorId),
      userData: toHex(q.header.userData),
    },
    ...(q.bodyType !== undefined ? { bodyType: q.bodyType } : {}),
    body: tdxBodyClaims(q.body),
    qeReport: {
      isvProdId: q.qeReport.isvProdId,
      isvSvn: q.qeReport.isvSvn,
      mrSigner: toHex(q.qeReport.mrSigner),
      reportData: toHex(q.qeReport.reportData),
    },
  };
}

export function registerInspectTdx(inspect: Command): void {
  inspect
    .command('tdx')
    .description('decode every field of an Intel TDX quote (no verification)')
    .argument('<quote>', 'the quote (binary)')
    .option('--json', 'print JSON')
    .action((path: string, o: { json?: boolean }) => {
      try {
        const claims = inspectClaims(readInput(path, '<quote>'));
        if (o.json) process.stdout.write(`${JSON.stringify(claims, null, 2)}\n`);
        else {
          const rows: [string, string][] = [];
          flatten('', claims, rows);
          const w = Math.max(...rows.map(([k]) => k.length));
          for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
          process.stdout.write(
            '\nNot verified: use `vouchsafe verify tdx` to check the signatures and chain.\n',
          );
        }
        process.exitCode = Exit.Ok;
      } catch (e) {
        process.exitCode = reportError(e, o.json ?? false);
      }
    });
}
