import { readFileSync, statSync } from 'node:fs';
import { AttestationError, InvalidArgument, PolicyRejected } from '../errors.js';

/** Exit codes shared by every `vouchsafe` command. */
export const Exit = { Ok: 0, Rejected: 1, Unusable: 2 } as const;

/** Largest input file a command reads (reports are 1184 bytes; certificate bundles a few KiB). */
const MAX_INPUT = 4 << 20;

/** Reads a file for a command, refusing directories, missing files and anything over 4 MiB. */
export function readInput(path: string, what: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new InvalidArgument('cli.input', `${what}: ${path} is not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof AttestationError) throw e;
    throw new InvalidArgument('cli.input', `${what}: cannot read ${path}`);
  }
  if (size > MAX_INPUT)
    throw new InvalidArgument('cli.input', `${what}: ${path} is larger than ${MAX_INPUT} bytes`);
  return new Uint8Array(readFileSync(path));
}

/**
 * Maps an error to an exit code and prints it: `error: CODE reason: message` (and each policy failure on its
 * own line). Verification and policy failures exit 1 (rejected); malformed input, bad arguments, missing
 * collateral and an unreachable service exit 2 (unusable); anything untyped is a bug and is printed with its stack.
 */
export function reportError(e: unknown, json: boolean): number {
  if (!(e instanceof AttestationError)) {
    process.stderr.write(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return Exit.Unusable;
  }
  const unusable = [
    'ERR_MALFORMED',
    'ERR_INVALID_ARGUMENT',
    'ERR_COLLATERAL_UNAVAILABLE',
    'ERR_UNAVAILABLE',
    'ERR_NOT_SUPPORTED',
  ];
  const exit = unusable.includes(e.code) ? Exit.Unusable : Exit.Rejected;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ verdict: exit === Exit.Rejected ? 'rejected' : 'error', error: e.toJSON() }, null, 2)}\n`,
    );
  } else {
    process.stderr.write(`error: ${e.code} ${e.reason}: ${e.message}\n`);
    if (e instanceof PolicyRejected) {
      for (const f of e.failures) {
        const detail = f.expected !== undefined ? ` (expected ${f.expected}, got ${f.actual})` : '';
        process.stderr.write(`  - ${f.code}: ${f.message}${detail}\n`);
      }
    }
  }
  return exit;
}

/** Parses `--at TIME`: an ISO 8601 date or Unix seconds. */
export function parseTime(s: string | undefined): Date {
  if (s === undefined) return new Date();
  const d = /^\d+$/.test(s) ? new Date(Number(s) * 1000) : new Date(s);
  if (Number.isNaN(d.getTime())) throw new InvalidArgument('cli.time', `--at: not a time: ${s}`);
  return d;
}
