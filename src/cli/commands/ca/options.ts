import { type Command, Option } from 'commander';
import type { OutputFormat } from '../../../ca/index.js';
import { InvalidArgument } from '../../../errors.js';

/**
 * The options the `vouchsafe ca` subcommands share (docs/ca.md "CLI"), defined once so that each
 * reads and is described the same way everywhere.
 */

/** What every subcommand takes: the CA directory, its key passphrase, its database, and the output form. */
export interface CommonFlags {
  dir: string;
  passphraseFile?: string;
  database?: string;
  json?: boolean;
}

/** Where a subcommand writes what it made. */
export interface OutputFlags {
  out?: string;
  der?: boolean;
  json?: boolean;
}

const dirOption = () =>
  new Option('--dir <dir>', 'CA directory (ca.json, ca-key.pem, ca-cert.pem, ca-chain.pem, ca.db)')
    .env('VOUCHSAFE_CA_DIR')
    .default('vouchsafe-ca');
const passOption = () =>
  new Option(
    '--passphrase-file <file>',
    'file whose text (less one trailing newline) is the CA key passphrase (default: key not encrypted)',
  );
const jsonOption = () =>
  new Option('--json', 'print the result as JSON on stdout (default: text, PEM or hex)');
const databaseOption = () =>
  new Option(
    '--database <url>',
    "the CA's database: postgres://... (may be the broker's) or sqlite:<file> (default: ca.db in --dir)",
  ).env('VOUCHSAFE_CA_DATABASE_URL');

/** `--der`: DER instead of PEM. */
export const derOption = () => new Option('--der', 'write X.509 as DER instead of PEM (default: PEM)');

/** `--format`: the certificate form to issue (parsed by {@link outputFormat}). */
const formatOption = () =>
  new Option(
    '--format <format>',
    'certificate form: x509, c509 (natively signed C509, type 2; also c509-type2) or c509-type3 (X.509 re-encoded as C509)',
  ).default('x509');

/**
 * Adds --format, --out and --der, in that order: how an issued certificate is written (run.ts emit).
 */
export function withCertificateOutput(c: Command): Command {
  return c
    .addOption(formatOption())
    .addOption(
      new Option(
        '--out <file>',
        'write the certificate to <file>: PEM, DER with --der, or C509 CBOR (default: PEM or C509 hex on stdout)',
      ),
    )
    .addOption(derOption());
}

/** Adds --dir, --passphrase-file, --database and --json, in that order, to a subcommand. */
export function withCommon(c: Command): Command {
  return c.addOption(dirOption()).addOption(passOption()).addOption(databaseOption()).addOption(jsonOption());
}

/** The `--format` value as the CA's OutputFormat. Throws InvalidArgument `cli.format`. */
export function outputFormat(s: string | undefined): OutputFormat {
  if (s === undefined || s === 'x509') return 'x509';
  if (s === 'c509' || s === 'c509-type2') return 'c509-type2';
  if (s === 'c509-type3') return 'c509-type3';
  throw new InvalidArgument('cli.format', `--format: ${s} is not x509, c509 (= c509-type2) or c509-type3`);
}
