import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { toHex } from '../../../util/bytes.js';
import { u64 } from './identity.js';
import { type CommonFlags, withCommon } from './options.js';
import { action, withCa } from './run.js';

interface NonceFlags extends CommonFlags {
  instanceId: string;
  out?: string;
}

/** `vouchsafe ca nonce`: the single-use nonce route (a) of AK issuance starts with (docs/ca.md). */
export function registerNonce(ca: Command): void {
  withCommon(ca.command('nonce'))
    .description('issue a single-use 64-byte nonce for a TEE-bound AK request (route tee)')
    .requiredOption('--instance-id <n>', 'required: the instance the nonce is for (unsigned 64-bit decimal)')
    .option('--out <file>', 'write the raw 64-byte nonce here (default: 128 hex digits on stdout)')
    .action(
      action(async (o: NonceFlags) => {
        const nonce = await withCa(o, (c) => c.createNonce(u64(o.instanceId, '--instance-id')));
        if (o.out !== undefined) writeFileSync(o.out, nonce);
        else process.stdout.write(`${toHex(nonce)}\n`);
      }),
    );
}
