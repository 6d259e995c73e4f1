import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { crlPem } from '../../../ca/index.js';
import { type CommonFlags, derOption, type OutputFlags, withCommon } from './options.js';
import { action, withCa } from './run.js';

/** `vouchsafe ca crl`: signs the next CRL (RFC 5280 §5) listing every revoked certificate. */
export function registerCrl(ca: Command): void {
  withCommon(ca.command('crl'))
    .description('sign a new CRL (next CRL number) listing every revoked certificate')
    .option('--out <file>', 'write the CRL to <file>: PEM, DER with --der (default: PEM on stdout)')
    .addOption(derOption())
    .action(
      action(async (o: CommonFlags & OutputFlags) => {
        const crl = await withCa(o, (c) => c.generateCrl());
        if (o.out !== undefined) writeFileSync(o.out, o.der ? crl.der : crlPem(crl.der));
        if (o.json) {
          process.stdout.write(
            `${JSON.stringify({ crlNumber: crl.number, nextUpdate: new Date(crl.nextUpdate).toISOString(), crl: Buffer.from(crl.der).toString('base64') })}\n`,
          );
        } else {
          process.stderr.write(`CRL number ${crl.number}\n`);
          if (o.out === undefined) process.stdout.write(crlPem(crl.der));
        }
      }),
    );
}
