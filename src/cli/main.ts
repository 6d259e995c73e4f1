import { Command } from 'commander';
import { register as registerAudit } from './commands/audit.js';
import { register as registerC509 } from './commands/c509.js';
import { register as registerCa } from './commands/ca.js';
import { register as registerCollateral } from './commands/collateral.js';
import { register as registerCredential } from './commands/credential.js';
import { register as registerDemo } from './commands/demo.js';
import { register as registerGuest } from './commands/guest.js';
import { registerInspectEventLog } from './commands/inspect-eventlog.js';
import { registerInspectSnp } from './commands/inspect-snp.js';
import { registerInspectTdx } from './commands/inspect-tdx.js';
import { register as registerInstance } from './commands/instance.js';
import { register as registerProxy } from './commands/proxy.js';
import { register as registerServe } from './commands/serve.js';
import { registerVerifySnp } from './commands/verify-snp.js';
import { registerVerifyTdx } from './commands/verify-tdx.js';
import { registerVerifyTpm } from './commands/verify-tpm.js';
import { register as registerVmmDevice } from './commands/vmm-device.js';
import { unwrappedHelp } from './help.js';

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

registerDemo(program);
const verify = program.command('verify').description('verify evidence and appraise it against a policy');
registerVerifySnp(verify);
registerVerifyTdx(verify);
registerVerifyTpm(verify);
const inspect = program.command('inspect').description('decode evidence without verifying it');
registerInspectSnp(inspect);
registerInspectTdx(inspect);
registerInspectEventLog(inspect);
registerServe(program);
registerInstance(program);
registerAudit(program);
registerCredential(program);
registerProxy(program);
registerGuest(program);
registerCa(program);
registerCollateral(program);
registerC509(program);
registerVmmDevice(program);

await program.parseAsync(process.argv);
