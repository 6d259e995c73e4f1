import type { Command } from 'commander';
import type { AdminApi, AuditVerificationJson } from '../../admin/types.js';
import { InvalidArgument } from '../../errors.js';
import { GENESIS_HASH } from '../../store/audit-hash.js';
import { compareWithExpectedHead, formatAuditHead, parseAuditHead } from '../../store/audit-verify.js';
import type { AuditHead } from '../../store/types.js';
import { Exit } from '../io.js';
import { addTargetOptions, type TargetOptions, withAdmin } from './instance.js';

const TARGET_HELP = `
Target (one of):
  --broker URL --token-file FILE   the admin API of a running broker
  --data DIR [--database URL]      the broker's data directory (or PostgreSQL) directly`;

function count(v: string | undefined, name: string, def: number, max: number): number {
  if (v === undefined) return def;
  if (!/^[0-9]{1,15}$/.test(v) || Number(v) > max)
    throw new InvalidArgument('cli.options', `${name}: 0..${max}`);
  return Number(v);
}

/**
 * With `--expect-head`: the intact chain must still hold the recorded entry (store/audit-verify.ts
 * compareWithExpectedHead). The hash at that seq is the verified head's, or read back by seq.
 */
async function withExpectedHead(
  admin: AdminApi,
  v: AuditVerificationJson,
  expected: AuditHead | undefined,
): Promise<AuditVerificationJson> {
  if (!expected || !v.ok) return v;
  let hash: string | undefined;
  if (expected.seq === 0) hash = GENESIS_HASH;
  else if (expected.seq === v.entries) hash = v.headHash;
  else if (expected.seq < v.entries) {
    const [e] = (await admin.readAudit(expected.seq - 1, 1)).entries;
    hash = e?.seq === expected.seq ? e.hash : undefined;
  }
  return compareWithExpectedHead(v, expected, hash);
}

/** `vouchsafe audit verify|show`: the broker's hash-chained audit log. */
export function register(program: Command): void {
  const audit = program
    .command('audit')
    .description("check and read the broker's hash-chained audit log")
    .addHelpText('after', TARGET_HELP);

  addTargetOptions(
    audit
      .command('verify')
      .description('recompute the whole hash chain; exit 0 intact, 1 broken')
      .option(
        '--expect-head <seq:hash>',
        'a head printed by an earlier verify: fail unless the log still holds that entry',
      ),
  )
    .addHelpText(
      'after',
      `${TARGET_HELP}

Detects a modified, deleted, inserted or reordered entry, a stored value of the wrong type, and a
truncated tail. Someone who can write the database can cut the tail and rewrite the head row, or rebuild a
consistent chain: record the printed head (seq:hash) somewhere they cannot write and pass it back with
--expect-head; a log shorter than it fails with audit.truncated, one that differs at it with audit.anchor.

Examples:
  vouchsafe audit verify --data /var/lib/vouchsafe
  vouchsafe audit verify --broker https://broker:8443 --token-file admin-token --json
  vouchsafe audit verify --data /var/lib/vouchsafe --expect-head 1042:<64 hex digits>`,
    )
    .action((o: TargetOptions & { expectHead?: string }) =>
      withAdmin(o, async (admin) => {
        const expected = o.expectHead === undefined ? undefined : parseAuditHead(o.expectHead);
        const v = await withExpectedHead(admin, await admin.verifyAudit(), expected);
        if (o.json) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
        else if (v.ok)
          process.stdout.write(
            `audit chain intact: ${v.entries} entries, head ${v.headHash} (record it: --expect-head ${formatAuditHead(v)})\n`,
          );
        else
          process.stdout.write(
            `audit chain BROKEN at seq ${v.seq}: ${v.problem} (${v.entries} entries verified before it)\n`,
          );
        return v.ok ? Exit.Ok : Exit.Rejected;
      }),
    );

  addTargetOptions(
    audit
      .command('show')
      .description('print audit entries, oldest first')
      .option('--after <seq>', 'entries after this sequence number', '0')
      .option('--limit <n>', 'at most this many entries (1..1000)', '100'),
  )
    .addHelpText(
      'after',
      `${TARGET_HELP}\n\nExample:\n  vouchsafe audit show --data /var/lib/vouchsafe --after 120 --limit 20`,
    )
    .action((o: TargetOptions & { after?: string; limit?: string }) =>
      withAdmin(o, async (admin) => {
        const after = count(o.after, '--after', 0, Number.MAX_SAFE_INTEGER);
        const limit = count(o.limit, '--limit', 100, 1000);
        if (limit < 1) throw new InvalidArgument('cli.options', '--limit: 1..1000');
        const page = await admin.readAudit(after, limit);
        if (o.json) process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
        else {
          for (const e of page.entries) {
            process.stdout.write(
              `${e.seq}\t${new Date(e.time).toISOString()}\t${e.kind}\t${e.decision}\t${e.instance ?? '-'}\t${e.reasons.join(',')}\n`,
            );
          }
          if (page.next !== null) process.stdout.write(`(more: --after ${page.next})\n`);
        }
        return Exit.Ok;
      }),
    );
}
