/**
 * A throwaway SoftHSM2 token for tests: a temp dir with its own softhsm2.conf (SOFTHSM2_CONF, read by the
 * module at C_Initialize) and token directory, one token initialised with `softhsm2-util --init-token`, and
 * a PIN file (0600) for the URIs' pin-source. `stop()` finalises the module and deletes the directory.
 * SoftHSM2 missing FAILS the test naming the Debian package (softhsm2); it never skips.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closePkcs11 } from '../../src/keys/index.js';

const MODULES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
];

export interface TestToken {
  readonly dir: string;
  readonly modulePath: string;
  readonly label: string;
  readonly pin: string;
  readonly pinFile: string;
  /** `pkcs11:token=<label>;object=<object>?module-path=…&pin-source=<pinFile>` */
  uri(object: string, extra?: string): string;
  /**
   * Initialises another token (label, PIN). Only before the first key is opened: SoftHSM lists its tokens
   * at C_Initialize.
   */
  addToken(label: string, pin: string): void;
  stop(): void;
}

export function softhsmModule(): string {
  const found = MODULES.find((m) => existsSync(m));
  let util = false;
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
    util = true;
  } catch {
    util = false;
  }
  if (!found || !util) {
    throw new Error(
      'SoftHSM2 (libsofthsm2.so, softhsm2-util) not found: install the Debian package softhsm2',
    );
  }
  return found;
}

/** Starts a token; one per test process (SoftHSM reads SOFTHSM2_CONF once, at C_Initialize). */
export function startTestToken(label = 'vouchsafe-test'): TestToken {
  const modulePath = softhsmModule();
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pin = '4711-test-pin';
  const addToken = (l: string, p: string) =>
    execFileSync(
      'softhsm2-util',
      ['--init-token', '--free', '--label', l, '--pin', p, '--so-pin', '0815-test-so-pin'],
      {
        env: { ...process.env, SOFTHSM2_CONF: conf },
        stdio: 'ignore',
      },
    );
  addToken(label, pin);
  const pinFile = join(dir, 'pin');
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  return {
    dir,
    modulePath,
    label,
    pin,
    pinFile,
    addToken,
    uri: (object, extra = '') =>
      `pkcs11:token=${label};object=${object}${extra}?module-path=${modulePath}&pin-source=${pinFile}`,
    stop() {
      closePkcs11();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
