import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  certificatePem,
  type IssuedCertificate,
  PlatformCa,
  type PlatformCaOptions,
} from '../../../ca/index.js';
import { openCaRepository } from '../../../store/ca-open.js';
import type { CaRepository } from '../../../store/ca-types.js';
import { toHex } from '../../../util/bytes.js';
import { Exit, readInput, reportError } from '../../io.js';
import type { CommonFlags, OutputFlags } from './options.js';

/**
 * How a `vouchsafe ca` subcommand runs: opening the CA (directory, passphrase, database), turning a typed
 * error into its exit code (0 done, 1 refused, 2 unusable input or usage), and writing what was issued.
 */

/** The key passphrase from `--passphrase-file`: the file's text without one trailing newline. */
export function passphrase(file: string | undefined): PlatformCaOptions {
  if (file === undefined) return {};
  const text = Buffer.from(readInput(file, '--passphrase-file')).toString('utf8');
  return { passphrase: text.replace(/\r?\n$/, '') };
}

/**
 * Runs `fn` with the repository `--database` names (undefined without it: the directory's ca.db), which
 * is closed here when `fn` fails and otherwise belongs to the CA `fn` made.
 */
export async function withDatabase<T>(
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

/** Opens the CA in `dir` with its passphrase file and database (the caller closes it). */
export function openCa(
  dir: string,
  passphraseFile: string | undefined,
  database: string | undefined,
): Promise<PlatformCa> {
  return withDatabase(database, (repository) =>
    PlatformCa.open(dir, { ...passphrase(passphraseFile), ...(repository ? { repository } : {}) }),
  );
}

/** Runs `fn` on the CA the common flags name, and closes it whatever happens. */
export async function withCa<T>(o: CommonFlags, fn: (ca: PlatformCa) => Promise<T>): Promise<T> {
  const ca = await openCa(o.dir, o.passphraseFile, o.database);
  try {
    return await fn(ca);
  } finally {
    await ca.close();
  }
}

/**
 * A commander action: calls `fn` with the options and the positional arguments, and sets the exit code
 * from what it returns (a number, else 0) or from the typed error it throws (printed by reportError).
 */
export function action<T extends CommonFlags>(fn: (o: T, ...rest: string[]) => Promise<unknown>) {
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

/** Writes an issued certificate: PEM (or DER with --der) for X.509, raw CBOR for C509; stdout without --out. */
export function emit(issued: IssuedCertificate, o: OutputFlags): void {
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
