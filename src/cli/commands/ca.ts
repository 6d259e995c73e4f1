import { writeFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import {
  type CaConfig,
  CrlReason,
  certificatePem,
  crlPem,
  type IssuedCertificate,
  type OutputFormat,
  PlatformCa,
  type PlatformCaOptions,
} from '../../ca/index.js';
import { InvalidArgument } from '../../errors.js';
import type { InstanceIdentity } from '../../formats/x509/instance-identity.js';
import { openCaRepository } from '../../store/ca-open.js';
import type { CaRepository } from '../../store/ca-types.js';
import { toHex } from '../../util/bytes.js';
import { Exit, readInput, reportError } from '../io.js';

/**
 * `vouchsafe ca ...`: the platform CA on the command line (docs/ca.md). Every subcommand works on a CA
 * directory (`--dir`, default $VOUCHSAFE_CA_DIR or ./vouchsafe-ca) and its database: `ca.db` there, or
 * the one `--database` names (PostgreSQL; $VOUCHSAFE_CA_DATABASE_URL). Exit codes as `vouchsafe verify`:
 * 0 done, 1 refused (the CA declined: code and reason printed), 2 unusable input or usage.
 */

const DEFAULT_DIR = process.env.VOUCHSAFE_CA_DIR ?? 'vouchsafe-ca';

interface Common {
  dir: string;
  passphraseFile?: string;
  database?: string;
  json?: boolean;
}

function passphrase(file: string | undefined): PlatformCaOptions {
  if (file === undefined) return {};
  const text = Buffer.from(readInput(file, '--passphrase-file')).toString('utf8');
  return { passphrase: text.replace(/\r?\n$/, '') };
}

/**
 * Runs `fn` with the repository `--database` names (undefined without it: the directory's ca.db), which
 * is closed here when `fn` fails and otherwise belongs to the CA `fn` made.
 */
async function withDatabase<T>(
  database: string | undefined,
  fn: (repository: CaRepository | undefined) => Promise<T>,
): Promise<T> {
  const repository = database === undefined ? undefined : await openCaRepository(database);
  try {
    return await fn(repository);
  } catch (e) {
    await repository?.close();
    throw e;
  }
}

function openCa(dir: string, passphraseFile: string | undefined, database: string | undefined) {
  return withDatabase(database, (repository) =>
    PlatformCa.open(dir, { ...passphrase(passphraseFile), ...(repository ? { repository } : {}) }),
  );
}

/** Runs an action: prints a typed error and sets the exit code (0/1/2). */
function action<T extends Common>(fn: (o: T, ...rest: string[]) => Promise<unknown>) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const o = cmd.opts() as T;
    const positional = args.slice(0, -2).map(String);
    try {
      const code = await fn(o, ...positional);
      process.exitCode = typeof code === 'number' ? code : Exit.Ok;
    } catch (e) {
      process.exitCode = reportError(e, o.json === true);
    }
  };
}

async function withCa<T>(o: Common, fn: (ca: PlatformCa) => Promise<T>): Promise<T> {
  const ca = await openCa(o.dir, o.passphraseFile, o.database);
  try {
    return await fn(ca);
  } finally {
    await ca.close();
  }
}

function format(s: string | undefined): OutputFormat {
  if (s === undefined || s === 'x509') return 'x509';
  if (s === 'c509' || s === 'c509-type2') return 'c509-type2';
  if (s === 'c509-type3') return 'c509-type3';
  throw new InvalidArgument('cli.format', `--format: ${s} is not x509, c509 (= c509-type2) or c509-type3`);
}

function u64(s: string | undefined, flag: string): bigint {
  if (s === undefined || !/^\d{1,20}$/.test(s) || BigInt(s) >= 1n << 64n) {
    throw new InvalidArgument('cli.identity', `${flag} must be an unsigned 64-bit decimal integer`);
  }
  return BigInt(s);
}

function text(s: unknown, flag: string): string {
  if (typeof s !== 'string' || s.length === 0)
    throw new InvalidArgument('cli.identity', `${flag} is required`);
  return s;
}

interface IdentityFlags {
  identity?: string;
  projectId?: string;
  projectNumber?: string;
  zone?: string;
  instanceId?: string;
  instanceName?: string;
}

/** The instance identity from --identity (JSON text or @file) or the individual flags. */
function identityFrom(o: IdentityFlags): InstanceIdentity {
  if (o.identity !== undefined) {
    const raw = o.identity.startsWith('@')
      ? Buffer.from(readInput(o.identity.slice(1), '--identity')).toString('utf8')
      : o.identity;
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw new InvalidArgument('cli.identity', '--identity is not JSON');
    }
    if (typeof j !== 'object' || j === null)
      throw new InvalidArgument('cli.identity', '--identity must be an object');
    return {
      projectId: text(j.projectId, 'identity.projectId'),
      projectNumber: u64(String(j.projectNumber), 'identity.projectNumber'),
      zone: text(j.zone, 'identity.zone'),
      instanceId: u64(String(j.instanceId), 'identity.instanceId'),
      instanceName: text(j.instanceName, 'identity.instanceName'),
    };
  }
  return {
    projectId: text(o.projectId, '--project-id'),
    projectNumber: u64(o.projectNumber, '--project-number'),
    zone: text(o.zone, '--zone'),
    instanceId: u64(o.instanceId, '--instance-id'),
    instanceName: text(o.instanceName, '--instance-name'),
  };
}

/** Writes an issued certificate: PEM (or DER with --der) for X.509, raw CBOR for C509; stdout without --out. */
function emit(issued: IssuedCertificate, o: { out?: string; der?: boolean; json?: boolean }): void {
  const c509 = issued.c509;
  if (o.out !== undefined) {
    if (c509) writeFileSync(o.out, c509);
    else writeFileSync(o.out, o.der ? issued.der : certificatePem(issued.der));
  }
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          serial: issued.serial,
          kind: issued.kind,
          format: issued.format,
          notBefore: issued.notBefore.toISOString(),
          notAfter: issued.notAfter.toISOString(),
          certificate: Buffer.from(issued.der).toString('base64'),
          ...(c509 ? { c509: Buffer.from(c509).toString('base64') } : {}),
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  process.stderr.write(`issued ${issued.kind} certificate serial ${issued.serial} (${issued.format})\n`);
  if (o.out === undefined) process.stdout.write(c509 ? `${toHex(c509)}\n` : certificatePem(issued.der));
}

const dirOption = () => new Option('--dir <dir>', 'CA directory').default(DEFAULT_DIR);
const passOption = () => new Option('--passphrase-file <file>', 'file holding the CA key passphrase');
const jsonOption = () => new Option('--json', 'machine-readable output on stdout');
const databaseOption = () =>
  new Option(
    '--database <url>',
    "the CA's database when it is not ca.db in --dir: postgres://... (may be the broker's), or sqlite:<file>",
  ).env('VOUCHSAFE_CA_DATABASE_URL');
const formatOption = () =>
  new Option(
    '--format <format>',
    'x509, c509 (natively signed, type 2) or c509-type3 (re-encoded X.509)',
  ).default('x509');

function withCommon(c: Command): Command {
  return c.addOption(dirOption()).addOption(passOption()).addOption(databaseOption()).addOption(jsonOption());
}

/** Registers `vouchsafe ca` and its subcommands. */
export function register(program: Command): void {
  const ca = program
    .command('ca')
    .description('platform CA: EK and AK certificates for vTPMs, revocation, CRLs (docs/ca.md)');

  withCommon(ca.command('init'))
    .description('create a CA (key, certificate, ca.json, database) in --dir')
    .addOption(
      new Option('--key-type <type>', 'CA key type')
        .choices(['p384', 'p256', 'rsa2048', 'rsa3072'])
        .default('p384'),
    )
    .option('--subject <dn>', 'CA subject (RFC 4514)', 'CN=Vouchsafe Platform CA')
    .option(
      '--issuer-dir <dir>',
      'issue this CA as an intermediate of the CA in <dir> (default: self-signed root)',
    )
    .option('--issuer-passphrase-file <file>', 'passphrase of the issuing CA key')
    .option('--issuer-database <url>', "the issuing CA's database when it is not ca.db in --issuer-dir")
    .option('--crl-url <url...>', 'CRL distribution point URI(s) for issued certificates')
    .option('--ca-issuers-url <url>', 'authorityInfoAccess caIssuers URI for issued certificates')
    .option(
      '--identity-oid <oid>',
      'OID of the instance-identity extension (default GCE 1.3.6.1.4.1.11129.2.1.21)',
    )
    .addHelpText(
      'after',
      '\nWrites ca.json (edit it for lifetimes, TPM info, AK subject, SNP roots and policy), ca-key.pem (0600),\nca-cert.pem, ca-chain.pem and ca.db (or the tables in --database). The key is encrypted when --passphrase-file is given.',
    )
    .action(
      action(async (o: Common & Record<string, string | string[] | undefined>) => {
        const config: Partial<Omit<CaConfig, 'version' | 'keyType'>> = {
          ...(o.crlUrl ? { crlDistributionPoints: o.crlUrl as string[] } : {}),
          ...(o.caIssuersUrl ? { caIssuersUrl: o.caIssuersUrl as string } : {}),
          ...(o.identityOid ? { identityOid: o.identityOid as string } : {}),
        };
        let issuer: PlatformCa | undefined;
        if (o.issuerDir) {
          issuer = await openCa(
            o.issuerDir as string,
            o.issuerPassphraseFile as string | undefined,
            o.issuerDatabase as string | undefined,
          );
        }
        try {
          const created = await withDatabase(o.database, (repository) =>
            PlatformCa.init({
              dir: o.dir,
              keyType: o.keyType as 'p384',
              subject: o.subject as string,
              ...(issuer ? { issuer } : {}),
              config,
              ...passphrase(o.passphraseFile),
              ...(repository ? { repository } : {}),
            }),
          );
          await created.close();
          if (o.json) {
            process.stdout.write(
              `${JSON.stringify({ dir: o.dir, certificate: Buffer.from(created.certificate).toString('base64') })}\n`,
            );
          } else {
            process.stderr.write(`created ${issuer ? 'intermediate' : 'root'} CA in ${o.dir}\n`);
            process.stdout.write(certificatePem(created.certificate));
          }
        } finally {
          await issuer?.close();
        }
      }),
    );

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
    .option('--der', 'write DER instead of PEM')
    .action(
      action(async (o: Common & IdentityFlags & Record<string, string | boolean | undefined>) => {
        const identity = identityFrom(o);
        const ekPublic = readInput(o.ekPub as string, '--ek-pub');
        const fmt = format(o.format as string | undefined);
        const issued = await withCa(o, (c) => {
          const tpm =
            o.tpmManufacturer || o.tpmModel || o.tpmVersion
              ? {
                  manufacturer: (o.tpmManufacturer as string) ?? c.config.tpm.manufacturer,
                  model: (o.tpmModel as string) ?? c.config.tpm.model,
                  version: (o.tpmVersion as string) ?? c.config.tpm.version,
                }
              : undefined;
          return c.issueEk({ ekPublic, identity, format: fmt, ...(tpm ? { tpm } : {}) });
        });
        emit(issued, o as { out?: string; der?: boolean; json?: boolean });
      }),
    );

  withCommon(ca.command('nonce'))
    .description('issue a single-use 64-byte nonce for a TEE-bound AK request (route tee)')
    .requiredOption('--instance-id <n>', 'the instance the nonce is for')
    .option('--out <file>', 'write the raw nonce here (default: hex on stdout)')
    .action(
      action(async (o: Common & { instanceId: string; out?: string }) => {
        const nonce = await withCa(o, (c) => c.createNonce(u64(o.instanceId, '--instance-id')));
        if (o.out !== undefined) writeFileSync(o.out, nonce);
        else process.stdout.write(`${toHex(nonce)}\n`);
      }),
    );

  withCommon(ca.command('issue-ak'))
    .description('issue an AK certificate once the AK is shown to live in the instance vTPM')
    .addOption(
      new Option(
        '--route <route>',
        'tee: SNP report over the SVSM manifest; activation: TPM2 credential activation',
      )
        .choices(['tee', 'activation'])
        .makeOptionMandatory(),
    )
    .option('--instance-id <n>', 'the instance (tee; activation step 1)')
    .option('--nonce <file>', 'tee: the nonce from `ca nonce` (raw 64 bytes or hex)')
    .option('--report <file>', 'tee: the SEV-SNP attestation report')
    .option('--cert-table <file>', 'tee: the extended report certificate table (VCEK/VLEK, ASK, ARK)')
    .option(
      '--manifest <file>',
      'tee: the services manifest (or vTPM payload) the report covers; v1 carries the AK',
    )
    .option('--ak-pub <file>', 'activation step 1: the AK public area (tpm2_createak -u)')
    .option('--ek-pub <file>', 'activation step 1: the EK public area (default: the one on record)')
    .option('--credential-out <file>', 'activation step 1: write the tpm2-tools credential file here')
    .option('--activation-id <id>', 'activation step 2: the id step 1 printed')
    .option('--secret <file>', 'activation step 2: what tpm2_activatecredential -o wrote')
    .option('--csr <file>', 'a PKCS#10 or C509 request for the AK (names, proof of possession)')
    .addOption(formatOption())
    .option('--out <file>', 'write the certificate here')
    .option('--der', 'write DER instead of PEM')
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
      action(async (o: Common & Record<string, string | boolean | undefined>) => {
        const fmt = format(o.format as string | undefined);
        const csr = o.csr !== undefined ? readInput(o.csr as string, '--csr') : undefined;
        const need = (flag: string, v: unknown): string => {
          if (typeof v !== 'string')
            throw new InvalidArgument('cli.usage', `${flag} is required for this route`);
          return v;
        };
        if (o.route === 'tee') {
          const nonceFile = readInput(need('--nonce', o.nonce), '--nonce');
          const asText = Buffer.from(nonceFile).toString('latin1').trim();
          const nonce = /^[0-9a-fA-F]{128}$/.test(asText)
            ? new Uint8Array(Buffer.from(asText, 'hex'))
            : nonceFile;
          const issued = await withCa(o, (c) =>
            c.issueAkFromTee({
              instanceId: u64(need('--instance-id', o.instanceId), '--instance-id'),
              nonce,
              report: readInput(need('--report', o.report), '--report'),
              certTable: readInput(need('--cert-table', o.certTable), '--cert-table'),
              manifest: readInput(need('--manifest', o.manifest), '--manifest'),
              format: fmt,
              ...(csr ? { csr } : {}),
            }),
          );
          emit(issued, o as { out?: string; der?: boolean; json?: boolean });
          return;
        }
        if (o.activationId !== undefined) {
          const secret = readInput(need('--secret', o.secret), '--secret');
          const issued = await withCa(o, (c) =>
            c.finishActivation({ activationId: o.activationId as string, secret }),
          );
          emit(issued, o as { out?: string; der?: boolean; json?: boolean });
          return;
        }
        const credOut = need('--credential-out', o.credentialOut);
        const challenge = await withCa(o, (c) =>
          c.startActivation({
            instanceId: u64(need('--instance-id', o.instanceId), '--instance-id'),
            akPublic: readInput(need('--ak-pub', o.akPub), '--ak-pub'),
            ...(o.ekPub !== undefined ? { ekPublic: readInput(o.ekPub as string, '--ek-pub') } : {}),
            format: fmt,
            ...(csr ? { csr } : {}),
          }),
        );
        writeFileSync(credOut, challenge.credentialFile);
        if (o.json) {
          process.stdout.write(
            `${JSON.stringify({ activationId: challenge.activationId, expiresAt: challenge.expiresAt.toISOString() })}\n`,
          );
        } else {
          process.stderr.write(
            `credential written to ${credOut}; expires ${challenge.expiresAt.toISOString()}\n`,
          );
          process.stdout.write(`${challenge.activationId}\n`);
        }
      }),
    );

  withCommon(ca.command('revoke'))
    .description('revoke a certificate by serial number (hex)')
    .argument('<serial>', 'serial number in hex')
    .addOption(
      new Option('--reason <reason>', 'RFC 5280 CRLReason')
        .choices(Object.keys(CrlReason))
        .default('unspecified'),
    )
    .action(
      action(async (o: Common & { reason: keyof typeof CrlReason }, serial?: string) => {
        const result = await withCa(o, (c) => c.revoke(serial ?? '', CrlReason[o.reason]));
        if (o.json) process.stdout.write(`${JSON.stringify({ serial, result })}\n`);
        else process.stderr.write(`${serial}: ${result.replace('_', ' ')}\n`);
      }),
    );

  withCommon(ca.command('crl'))
    .description('sign a new CRL (next CRL number) listing every revoked certificate')
    .option('--out <file>', 'write the CRL here (PEM, DER with --der; default stdout PEM)')
    .option('--der', 'write DER instead of PEM')
    .action(
      action(async (o: Common & { out?: string; der?: boolean }) => {
        const crl = await withCa(o, (c) => c.generateCrl());
        if (o.out !== undefined) writeFileSync(o.out, o.der ? crl.der : crlPem(crl.der));
        if (o.json) {
          process.stdout.write(
            `${JSON.stringify({ crlNumber: crl.number, nextUpdate: new Date(crl.nextUpdate).toISOString(), crl: Buffer.from(crl.der).toString('base64') })}\n`,
          );
        } else {
          process.stderr.write(`CRL number ${crl.number}\n`);
          if (o.out === undefined) process.stdout.write(crlPem(crl.der));
        }
      }),
    );

  withCommon(ca.command('verify-log'))
    .description('recompute the issuance log hash chain (exit 1 when it was tampered with)')
    .action(
      action(async (o: Common) => {
        const v = await withCa(o, (c) => c.verifyLog());
        process.stdout.write(`${JSON.stringify(v)}\n`);
        return v.ok ? Exit.Ok : Exit.Rejected;
      }),
    );
}
