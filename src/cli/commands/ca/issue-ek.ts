import type { Command } from 'commander';
import { readInput } from '../../io.js';
import { type IdentityFlags, identityFrom } from './identity.js';
import {
  type CommonFlags,
  derOption,
  formatOption,
  type OutputFlags,
  outputFormat,
  withCommon,
} from './options.js';
import { action, emit, withCa } from './run.js';

interface IssueEkFlags extends CommonFlags, IdentityFlags, OutputFlags {
  ekPub: string;
  tpmManufacturer?: string;
  tpmModel?: string;
  tpmVersion?: string;
  format?: string;
}

/** `vouchsafe ca issue-ek`: an EK certificate for a vTPM's EK and the instance it belongs to. */
export function registerIssueEk(ca: Command): void {
  withCommon(ca.command('issue-ek'))
    .description('issue an EK certificate (TCG EK profile + instance identity) for a vTPM EK')
    .requiredOption(
      '--ek-pub <file>',
      'EK public key: TPM2B_PUBLIC (tpm2_createek -u), TPMT_PUBLIC, or SPKI (DER/PEM)',
    )
    .option(
      '--identity <json>',
      'instance identity JSON {projectId, projectNumber, zone, instanceId, instanceName}, or @file',
    )
    .option('--project-id <id>')
    .option('--project-number <n>')
    .option('--zone <zone>')
    .option('--instance-id <n>')
    .option('--instance-name <name>')
    .option('--tpm-manufacturer <id>', 'TCG tpmManufacturer, e.g. id:4D534654 (default from ca.json)')
    .option('--tpm-model <model>')
    .option('--tpm-version <id>')
    .addOption(formatOption())
    .option('--out <file>', 'write the certificate here (PEM, DER with --der, or C509 CBOR)')
    .addOption(derOption())
    .action(
      action(async (o: IssueEkFlags) => {
        const identity = identityFrom(o);
        const ekPublic = readInput(o.ekPub, '--ek-pub');
        const format = outputFormat(o.format);
        const issued = await withCa(o, (c) => {
          const tpm =
            o.tpmManufacturer || o.tpmModel || o.tpmVersion
              ? {
                  manufacturer: o.tpmManufacturer ?? c.config.tpm.manufacturer,
                  model: o.tpmModel ?? c.config.tpm.model,
                  version: o.tpmVersion ?? c.config.tpm.version,
                }
              : undefined;
          return c.issueEk({ ekPublic, identity, format, ...(tpm ? { tpm } : {}) });
        });
        emit(issued, o);
      }),
    );
}
