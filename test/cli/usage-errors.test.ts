/**
 * How `vouchsafe` fails for an operator (issue 14 "Operations"): an unknown command or option names itself and
 * exits 2 without dumping the whole help; descriptions are not broken at the source's line ends; a reader
 * closing the pipe early is not an error; `serve` on a taken port says so (no stack trace); `guest boot
 * --broker-key` given a certificate is refused by name. The CLI is run from the sources (not dist/,
 * which other work in progress may leave stale): src/cli/main.ts through tsx, or its .build/ compile under
 * `npm test` (test/helpers/paths.ts); the entry point is the same.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodePem } from '../../src/formats/pem.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SimChain,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { loaderFor, ROOT, runnable } from '../helpers/paths.js';

const MAIN = runnable('src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; with `closeStdout` our end of its stdout is closed at once, as `| head -0` would. */
function cli(args: string[], opts: { closeStdout?: boolean } = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [...loaderFor(MAIN), MAIN, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    if (opts.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const noStack = (r: Run) => {
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, r.stderr);
};

let dir: string;
let chain: SimChain;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vouchsafe-usage-'));
  chain = await sharedSimChain('Milan');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('vouchsafe usage errors', () => {
  it('an unknown command exits 2 naming it, without the whole help', async () => {
    const r = await cli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
    assert.doesNotMatch(r.stderr, /Commands:/);
  });

  it('an unknown option exits 2 naming it, without the whole help', async () => {
    const r = await cli(['inspect', 'snp', '--bogus', 'x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--bogus'/);
    assert.doesNotMatch(r.stderr, /Options:/);
  });

  it('--help joins descriptions written over several source lines before wrapping', async () => {
    const r = await cli(['verify', 'snp', '--help']);
    assert.equal(r.code, 0);
    // The description is written "...pinned AMD root, TCB and\nCHIP_ID binding..." in the source.
    assert.match(r.stdout, /TCB and CHIP_ID/);
  });

  it('a reader that closes the pipe early is not an error', async () => {
    const fw = new SimSnpFirmware(chain, {
      measurement: SIM_DEFAULT_MEASUREMENT,
      policy: SIM_DEFAULT_POLICY,
      hostData: new Uint8Array(32),
    });
    const report = join(dir, 'report.bin');
    writeFileSync(report, fw.getReport(new Uint8Array(64)).report);
    const r = await cli(['inspect', 'snp', report, '--json'], { closeStdout: true });
    noStack(r);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
  });

  it('serve on a port in use says so, exit 2, no stack trace', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await cli([
        'serve',
        '--listen',
        `127.0.0.1:${port}`,
        '--data',
        join(dir, 'data'),
        '--no-kds',
      ]);
      noStack(r);
      assert.match(r.stderr, /ERR_INVALID_ARGUMENT cli\.listen/);
      assert.equal(r.code, 2);
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  });

  it('serve with a bad number for an option names it, exit 2, before anything starts (no stack trace)', async () => {
    const cases: [string, string, RegExp][] = [
      ...['65', '-1', 'x', '1.5', '01'].map(
        (v) =>
          ['--ecdh-threads', v, /--ecdh-threads: expected an integer in 0\.\.64/] as [string, string, RegExp],
      ),
      ['--max-connections', '0', /--max-connections: expected a positive integer/],
      ['--headers-timeout', 'soon', /--headers-timeout: expected a positive integer/],
    ];
    for (const [flag, v, message] of cases) {
      const r = await cli(['serve', flag, v, '--data', join(dir, 'never'), '--no-kds']);
      noStack(r);
      assert.match(r.stderr, /^error: ERR_INVALID_ARGUMENT cli\.options: /);
      assert.match(r.stderr, message);
      assert.equal(r.code, 2);
    }
    assert.throws(() => statSync(join(dir, 'never')), { code: 'ENOENT' });
  });

  it('guest boot --broker-key given a certificate or a private key is refused by name', async () => {
    const cert = join(dir, 'cert.pem');
    writeFileSync(cert, encodePem('CERTIFICATE', chain.vcek.der));
    const priv = join(dir, 'priv.pem');
    const { privateKey } = newKeyPairSync('ec', { namedCurve: 'P-384' });
    writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    for (const file of [cert, priv]) {
      const r = await cli([
        'guest',
        'boot',
        '--connect',
        'tcp:127.0.0.1:1',
        '--state',
        join(dir, 's'),
        '--broker-key',
        file,
      ]);
      noStack(r);
      assert.match(r.stderr, /ERR_INVALID_ARGUMENT cli\.broker_key/);
      assert.equal(r.code, 2);
    }
  });
});
