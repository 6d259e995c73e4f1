import { Command } from 'commander';
import { register as audit } from '../../src/cli/commands/audit.js';
import { register as instance } from '../../src/cli/commands/instance.js';
import { register as proxy } from '../../src/cli/commands/proxy.js';
import { register as serve } from '../../src/cli/commands/serve.js';

/** Runs `vouchsafe serve|instance|audit|proxy ...` the way src/cli/main.ts will once the lead registers them. */
const program = new Command('vouchsafe').exitOverride((err) => {
  process.exit(err.exitCode === 0 ? 0 : 2);
});
for (const r of [serve, instance, audit, proxy]) r(program);
await program.parseAsync(process.argv);
