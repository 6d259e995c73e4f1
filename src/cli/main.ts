import { Command } from 'commander';
import { AttestationError } from '../errors.js';
import { unwrappedHelp } from './help.js';
import { reportError } from './io.js';

/**
 * The `vouchsafe` command. Each subcommand lives in src/cli/commands/<name>.ts. Exit codes everywhere:
 * 0 accepted/ok, 1 rejected/refused, 2 unusable input or usage error.
 */
// A reader that stops early (`vouchsafe verify snp r.bin | head -1`) closes the pipe: that is not an error of
// ours, so later writes are dropped quietly and the command still exits with its own verdict.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    throw e;
  });
}

const program = new Command('vouchsafe')
  .description('Attestation verification, key release and platform CA for confidential VMs')
  .version('0.1.0')
  // A usage error names the problem and where help is, rather than burying it above the whole help text.
  .showHelpAfterError('(add --help for usage)')
  .configureHelp(unwrappedHelp)
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

/**
 * The commands in help order. Each is loaded only when it runs: a command module pulls in what it needs
 * (fastify, pg, x509, the simulator), and loading all of them cost ~1 s of CPU for any call; `verify snp`
 * alone loads in ~0.1 s. The top-level help, `--version` and an unknown command load every one.
 */
type Register = (parent: Command) => void;
const GROUPS: Readonly<Record<string, string>> = {
  verify: 'verify evidence and appraise it against a policy',
  inspect: 'decode evidence without verifying it',
};
/** `names`: the top-level commands the entry's module registers (serve adds token-keys, guest adds sim). */
const COMMANDS: readonly {
  readonly name: string;
  readonly names?: readonly string[];
  readonly load: () => Promise<readonly Register[]>;
}[] = [
  { name: 'demo', load: async () => [(await import('./commands/demo.js')).register] },
  {
    name: 'verify',
    load: async () => [
      (await import('./commands/verify-snp.js')).registerVerifySnp,
      (await import('./commands/verify-tdx.js')).registerVerifyTdx,
      (await import('./commands/verify-tpm.js')).registerVerifyTpm,
    ],
  },
  {
    name: 'inspect',
    load: async () => [
      (await import('./commands/inspect-snp.js')).registerInspectSnp,
      (await import('./commands/inspect-tdx.js')).registerInspectTdx,
      (await import('./commands/inspect-eventlog.js')).registerInspectEventLog,
    ],
  },
  {
    name: 'serve',
    names: ['serve', 'token-keys'],
    load: async () => [(await import('./commands/serve.js')).register],
  },
  { name: 'instance', load: async () => [(await import('./commands/instance.js')).register] },
  { name: 'audit', load: async () => [(await import('./commands/audit.js')).register] },
  { name: 'credential', load: async () => [(await import('./commands/credential.js')).register] },
  { name: 'proxy', load: async () => [(await import('./commands/proxy.js')).register] },
  {
    name: 'guest',
    names: ['guest', 'sim'],
    load: async () => [(await import('./commands/guest.js')).register],
  },
  { name: 'ca', load: async () => [(await import('./commands/ca.js')).register] },
  { name: 'collateral', load: async () => [(await import('./commands/collateral.js')).register] },
  { name: 'c509', load: async () => [(await import('./commands/c509.js')).register] },
  { name: 'vmm-device', load: async () => [(await import('./commands/vmm-device.js')).register] },
];

const named = COMMANDS.find((c) => (c.names ?? [c.name]).includes(process.argv[2] ?? ''));
for (const c of named ? [named] : COMMANDS) {
  const group = GROUPS[c.name];
  const parent = group !== undefined ? program.command(c.name).description(group) : program;
  for (const register of await c.load()) register(parent);
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // An option's value parser refuses with a typed error while commander parses, before any action runs
  // (`serve --max-connections 0`): reported like any other refusal (exit 2), not as a crash with a stack.
  if (!(e instanceof AttestationError)) throw e;
  process.exitCode = reportError(e, false);
}
