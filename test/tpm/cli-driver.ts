import { Command } from 'commander';
import { registerVerifyTpm } from '../../src/cli/commands/verify-tpm.js';

/** Test driver: a `vouchsafe`-like program with only `verify tpm`, until src/cli/main.ts registers it. */
const program = new Command('vouchsafe').exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
registerVerifyTpm(program.command('verify'));
await program.parseAsync(process.argv);
