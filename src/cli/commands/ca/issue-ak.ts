import { writeFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type { OutputFormat, PlatformCa } from '../../../ca/index.js';
import { InvalidArgument } from '../../../errors.js';
import { readInput } from '../../io.js';
import { u64 } from './identity.js';
import {
  type CommonFlags,
  type OutputFlags,
  outputFormat,
  withCertificateOutput,
  withCommon,
} from './options.js';
import { action, emit, withCa } from './run.js';

interface IssueAkFlags extends CommonFlags, OutputFlags {
  route: 'tee' | 'activation';
  instanceId?: string;
  nonce?: string;
  report?: string;
  certTable?: string;
  manifest?: string;
  akPub?: string;
  ekPub?: string;
  credentialOut?: string;
  activationId?: string;
  secret?: string;
  csr?: string;
  format?: string;
}

/** A flag the chosen route needs. Throws InvalidArgument `cli.usage`. */
function need(flag: string, v: string | undefined): string {
  if (typeof v !== 'string') throw new InvalidArgument('cli.usage', `${flag} is required for this route`);
  return v;
}

/** The nonce file as `ca nonce` wrote it: 128 hex digits (stdout) or the raw 64 bytes (--out). */
function readNonce(file: string): Uint8Array {
  const bytes = readInput(file, '--nonce');
  const asText = Buffer.from(bytes).toString('latin1').trim();
  return /^[0-9a-fA-F]{128}$/.test(asText) ? new Uint8Array(Buffer.from(asText, 'hex')) : bytes;
}

/** Route tee: the SNP report over the services manifest that carries the AK. */
function issueFromTee(o: IssueAkFlags, format: OutputFormat, csr: Uint8Array | undefined) {
  const nonce = readNonce(need('--nonce', o.nonce));
  return withCa(o, (c: PlatformCa) =>
    c.issueAkFromTee({
      instanceId: u64(need('--instance-id', o.instanceId), '--instance-id'),
      nonce,
      report: readInput(need('--report', o.report), '--report'),
      certTable: readInput(need('--cert-table', o.certTable), '--cert-table'),
      manifest: readInput(need('--manifest', o.manifest), '--manifest'),
      format,
      ...(csr ? { csr } : {}),
    }),
  );
}

/** Route activation, step 1: a credential sealed to the EK on record for the AK's Name. */
async function startActivation(o: IssueAkFlags, format: OutputFormat, csr: Uint8Array | undefined) {
  const credOut = need('--credential-out', o.credentialOut);
  const challenge = await withCa(o, (c) =>
    c.startActivation({
      instanceId: u64(need('--instance-id', o.instanceId), '--instance-id'),
      akPublic: readInput(need('--ak-pub', o.akPub), '--ak-pub'),
      ...(o.ekPub !== undefined ? { ekPublic: readInput(o.ekPub, '--ek-pub') } : {}),
      format,
      ...(csr ? { csr } : {}),
    }),
  );
  writeFileSync(credOut, challenge.credentialFile);
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ activationId: challenge.activationId, expiresAt: challenge.expiresAt.toISOString() })}\n`,
    );
  } else {
    process.stderr.write(`credential written to ${credOut}; expires ${challenge.expiresAt.toISOString()}\n`);
    process.stdout.write(`${challenge.activationId}\n`);
  }
}

/** `vouchsafe ca issue-ak`: an AK certificate by route tee (SNP report) or activation (docs/ca.md). */
export function registerIssueAk(ca: Command): void {
  const command = withCommon(ca.command('issue-ak'))
    .description('issue an AK certificate once the AK is shown to live in the instance vTPM')
    .addOption(
      new Option(
        '--route <route>',
        'required: tee (SNP report over the SVSM manifest) or activation (TPM2 credential activation)',
      )
        .choices(['tee', 'activation'])
        .makeOptionMandatory(),
    )
    .option('--instance-id <n>', 'tee and activation step 1: the instance (unsigned 64-bit decimal)')
    .option('--nonce <file>', 'tee: file with the nonce from `ca nonce` (raw 64 bytes or 128 hex digits)')
    .option('--report <file>', 'tee: file with the raw SEV-SNP attestation report')
    .option(
      '--cert-table <file>',
      'tee: file with the extended report certificate table (VCEK/VLEK, ASK, ARK)',
    )
    .option(
      '--manifest <file>',
      'tee: the services manifest (or vTPM payload) the report covers; v1 carries the AK',
    )
    .option('--ak-pub <file>', 'activation step 1: file with the AK public area (tpm2_createak -u)')
    .option(
      '--ek-pub <file>',
      'activation step 1: file with the EK public area (default: the one on record for the instance)',
    )
    .option('--credential-out <file>', 'activation step 1: write the tpm2-tools credential file here')
    .option('--activation-id <id>', 'activation step 2 (given: this is step 2): the id step 1 printed')
    .option('--secret <file>', 'activation step 2: file tpm2_activatecredential -o wrote')
    .option(
      '--csr <file>',
      'file with a PKCS#10 or C509 request for the AK: names, proof of possession (default: none)',
    );
  withCertificateOutput(command)
    .addHelpText(
      'after',
      `
Route tee:         ca nonce --instance-id N > nonce.hex; (guest: SVSM_ATTEST_SERVICES with that nonce)
                   ca issue-ak --route tee --instance-id N --nonce nonce.hex --report r.bin \\
                       --cert-table certs.bin --manifest manifest.bin --out ak.pem
Route activation:  ca issue-ak --route activation --instance-id N --ak-pub ak.pub --credential-out cred.out
                   (guest: tpm2_activatecredential -c ak.ctx -C 0x81010001 -i cred.out -o secret.bin)
                   ca issue-ak --route activation --activation-id ID --secret secret.bin --out ak.pem`,
    )
    .action(
      action(async (o: IssueAkFlags) => {
        const format = outputFormat(o.format);
        const csr = o.csr !== undefined ? readInput(o.csr, '--csr') : undefined;
        if (o.route === 'tee') {
          emit(await issueFromTee(o, format, csr), o);
        } else if (o.activationId !== undefined) {
          const secret = readInput(need('--secret', o.secret), '--secret');
          const activationId = o.activationId;
          emit(await withCa(o, (c) => c.finishActivation({ activationId, secret })), o);
        } else {
          await startActivation(o, format, csr);
        }
      }),
    );
}
