import type { Command } from 'commander';
import { Exit } from '../../io.js';
import { type CommonFlags, withCommon } from './options.js';
import { action, withCa } from './run.js';

/** `vouchsafe ca verify-log`: recomputes the issuance log's hash chain (docs/ca.md "Issuance log"). */
export function registerVerifyLog(ca: Command): void {
  withCommon(ca.command('verify-log'))
    .description('recompute the issuance log hash chain (exit 1 when it was tampered with)')
    .action(
      action(async (o: CommonFlags) => {
        const v = await withCa(o, (c) => c.verifyLog());
        process.stdout.write(`${JSON.stringify(v)}\n`);
        return v.ok ? Exit.Ok : Exit.Rejected;
      }),
    );
}
