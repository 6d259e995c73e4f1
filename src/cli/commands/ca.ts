import type { Command } from 'commander';
import { registerCrl } from './ca/crl.js';
import { registerInit } from './ca/init.js';
import { registerIssueAk } from './ca/issue-ak.js';
import { registerIssueEk } from './ca/issue-ek.js';
import { registerNonce } from './ca/nonce.js';
import { registerRevoke } from './ca/revoke.js';
import { registerVerifyLog } from './ca/verify-log.js';

/**
 * `vouchsafe ca ...`: the platform CA on the command line (docs/ca.md). Every subcommand works on a CA
 * directory (`--dir`, default $VOUCHSAFE_CA_DIR or ./vouchsafe-ca) and its database: `ca.db` there, or
 * the one `--database` names (PostgreSQL; $VOUCHSAFE_CA_DATABASE_URL). Exit codes as `vouchsafe verify`:
 * 0 done, 1 refused (the CA declined: code and reason printed), 2 unusable input or usage. One file per
 * subcommand in ./ca/, their shared options in ./ca/options.ts.
 */

/** Registers `vouchsafe ca` and its subcommands, in the order --help lists them. */
export function register(program: Command): void {
  const ca = program
    .command('ca')
    .description('platform CA: EK and AK certificates for vTPMs, revocation, CRLs (docs/ca.md)');
  registerInit(ca);
  registerIssueEk(ca);
  registerNonce(ca);
  registerIssueAk(ca);
  registerRevoke(ca);
  registerCrl(ca);
  registerVerifyLog(ca);
}
