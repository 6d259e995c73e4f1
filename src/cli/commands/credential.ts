import type { Command } from 'commander';
import { type CredentialAdmin, httpCredentials, localCredentials } from '../../admin/credentials.js';
import { readTokenFile } from '../../admin/token-file.js';
import type { CredentialView } from '../../broker/credentials.js';
import { InvalidArgument } from '../../errors.js';
import { CREDENTIAL_ROLES, type CredentialRole } from '../../store/types.js';
import { Exit, readInput, reportError } from '../io.js';
import { addTargetOptions, type TargetOptions } from './instance.js';

const HELP = `
Roles (docs/access.md):
  read      list and show instances of its projects, read their audit entries
  operate   read, and register instances, set policies and new-launch rules, rotate keys, end boots
  admin     operate, and (with --project '*') manage credentials, rotate KBS token keys, verify the audit chain
  host      a VMM backend's: end boots and relay guest calls; never register, read instances or keys
A credential sees only its projects: another project's instance answers 404, exactly as a missing one.

Target (one of):
  --broker URL --token-file FILE   the admin API of a running broker (an admin credential for every project)
  --data DIR [--database URL]      the broker's data directory (or PostgreSQL) directly; audited as "local"

Examples:
  vouchsafe credential create --data ./vouchsafe-data --name "ci deployer" --role operate --project shop
  vouchsafe credential create $ADMIN --name "vmm host 7" --role host --project shop --project web
  vouchsafe credential list $ADMIN
  vouchsafe credential revoke $ADMIN 3f9a0c1d2e4b5a69`;

async function openCredentials(o: TargetOptions): Promise<CredentialAdmin> {
  if (o.broker !== undefined && o.data === undefined) {
    if (o.tokenFile === undefined) throw new InvalidArgument('cli.target', '--broker needs --token-file');
    return httpCredentials({
      url: o.broker,
      token: readTokenFile(o.tokenFile),
      ...(o.brokerCa !== undefined ? { ca: readInput(o.brokerCa, '--broker-ca') } : {}),
    });
  }
  if (o.data !== undefined && o.broker === undefined) {
    return localCredentials({
      dataDir: o.data,
      ...(o.database !== undefined ? { databaseUrl: o.database } : {}),
    });
  }
  throw new InvalidArgument('cli.target', 'name one target: --broker URL --token-file FILE, or --data DIR');
}

async function withCredentials(o: TargetOptions, fn: (c: CredentialAdmin) => Promise<void>): Promise<void> {
  let c: CredentialAdmin | undefined;
  try {
    c = await openCredentials(o);
    await fn(c);
    process.exitCode = Exit.Ok;
  } catch (e) {
    process.exitCode = reportError(e, o.json ?? false);
  } finally {
    await c?.close().catch(() => {});
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const line = (c: CredentialView) =>
  `${c.id}  ${c.role.padEnd(7)}  ${c.projects.join(',')}  ${c.revokedAt === null ? 'active' : `revoked ${iso(c.revokedAt)}`}  ${c.name}\n`;

/** `vouchsafe credential create|list|revoke`: admin credentials with a role and projects. */
export function register(program: Command): void {
  const cred = program
    .command('credential')
    .description(
      'admin credentials: a role (read, operate, admin, host) for some projects; created, listed, revoked',
    )
    .addHelpText('after', HELP);

  addTargetOptions(
    cred
      .command('create')
      .description('create a credential and print its bearer token once (it is stored only as a hash)')
      .requiredOption('--name <text>', 'who or what holds it (shown in listings; the audit log names its id)')
      .requiredOption('--role <role>', `one of ${CREDENTIAL_ROLES.join(', ')}`)
      .requiredOption(
        '--project <name>',
        "a project it may see and act on (repeat for several; '*' for all)",
        (v: string, prev: string[] = []) => [...prev, v],
      ),
  )
    .addHelpText('after', HELP)
    .action(async (o: TargetOptions & { name: string; role: string; project: string[] }) => {
      await withCredentials(o, async (c) => {
        if (!(CREDENTIAL_ROLES as readonly string[]).includes(o.role))
          throw new InvalidArgument('cli.role', `--role: one of ${CREDENTIAL_ROLES.join(', ')}`);
        const r = await c.create({ name: o.name, role: o.role as CredentialRole, projects: o.project });
        if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        else {
          process.stdout.write(`${r.token}\n`);
          process.stderr.write(
            `credential ${r.credential.id} (${r.credential.role}; projects ${r.credential.projects.join(',')}).\n` +
              'The token above is shown once: store it now (e.g. in a 0600 file for --token-file).\n',
          );
        }
      });
    });

  addTargetOptions(
    cred.command('list').description('list credentials, revoked ones too (never their secrets)'),
  )
    .addHelpText('after', HELP)
    .action(async (o: TargetOptions) => {
      await withCredentials(o, async (c) => {
        const all = await c.list();
        process.stdout.write(o.json ? `${JSON.stringify(all, null, 2)}\n` : all.map(line).join(''));
      });
    });

  addTargetOptions(
    cred
      .command('revoke')
      .description('revoke a credential: refused from its next request on, on every replica')
      .argument('<id>', 'the credential id (from create or list)'),
  )
    .addHelpText('after', HELP)
    .action(async (id: string, o: TargetOptions) => {
      await withCredentials(o, async (c) => {
        const v = await c.revoke(id);
        process.stdout.write(o.json ? `${JSON.stringify(v, null, 2)}\n` : line(v));
      });
    });
}
