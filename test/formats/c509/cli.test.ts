import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCliSync } from '../../cli/run-cli.js';
import { needsVectors, readVector, readVectorText, vectorPath } from '../../helpers/vectors.js';
import { hex } from './assert.js';

function cli(...args: string[]): { status: number | null; stdout: Buffer; stderr: string } {
  const r = runCliSync(['c509', ...args]);
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

const P256 = '3.3-weierstrass-ec-secp256r1';

describe('vouchsafe c509 encode / decode', needsVectors, () => {
  it('encode: PEM certificate -> C509 hex equal to the draft example; decode: hex -> the same PEM', () => {
    const enc = cli('encode', vectorPath('c509', P256, 'x509.pem'), '--hex');
    assert.equal(enc.status, 0, enc.stderr);
    assert.equal(enc.stdout.toString().trim(), hex(readVector('c509', P256, 'c509-type3.cbor')));
    const dec = cli('decode', vectorPath('c509', P256, 'c509-type3.hex'), '--pem');
    assert.equal(dec.status, 0, dec.stderr);
    assert.equal(dec.stdout.toString(), readVectorText('c509', P256, 'x509.pem'));
  });

  it('encode/decode a PKCS#10 request through files, binary both ways', () => {
    const dir = mkdtempSync(join(tmpdir(), 'c509-cli-'));
    try {
      const n = '8.1-csr-ecdsa-with-sha256';
      const c509 = join(dir, 'req.c509');
      const der = join(dir, 'req.der');
      assert.equal(cli('encode', vectorPath('c509', n, 'csr.der'), '--out', c509).status, 0);
      assert.equal(hex(readFileSync(c509)), hex(readVector('c509', n, 'csr.c509-type3.cbor')));
      assert.equal(cli('decode', c509, '--out', der).status, 0);
      assert.equal(hex(readFileSync(der)), hex(readVector('c509', n, 'csr.der')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad input exits 2 with one line: error: <code> <reason>: <message>', () => {
    const native = cli('decode', vectorPath('c509', P256, 'c509-type2.cbor'));
    assert.equal(native.status, 2);
    assert.match(native.stderr, /^error: ERR_NOT_SUPPORTED c509\.cert\.native: [^\n]+\n$/);
    const dir = mkdtempSync(join(tmpdir(), 'c509-cli-'));
    try {
      const junk = join(dir, 'junk.der');
      writeFileSync(junk, readVector('c509', P256, 'x509.der').subarray(0, 40));
      const r = cli('encode', junk);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /^error: ERR_MALFORMED c509\.der\.truncated: [^\n]+\n$/);
      const nonDet = join(dir, 'nondet.hex');
      writeFileSync(nonDet, '1803'); // 3 in a one-byte-longer form than needed
      const d = cli('decode', nonDet);
      assert.equal(d.status, 2);
      assert.match(d.stderr, /^error: ERR_MALFORMED c509\.cbor\.non_shortest: [^\n]+\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(cli('decode', '/nonexistent/file').status, 2);
  });

  it('--help documents both subcommands', () => {
    const r = cli('--help');
    assert.equal(r.status, 0);
    const text = r.stdout.toString().replace(/\s+/g, ' ');
    assert.match(text, /encode \[options\] <file> DER or PEM X\.509 certificate .* -> C509 type 3/);
    assert.match(text, /decode \[options\] <file> C509 type 3 .* -> DER or PEM X\.509/);
    assert.match(cli('encode', '--help').stdout.toString(), /byte-exact/);
  });
});
