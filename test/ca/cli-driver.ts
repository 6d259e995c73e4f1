import { Command } from 'commander';
import { register } from '../../src/cli/commands/ca.js';

/** Test driver: a `vouchsafe`-like program with only `ca`, until src/cli/main.ts registers it. */
const program = new Command('vouchsafe')
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
register(program);
await program.parseAsync(process.argv);
