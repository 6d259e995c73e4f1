import { Command } from 'commander';

/**
 * The `vouchsafe` command. Each subcommand lives in src/cli/commands/<name>.ts and exports a
 * `register(program)` function; exit codes: 0 accepted/ok, 1 rejected, 2 unusable input or usage.
 */
const program = new Command('vouchsafe')
  .description('Attestation verification, key release and platform CA for confidential VMs')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

const commands: { register(p: Command): void }[] = [];
for (const c of commands) c.register(program);

await program.parseAsync(process.argv);
