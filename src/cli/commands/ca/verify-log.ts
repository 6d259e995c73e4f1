import type { Command } from 'commander';
import { formatAuditHead, parseAuditHead } from '../../../store/audit-verify.js';
import { Exit } from '../../io.js';
import { type CommonFlags, withCommon } from './options.js';
import { action, withCa } from './run.js';

interface VerifyLogFlags extends CommonFlags {
  expectHead?: string;
}

/**
 * `vouchsafe ca verify-log`: recomputes the issuance log's hash chain (docs/ca.md "Issuance log"); with
 * `--expect-head`, as `vouchsafe audit verify` does for the broker's log, the log must still hold a head
 * recorded earlier.
 */
export function registerVerifyLog(ca: Command): void {
  withCommon(ca.command('verify-log'))
    .description('recompute the issuance log hash chain (exit 1 when it was tampered with)')
    .option(
      '--expect-head <seq:hash>',
      'a head printed by an earlier verify-log: fail unless the log still holds that entry (default: no check)',
    )
    .addHelpText(
      'after',
      `
Prints the result as JSON on stdout. Detects a modified, deleted, inserted or reordered entry and a
truncated tail. Someone who can write the CA's database can cut the tail and rewrite the head row, or
rebuild a consistent chain: record the head (seq:hash, printed on stderr) where they cannot write and pass
it back with --expect-head; a log shorter than it fails with audit.truncated, one that differs at it with
audit.anchor.`,
    )
    .action(
      action(async (o: VerifyLogFlags) => {
        const expectHead = o.expectHead === undefined ? undefined : parseAuditHead(o.expectHead);
        const v = await withCa(o, (c) => c.verifyLog(expectHead ? { expectHead } : {}));
        process.stdout.write(`${JSON.stringify(v)}\n`);
        if (v.ok && !o.json) process.stderr.write(`record the head: --expect-head ${formatAuditHead(v)}\n`);
        return v.ok ? Exit.Ok : Exit.Rejected;
      }),
    );
}
