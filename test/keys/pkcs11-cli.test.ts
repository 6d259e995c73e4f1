/**
 * `vouchsafe serve --kek pkcs11:… --signing-key pkcs11:…` (the compiled CLI) against a SoftHSM2 token: no key
 * file is written, the served broker key is the token's, and a wrong PIN exits 2 with its reason and without
 * the PIN anywhere in the output.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describePublicKey } from '../../src/api/broker-keys.js';
import { pkcs11Keys } from '../../src/keys/index.js';
import { exited, runCli, startCli } from '../cli/run-cli.js';
import { assertDistBuilt } from '../helpers/dist.js';
import { startTestToken, type TestToken } from '../helpers/softhsm.js';

let token: TestToken;
let dir: string;
before(() => {
  assertDistBuilt();
  token = startTestToken();
  dir = mkdtempSync(join(tmpdir(), 'vouchsafe-pkcs11-cli-'));
});
after(() => {
  token?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('vouchsafe serve with keys in a PKCS#11 token', () => {
  it('starts with the KEK and the signing key in the token; GET /v1/broker-key is the token key', async () => {
    const data = join(dir, 'data');
    const s = await startCli(
      [
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--data',
        data,
        '--no-kds',
        '--log-level',
        'warn',
        '--kek',
        token.uri('cli-kek'),
        '--signing-key',
        token.uri('cli-signing'),
        '--token-keys-pkcs11',
        token.uri('cli-ear'),
      ],
      /listening on (http:\/\/127\.0\.0\.1:\d+)/,
    );
    try {
      const url = s.match[1]!;
      const served = (await (await fetch(`${url}/v1/broker-key`)).json()) as Record<string, string>;
      assert.match(s.output(), /\/v1\/broker-key \(the key is in the PKCS#11 token\)/);
      assert.equal(existsSync(join(data, 'kek')), false);
      assert.equal(existsSync(join(data, 'broker-signing-key.pem')), false);
      // The key the broker made in the token on its first run (the child's), opened here by URI.
      const mine = describePublicKey(pkcs11Keys.signer(token.uri('cli-signing')).publicKey);
      assert.equal(served.sha256, mine.sha256);
      assert.ok(!s.output().includes(token.pin));
    } finally {
      s.p.kill('SIGTERM');
      assert.equal(await exited(s.p), 0, s.output());
    }
  });

  it('a wrong PIN exits 2 with keys.pkcs11.pin_incorrect; the PIN is not printed', async () => {
    const wrong = join(dir, 'wrong-pin');
    writeFileSync(wrong, '0000-wrong-pin\n', { mode: 0o600 });
    const uri = token.uri('cli-kek').replace(token.pinFile, wrong);
    const r = await runCli([
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--data',
      join(dir, 'd2'),
      '--no-kds',
      '--kek',
      uri,
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /keys\.pkcs11\.pin_incorrect/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('0000-wrong-pin'));
  });

  it('a PIN in the URI (pin-value) is refused before anything is opened', async () => {
    const r = await runCli([
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--data',
      join(dir, 'd3'),
      '--no-kds',
      '--kek',
      `pkcs11:token=${token.label};object=k?module-path=${token.modulePath}&pin-value=1234`,
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /keys\.pkcs11\.uri/);
  });

  it('ca init --key pkcs11:… keeps the CA key in the token; ca crl on that directory signs with it', async () => {
    const ca = join(dir, 'ca');
    const init = await runCli([
      'ca',
      'init',
      '--dir',
      ca,
      '--key-type',
      'p256',
      '--key',
      token.uri('cli-ca'),
    ]);
    assert.equal(init.code, 0, init.stderr);
    assert.equal(existsSync(join(ca, 'ca-key.pem')), false);
    assert.ok(existsSync(join(ca, 'ca-key.uri')));
    const crl = await runCli(['ca', 'crl', '--dir', ca]);
    assert.equal(crl.code, 0, crl.stderr);
    const { X509Certificate } = await import('node:crypto');
    const root = new X509Certificate(init.stdout);
    assert.ok(root.publicKey.equals(pkcs11Keys.signer(token.uri('cli-ca')).publicKey));
    assert.match(crl.stdout, /BEGIN X509 CRL/);
  });
});
