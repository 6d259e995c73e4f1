import type { Command } from 'commander';
import { readInput } from '../../io.js';
import { type IdentityFlags, identityFrom } from './identity.js';
import {
  type CommonFlags,
  type OutputFlags,
  outputFormat,
  withCertificateOutput,
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
  const command = withCommon(ca.command('issue-ek'))
    .description('issue an EK certificate (TCG EK profile + instance identity) for a vTPM EK')
    .requiredOption(
      '--ek-pub <file>',
      'required: file with the EK public key, TPM2B_PUBLIC (tpm2_createek -u), TPMT_PUBLIC, SPKI DER, or one PEM PUBLIC KEY block',
    )
    .option(
      '--identity <json>',
      'instance identity JSON {projectId, projectNumber, zone, instanceId, instanceName}, or @file holding it (default: the five flags below)',
    )
    .option('--project-id <id>', 'without --identity: the project ID (text)')
    .option('--project-number <n>', 'without --identity: the project number (unsigned 64-bit decimal)')
    .option('--zone <zone>', 'without --identity: the zone (text)')
    .option('--instance-id <n>', 'without --identity: the instance ID (unsigned 64-bit decimal)')
    .option('--instance-name <name>', 'without --identity: the instance name (text)')
    .option(
      '--tpm-manufacturer <id>',
      'TCG tpmManufacturer for the SAN, e.g. id:4D534654 (default: ca.json tpm.manufacturer)',
    )
    .option('--tpm-model <model>', 'TCG tpmModel for the SAN (default: ca.json tpm.model)')
    .option(
      '--tpm-version <id>',
      'TCG tpmVersion for the SAN, e.g. id:20160511 (default: ca.json tpm.version)',
    );
  withCertificateOutput(command).action(
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
