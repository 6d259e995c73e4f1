import { Command } from 'commander';
import { register } from '../../src/cli/commands/c509.js';

/** Runs `vouchsafe c509 ...` the way src/cli/main.ts will once the lead registers the module there. */
const program = new Command('vouchsafe').exitOverride((err) => {
  process.exit(err.exitCode === 0 ? 0 : 2);
});
register(program);
await program.parseAsync(process.argv);
