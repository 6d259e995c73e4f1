import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A software TPM (swtpm, TPM 2.0 mode) for tests: started on 127.0.0.1 on two free TCP ports (server P,
 * control P+1), with `not-need-init,startup-clear` so the tools can talk to it at once, and stopped (by its
 * own pid) afterwards. Tools from tpm2-tools reach it through TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=P.
 *
 * A test that needs it and finds it missing FAILS with the Debian packages to install; it never skips.
 */

export const SWTPM_PACKAGES = 'swtpm swtpm-tools tpm2-tools';
const TOOLS = [
  'swtpm',
  'tpm2_createek',
  'tpm2_createak',
  'tpm2_activatecredential',
  'tpm2_quote',
  'tpm2_pcrread',
];

/** Throws, naming the Debian packages, when swtpm or tpm2-tools are not installed. */
export function requireSwtpm(): void {
  const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')}: install the Debian packages ${SWTPM_PACKAGES}`);
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = 20000 + Math.floor(Math.random() * 20000) * 2;
    if ((await portFree(p)) && (await portFree(p + 1))) return p;
  }
  throw new Error('no free TCP port pair for swtpm');
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export interface Swtpm {
  readonly port: number;
  /** A scratch directory for tool outputs (removed by stop()). */
  readonly dir: string;
  /** Runs a tpm2-tools command against this TPM; throws with its stderr on failure. */
  tool(name: string, args: readonly string[]): string;
  stop(): Promise<void>;
}

/** Starts a fresh swtpm with its own state directory. Call requireSwtpm() first. */
export async function startSwtpm(): Promise<Swtpm> {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-swtpm-'));
  const port = await freePortPair();
  const child: ChildProcess = spawn(
    'swtpm',
    [
      'socket',
      '--tpm2',
      '--tpmstate',
      `dir=${dir}`,
      '--server',
      `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl',
      `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
      '--flags',
      'not-need-init,startup-clear',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Bounded by attempts (a hang becomes a failure that says so), not by a clock: a busy machine only waits longer.
  for (let i = 0; !(await accepts(port)); i++) {
    if (child.exitCode !== null) throw new Error(`swtpm exited: ${stderr}`);
    if (i >= 600) {
      child.kill('SIGKILL');
      throw new Error(`swtpm did not accept connections on 127.0.0.1:${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${port}` };
  return {
    port,
    dir,
    tool(name, args) {
      try {
        return execFileSync(name, args, {
          env,
          cwd: dir,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`${name} ${args.join(' ')} failed: ${err.stderr ?? err.message}`);
      }
    },
    async stop() {
      if (child.exitCode === null && child.pid !== undefined) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
