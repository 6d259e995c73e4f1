import { Argument, type Command, Option } from 'commander';
import { httpAdmin } from '../../admin/http.js';
import { readTokenFile } from '../../admin/token-file.js';
import type { AdminApi, InstanceJson } from '../../admin/types.js';
import { AttestationError, InvalidArgument } from '../../errors.js';
import { NEW_LAUNCH_POLICIES, type NewLaunchPolicy } from '../../store/types.js';
import { Exit, readInput, reportError } from '../io.js';

/** Where an admin command acts: a running broker over its admin API, or a data directory directly. */
export interface TargetOptions {
  broker?: string;
  tokenFile?: string;
  brokerCa?: string;
  data?: string;
  database?: string;
  json?: boolean;
}

const TARGET_HELP = `
Target (one of):
  --broker URL --token-file FILE   the admin API of a running broker (the token file is <data>/admin-token,
                                   or a scoped credential's: vouchsafe credential create, docs/access.md)
  --data DIR [--database URL]      the broker's data directory (or PostgreSQL) directly, e.g. before the first
                                   start or without network access; decided and audited exactly as over HTTP`;

/** Adds the target options (see TARGET_HELP) and --json to an admin command. */
export function addTargetOptions(c: Command): Command {
  return c
    .option('--broker <url>', 'broker base URL (admin API)')
    .option(
      '--token-file <file>',
      'file holding an admin credential: <data>/admin-token, or a token from vouchsafe credential create',
    )
    .option('--broker-ca <file>', 'CA certificate (PEM) of an https broker')
    .option('--data <dir>', "the broker's data directory")
    .addOption(
      new Option('--database <url>', 'PostgreSQL URL of the broker store (with --data for the KEK)').env(
        'VOUCHSAFE_DATABASE_URL',
      ),
    )
    .option('--json', 'print JSON');
}

/** Opens the admin target the options name. Throws InvalidArgument `cli.target` unless exactly one is named. */
export async function openAdmin(o: TargetOptions): Promise<AdminApi> {
  if (o.broker !== undefined && o.data === undefined) {
    if (o.tokenFile === undefined) throw new InvalidArgument('cli.target', '--broker needs --token-file');
    return httpAdmin({
      url: o.broker,
      token: readTokenFile(o.tokenFile),
      ...(o.brokerCa !== undefined ? { ca: readInput(o.brokerCa, '--broker-ca') } : {}),
    });
  }
  if (o.data !== undefined && o.broker === undefined) {
    // The store, the broker and the verifiers behind it are loaded only for this target: a --broker call
    // (over HTTP) does not pay for them at every start.
    const { localAdmin } = await import('../../admin/local.js');
    return localAdmin({ dataDir: o.data, ...(o.database !== undefined ? { databaseUrl: o.database } : {}) });
  }
  throw new InvalidArgument('cli.target', 'name one target: --broker URL --token-file FILE, or --data DIR');
}

/** Runs an admin action against the target, prints errors, sets the exit code; always closes the target. */
export async function withAdmin(
  o: TargetOptions,
  fn: (admin: AdminApi) => Promise<number | undefined>,
): Promise<void> {
  let admin: AdminApi | undefined;
  try {
    admin = await openAdmin(o);
    process.exitCode = (await fn(admin)) ?? Exit.Ok;
  } catch (e) {
    process.exitCode = reportError(e, o.json ?? false);
  } finally {
    await admin?.close().catch(() => {});
  }
}

/**
 * Runs `f` on the instance the broker knows as `id`. When there is none and `id` is all digits — what a GCE
 * instance id looks like, which people type where the broker's id is wanted (`instance show 43`) — the error
 * (same code and reason) says so and names the broker id of the instance registered with that GCE id, if any.
 */
export async function byBrokerId<T>(admin: AdminApi, id: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (
      !(e instanceof AttestationError) ||
      e.reason !== 'broker.instance_not_found' ||
      !/^[0-9]{1,20}$/.test(id)
    ) {
      throw e;
    }
    const matches = (await admin.list().catch(() => [] as InstanceJson[])).filter((v) => v.instanceId === id);
    const hint =
      matches.length > 0
        ? `${id} is the instance id (GCE) of ${matches.map((m) => `${m.project}/${m.zone}/${m.instanceName}, broker id ${m.id}`).join('; ')}: use the broker id, e.g. vouchsafe instance show ${matches[0]!.id}`
        : `${id} looks like a GCE instance id; these commands take the broker's id (the first column of vouchsafe instance list)`;
    throw new AttestationError(e.code, e.reason, `no instance with broker id ${id}: ${hint}`);
  }
}

function readPolicy(path: string): unknown {
  const text = Buffer.from(readInput(path, '--policy')).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidArgument('cli.policy', `--policy: ${path} is not JSON`);
  }
}

/** The registration's TEE and chosen identity value options. */
interface RegistryValueOptions {
  tee?: 'snp' | 'tdx';
  hostData?: string;
  mrConfigId?: string;
  identityValue?: string;
}

/**
 * The TEE and identity value the options name: `--host-data` is SNP's, `--mr-config-id` TDX's,
 * `--identity-value tee:hex` either; at most one value, and it must agree with `--tee`. The broker checks
 * the length. Throws InvalidArgument `cli.identity_value`.
 */
function registryValueOf(o: RegistryValueOptions): { tee?: 'snp' | 'tdx'; hostData?: string } {
  const given: [tee: string, hex: string][] = [];
  if (o.hostData !== undefined) given.push(['snp', o.hostData]);
  if (o.mrConfigId !== undefined) given.push(['tdx', o.mrConfigId]);
  if (o.identityValue !== undefined) {
    const m = /^(snp|tdx):(.*)$/.exec(o.identityValue);
    if (!m) throw new InvalidArgument('cli.identity_value', '--identity-value takes snp:<hex> or tdx:<hex>');
    given.push([m[1]!, m[2]!]);
  }
  if (given.length > 1)
    throw new InvalidArgument(
      'cli.identity_value',
      'give one of --host-data, --mr-config-id, --identity-value',
    );
  const [valueTee, hex] = given[0] ?? [undefined, undefined];
  if (valueTee !== undefined && o.tee !== undefined && o.tee !== valueTee)
    throw new InvalidArgument('cli.identity_value', `--tee ${o.tee} with a ${valueTee} identity value`);
  const tee = (valueTee ?? o.tee) as 'snp' | 'tdx' | undefined;
  if (hex !== undefined && !/^(?:[0-9a-fA-F]{2})+$/.test(hex))
    throw new InvalidArgument('cli.identity_value', 'the identity value must be hex');
  return { ...(tee ? { tee } : {}), ...(hex !== undefined ? { hostData: hex.toLowerCase() } : {}) };
}

const iso = (ms: number) => new Date(ms).toISOString();

function printInstance(v: InstanceJson): void {
  const lines = [
    `id:                ${v.id}`,
    `identity:          ${v.project} / ${v.zone} / ${v.instanceId} (${v.instanceName})`,
    `TEE:               ${v.tee}`,
    `${`${v.identityField}:`.padEnd(19)}${v.hostData}`,
    `created:           ${iso(v.createdAt)}`,
    `new launch:        ${v.newLaunch}`,
    `committed counter: ${v.committedCounter ?? 'none'}`,
    `active boot:       ${v.activeBoot ? `${v.activeBoot.bootId}, lease until ${iso(v.activeBoot.leaseExpiresAt)}` : 'none'}`,
  ];
  if (v.keyVersions) {
    lines.push(
      `sealing keys:      ${v.keyVersions.length === 0 ? 'none yet (created at the first release)' : v.keyVersions.map((k) => `v${k.version} (${iso(k.createdAt)}, ${k.kekId})`).join(', ')}`,
    );
  }
  lines.push(`policy:            ${JSON.stringify(v.policy)}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const out = (json: boolean | undefined, value: unknown, text: () => void) => {
  if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else text();
};

/** What each new-launch policy does (docs/broker.md "Leases"), for the help of both commands that set it. */
const NEW_LAUNCH_HELP = `
New-launch policy: what a new launch (a different SEV-SNP REPORT_ID) does while another launch of the
instance holds a live lease (docs/broker.md "Leases"):
  takeover  (default) the new launch becomes the active boot; the old one can no longer commit
  refuse    broker.clone until the lease runs out or the VMM calls reset-boot
  allow     the key is released, but only the live boot can commit (read-only replicas)`;

const newLaunchOption = () =>
  new Option('--new-launch <policy>', 'new-launch policy (below)').choices([...NEW_LAUNCH_POLICIES]);

/**
 * `vouchsafe instance register|list|show|set-policy|set-new-launch|reset-boot|rotate-key`: the instance
 * registry.
 */
export function register(program: Command): void {
  const instance = program
    .command('instance')
    .description(
      'manage registered instances (the control plane): register, list, show, set policy or new-launch policy, reset, rotate',
    )
    .addHelpText('after', TARGET_HELP);

  addTargetOptions(
    instance
      .command('register')
      .description(
        'register an instance and print the HOST_DATA (SNP) or MRCONFIGID (TDX) its VMM must set at launch',
      )
      .requiredOption('--project <name>', 'project')
      .requiredOption('--zone <name>', 'zone')
      .requiredOption('--instance-id <id>', 'the platform instance id')
      .requiredOption('--name <name>', 'the instance name')
      .requiredOption('--policy <file>', 'appraisal policy for the TEE, JSON (docs/policy.md, docs/tdx.md)')
      .addOption(new Option('--tee <tee>', 'the TEE the instance runs on').choices(['snp', 'tdx']))
      .option('--host-data <hex>', 'SNP: register this HOST_DATA (32 bytes) instead of a random one')
      .option('--mr-config-id <hex>', 'TDX: register this MRCONFIGID (48 bytes) instead of a random one')
      .option('--identity-value <tee:hex>', 'the same as one of the two above, e.g. tdx:<96 hex digits>')
      .addOption(newLaunchOption()),
  )
    .addHelpText(
      'after',
      `${TARGET_HELP}

The value printed is what the VMM passes at launch: SNP HOST_DATA (QEMU: -object
sev-snp-guest,...,host-data=<base64>), TDX MRCONFIGID (QEMU: -object tdx-guest,...,mrconfigid=<base64>);
the hex is also in 'instance show'. It names the instance; the policy decides whether it gets its key.
Without a value the broker draws a random one (--tee snp, the default, or --tee tdx).
${NEW_LAUNCH_HELP}

Examples:
  vouchsafe instance register --project acme --zone eu-1 --instance-id 4711 --name db-1 \\
      --policy policy.json --broker https://broker:8443 --token-file /var/lib/vouchsafe/admin-token
  vouchsafe instance register ... --policy policy.json --data /var/lib/vouchsafe --json`,
    )
    .action(
      (
        o: TargetOptions & {
          project: string;
          zone: string;
          instanceId: string;
          name: string;
          policy: string;
          newLaunch?: NewLaunchPolicy;
        } & RegistryValueOptions,
      ) =>
        withAdmin(o, async (admin) => {
          const chosen = registryValueOf(o);
          const v = await admin.register({
            project: o.project,
            zone: o.zone,
            instanceId: o.instanceId,
            instanceName: o.name,
            policy: readPolicy(o.policy),
            ...chosen,
            ...(o.newLaunch !== undefined ? { newLaunch: o.newLaunch } : {}),
          });
          out(o.json, v, () => {
            printInstance(v);
            process.stdout.write(
              `${v.identityField} (base64): ${Buffer.from(v.hostData, 'hex').toString('base64')}\n`,
            );
          });
          return Exit.Ok;
        }),
    );

  addTargetOptions(instance.command('list').description('list registered instances'))
    .addHelpText('after', `${TARGET_HELP}\n\nExample:\n  vouchsafe instance list --data /var/lib/vouchsafe`)
    .action((o: TargetOptions) =>
      withAdmin(o, async (admin) => {
        const all = await admin.list();
        out(o.json, all, () => {
          for (const v of all) {
            process.stdout.write(
              `${v.id}  ${v.project}/${v.zone}/${v.instanceId}  ${v.instanceName}  ${v.tee} ${v.identityField.toLowerCase()}=${v.hostData}  counter=${v.committedCounter ?? '-'}  boot=${v.activeBoot ? 'active' : '-'}\n`,
            );
          }
        });
        return Exit.Ok;
      }),
    );

  addTargetOptions(
    instance.command('show').argument('<id>', "the broker's instance id").description('show one instance'),
  )
    .addHelpText(
      'after',
      `${TARGET_HELP}\n\nExample:\n  vouchsafe instance show 6f1c... --broker http://127.0.0.1:8443 --token-file admin-token`,
    )
    .action((id: string, o: TargetOptions) =>
      withAdmin(o, async (admin) => {
        const v = await byBrokerId(admin, id, () => admin.show(id));
        out(o.json, v, () => printInstance(v));
        return Exit.Ok;
      }),
    );

  addTargetOptions(
    instance
      .command('set-policy')
      .argument('<id>', "the broker's instance id")
      .requiredOption('--policy <file>', "appraisal policy for the instance's TEE, JSON (docs/policy.md)")
      .description("replace an instance's appraisal policy (audited)"),
  )
    .addHelpText('after', TARGET_HELP)
    .action((id: string, o: TargetOptions & { policy: string }) =>
      withAdmin(o, async (admin) => {
        const policy = readPolicy(o.policy);
        await byBrokerId(admin, id, () => admin.setPolicy(id, policy));
        out(o.json, { ok: true }, () => process.stdout.write('policy replaced\n'));
        return Exit.Ok;
      }),
    );

  addTargetOptions(
    instance
      .command('set-new-launch')
      .argument('<id>', "the broker's instance id")
      .addArgument(new Argument('<policy>', 'takeover, refuse or allow').choices([...NEW_LAUNCH_POLICIES]))
      .description("change an instance's new-launch policy (audited)"),
  )
    .addHelpText(
      'after',
      `${TARGET_HELP}
${NEW_LAUNCH_HELP}

Example:
  vouchsafe instance set-new-launch 6f1c... refuse --data /var/lib/vouchsafe`,
    )
    .action((id: string, policy: NewLaunchPolicy, o: TargetOptions) =>
      withAdmin(o, async (admin) => {
        await byBrokerId(admin, id, () => admin.setNewLaunch(id, policy));
        out(o.json, { ok: true, newLaunch: policy }, () =>
          process.stdout.write(`new-launch policy set to ${policy}\n`),
        );
        return Exit.Ok;
      }),
    );

  addTargetOptions(
    instance
      .command('reset-boot')
      .argument('<id>', "the broker's instance id")
      .option('--note <text>', 'why (kept in the audit log, at most 200 characters)')
      .description('end the active boot of an instance known to be stopped, so it can boot again at once'),
  )
    .addHelpText(
      'after',
      `${TARGET_HELP}

Only for a VM that is known to be stopped: while a boot is active, another boot of the instance is refused
as a clone until its lease runs out. Resetting a running VM's boot lets a copy of it start.`,
    )
    .action((id: string, o: TargetOptions & { note?: string }) =>
      withAdmin(o, async (admin) => {
        const r = await byBrokerId(admin, id, () => admin.resetBoot(id, o.note));
        out(o.json, r, () =>
          process.stdout.write(r.hadActiveBoot ? 'active boot ended\n' : 'no active boot\n'),
        );
        return Exit.Ok;
      }),
    );

  addTargetOptions(
    instance
      .command('rotate-key')
      .argument('<id>', "the broker's instance id")
      .description('add a new sealing-key version (older versions are kept)'),
  )
    .addHelpText(
      'after',
      `${TARGET_HELP}

Caution: releases return the newest version, and the guest protocol cannot yet name the version a state
file was sealed with, so a guest cannot open state sealed under the previous version after a rotation
(docs/api.md "Key rotation"). No key is ever deleted: the older version stays in the store.`,
    )
    .action((id: string, o: TargetOptions) =>
      withAdmin(o, async (admin) => {
        const r = await byBrokerId(admin, id, () => admin.rotateKey(id));
        out(o.json, r, () => process.stdout.write(`sealing key version ${r.keyVersion} created\n`));
        return Exit.Ok;
      }),
    );
}
