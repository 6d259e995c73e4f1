import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { assertDistCurrent } from '../helpers/dist.js';
import { ROOT } from '../helpers/paths.js';

// bin/vouchsafe.js runs the compiled dist/: refuse to test a missing or stale build.
assertDistCurrent();

/** The `vouchsafe` command exactly as a user runs it. */
export const VOUCHSAFE_BIN = join(ROOT, 'bin', 'vouchsafe.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `vouchsafe ARGS` to completion, returning its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [VOUCHSAFE_BIN, ...args],
      { env: { ...process.env, ...env }, maxBuffer: 16 << 20, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** Runs `vouchsafe ARGS` synchronously; stdout as bytes (C509 output is binary). */
export function runCliSync(args: string[]): { code: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [VOUCHSAFE_BIN, ...args], {
    encoding: 'buffer',
    maxBuffer: 16 << 20,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

export interface Daemon {
  readonly p: ChildProcess;
  /** The match of `ready` in the output. */
  readonly match: RegExpMatchArray;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
}

/**
 * Starts a long-running `vouchsafe ARGS` (serve, proxy, guest boot --hold) and resolves once its output
 * matches `ready`; rejects if it exits first or is not ready within `timeoutMs` (then it is killed).
 */
export function startCli(args: string[], ready: RegExp, timeoutMs = 60_000): Promise<Daemon> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, [VOUCHSAFE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      p.kill('SIGKILL');
      fail(new Error(`not ready: vouchsafe ${args.join(' ')}\n${out}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        done({ p, match: m, output: () => out });
      }
    };
    p.stdout.on('data', onData);
    p.stderr.on('data', onData);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (!settled) fail(new Error(`exited ${code}: vouchsafe ${args.join(' ')}\n${out}`));
    });
  });
}

/** Resolves with the exit code (or signal) once the process has exited. */
export function exited(p: ChildProcess): Promise<number | string | null> {
  return new Promise((r) => {
    if (p.exitCode !== null || p.signalCode !== null) r(p.exitCode ?? p.signalCode);
    else p.once('close', (code, signal) => r(code ?? signal));
  });
}

/** A loopback TCP port free at the time of asking (for a `--listen` the test chooses). */
export function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

/**
 * A test file's scratch: a temporary folder `tmp` and `daemon` (startCli whose process is killed), both
 * removed after the file's tests.
 */
export function cliScratch(prefix: string): {
  readonly tmp: string;
  daemon(args: string[], ready: RegExp): Promise<ChildProcess>;
} {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  });
  return {
    tmp,
    daemon: async (args, ready) => {
      const d = await startCli(args, ready);
      children.push(d.p);
      return d.p;
    },
  };
}

/** `vouchsafe sim init --dir DIR` (must succeed); the `--trust-sim-root` value it prints. */
export async function simInit(dir: string): Promise<string> {
  const init = await runCli(['sim', 'init', '--dir', dir]);
  assert.equal(init.code, 0, init.stderr);
  const pin = /--trust-sim-root (\S+)/.exec(init.stdout)?.[1];
  assert.ok(pin, 'sim init prints the root to trust');
  return pin;
}

/**
 * `vouchsafe instance register ... --json` in project `p`, zone `z` (must succeed), with `api` the
 * `--broker`/`--token-file` (or `--data`) options; the registered instance.
 */
export async function registerInstance(
  api: readonly string[],
  o: { readonly instanceId: string; readonly name: string; readonly policy: string },
  // biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON, read freely by the tests
): Promise<any> {
  const reg = await runCli([
    'instance',
    'register',
    ...api,
    '--project',
    'p',
    '--zone',
    'z',
    '--instance-id',
    o.instanceId,
    '--name',
    o.name,
    '--policy',
    o.policy,
    '--json',
  ]);
  assert.equal(reg.code, 0, reg.stderr);
  return JSON.parse(reg.stdout);
}
