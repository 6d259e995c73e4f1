import { type Command, Option } from 'commander';
import { CrlReason } from '../../../ca/index.js';
import { type CommonFlags, withCommon } from './options.js';
import { action, withCa } from './run.js';

interface RevokeFlags extends CommonFlags {
  reason: keyof typeof CrlReason;
}

/** `vouchsafe ca revoke SERIAL`: marks a certificate revoked; the next `ca crl` lists it. */
export function registerRevoke(ca: Command): void {
  withCommon(ca.command('revoke'))
    .description('revoke a certificate by serial number (hex)')
    .argument('<serial>', 'serial number in hex, as issue-ek and issue-ak print it')
    .addOption(
      new Option('--reason <reason>', 'RFC 5280 §5.3.1 CRLReason, listed on the next CRL')
        .choices(Object.keys(CrlReason))
        .default('unspecified'),
    )
    .action(
      action(async (o: RevokeFlags, serial?: string) => {
        const result = await withCa(o, (c) => c.revoke(serial ?? '', CrlReason[o.reason]));
        if (o.json) process.stdout.write(`${JSON.stringify({ serial, result })}\n`);
        else process.stderr.write(`${serial}: ${result.replace('_', ' ')}\n`);
      }),
    );
}
