import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, hkdfSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { NotSupported, Unavailable } from '../../errors.js';

/**
 * The simulated SVSM's vTPM for `vouchsafe demo --platform` and the platform e2e test: swtpm (TPM 2.0) whose
 * persistent state directory is encrypted with a key derived from the state the broker's released sealing
 * key unlocked (swtpm `--key fd=…,mode=aes-256-cbc`: the key goes through a pipe, never to disk). The same
 * released state gives the same key and so the same NV state (the same EK); without it the state cannot be
 * read. tpm2-tools drive it over TCP on 127.0.0.1.
 */

export const VTPM_PACKAGES = 'swtpm swtpm-tools tpm2-tools';
const TOOLS = [
  'swtpm',
  'tpm2_createek',
  'tpm2_createak',
  'tpm2_readpublic',
  'tpm2_sign',
  'tpm2_quote',
  'tpm2_pcrread',
];

/** Throws NotSupported `demo.vtpm_missing`, naming the Debian packages, when swtpm or tpm2-tools are absent. */
export function requireVtpmTools(): void {
  const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length > 0) {
    throw new NotSupported(
      'demo.vtpm_missing',
      `missing ${missing.join(', ')}: install the Debian packages ${VTPM_PACKAGES}`,
    );
  }
}

/**
 * The vTPM state key: HKDF-SHA256 over the state body the released sealing key unsealed (the guest's
 * persistent secret), with a label of its own, so that the key itself is never stored anywhere.
 */
export function vtpmStateKey(releasedState: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', releasedState, new Uint8Array(0), 'vouchsafe vtpm state key v1', 32));
}

/**
 * SHA-256 over the vTPM state directory (each file's name, length and bytes, in name order): what the guest
 * commits at shutdown and checks before the next start, so a host that rolls the NV files back is caught.
 */
export function vtpmStateDigest(dir: string): Uint8Array {
  const h = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    const data = readFileSync(join(dir, name));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(data.length));
    h.update(`${name}\0`).update(len).update(data);
  }
  return new Uint8Array(h.digest());
}

export interface Vtpm {
  readonly port: number;
  /** Runs a tpm2-tools command in `workDir`; throws Unavailable `demo.vtpm_tool` with its stderr. */
  tool(name: string, args: readonly string[]): string;
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
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

/**
 * Starts swtpm on `stateDir` (created state is encrypted under `key`) and returns when it accepts
 * connections. Throws Unavailable `demo.vtpm_start` when it exits first (e.g. a wrong key for the state).
 */
export async function startVtpm(stateDir: string, key: Uint8Array, workDir: string): Promise<Vtpm> {
  let port = 0;
  for (let i = 0; i < 50 && port === 0; i++) {
    const p = 20000 + Math.floor(Math.random() * 20000) * 2;
    if ((await portFree(p)) && (await portFree(p + 1))) port = p;
  }
  if (port === 0) throw new Unavailable('demo.vtpm_start', 'no free TCP port pair for swtpm');
  const child: ChildProcess = spawn(
    'swtpm',
    [
      'socket',
      '--tpm2',
      '--tpmstate',
      `dir=${stateDir}`,
      '--key',
      'fd=3,mode=aes-256-cbc,format=binary',
      '--server',
      `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl',
      `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
      '--flags',
      'not-need-init,startup-clear',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] },
  );
  const keyPipe = child.stdio[3] as NodeJS.WritableStream;
  keyPipe.end(Buffer.from(key));
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Unavailable('demo.vtpm_start', `swtpm exited: ${stderr.trim()}`);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 50))]);
  }
  const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${port}` };
  return {
    port,
    tool(name, args) {
      try {
        return execFileSync(name, args, {
          env,
          cwd: workDir,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Unavailable('demo.vtpm_tool', `${name} failed: ${(err.stderr ?? err.message).trim()}`);
      }
    },
    async stop() {
      if (child.exitCode === null && child.pid !== undefined) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
