import type { Command } from 'commander';
import { InvalidArgument } from '../../errors.js';
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

/** `vouchsafe audit verify|show`: the broker's hash-chained audit log. */
export function register(program: Command): void {
  const audit = program
    .command('audit')
    .description("check and read the broker's hash-chained audit log")
    .addHelpText('after', TARGET_HELP);

  addTargetOptions(
    audit.command('verify').description('recompute the whole hash chain; exit 0 intact, 1 broken'),
  )
    .addHelpText(
      'after',
      `${TARGET_HELP}

Detects a modified, deleted, inserted or reordered entry and a truncated tail. Someone who can write the
database can rebuild a consistent chain: export the printed head hash somewhere they cannot write, and
compare later.

Examples:
  vouchsafe audit verify --data /var/lib/vouchsafe
  vouchsafe audit verify --broker https://broker:8443 --token-file admin-token --json`,
    )
    .action((o: TargetOptions) =>
      withAdmin(o, async (admin) => {
        const v = await admin.verifyAudit();
        if (o.json) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
        else if (v.ok) process.stdout.write(`audit chain intact: ${v.entries} entries, head ${v.headHash}\n`);
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
