/**
 * Starts one of COCONUT's real aproxy builds (../shared/tools/aproxy, README there: svsm PR #1122 head
 * 3e503918, PR #1203 head bdf46eda, built unmodified) on a unix socket in front of a KBS URL. A missing
 * binary is a failure naming where it was looked for, never a skip.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT } from '../helpers/paths.js';

export const APROXY_DIR = process.env.VOUCHSAFE_APROXY_DIR ?? resolve(ROOT, '../shared/tools/aproxy');

export interface RealAproxy {
  readonly socket: string;
  /** stderr so far (the binary's own errors). */
  stderr(): string;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** The three builds: svsm main's (protocol 0.1.0) and the two proposals. */
export type AproxyBuild = 'aproxy' | 'aproxy-pr1122' | 'aproxy-pr1203';

export function aproxyBinary(name: AproxyBuild): string {
  const path = join(APROXY_DIR, name);
  if (!existsSync(path)) {
    throw new Error(
      `${name} not found at ${path}: set VOUCHSAFE_APROXY_DIR to the folder of COCONUT's aproxy builds`,
    );
  }
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${name} at ${path} is not executable (chmod +x it, or set VOUCHSAFE_APROXY_DIR)`);
  }
  return path;
}

/** Spawns `name --url URL --protocol MODE --unix SOCKET --force` and waits until its socket accepts. */
export async function startRealAproxy(
  name: AproxyBuild,
  o: { url: string; protocol: 'kbs' | 'kbs-trustee'; socket: string },
): Promise<RealAproxy> {
  const bin = aproxyBinary(name);
  const child: ChildProcess = spawn(
    bin,
    ['--url', o.url, '--protocol', o.protocol, '--unix', o.socket, '--force'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // The socket file appears at bind(), before listen(): a connect in between is refused. Wait until it
  // listens (or the child exits), bounded by attempts, not by a clock.
  for (let i = 0; !listening(o.socket); i++) {
    if (child.exitCode !== null || i > 3000) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start listening on ${o.socket}: ${err.slice(0, 500)}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    socket: o.socket,
    stderr: () => err,
    exited,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/**
 * Whether a socket bound at `path` is listening, read from /proc/net/unix (Flags 00010000 is __SO_ACCEPTCON,
 * set by listen()). Not probed by connecting: the 0.1.0 aproxy exits when a client disconnects unheard.
 */
function listening(path: string): boolean {
  let table: string;
  try {
    table = readFileSync('/proc/net/unix', 'latin1');
  } catch (e) {
    throw new Error(`cannot read /proc/net/unix to see whether ${path} listens (Linux only): ${e}`);
  }
  return table.split('\n').some((line) => {
    const f = line.trim().split(/\s+/);
    return f.length >= 8 && f[7] === path && f[3] === '00010000';
  });
}
