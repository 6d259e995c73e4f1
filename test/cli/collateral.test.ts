/**
 * `vouchsafe collateral fetch|list|import|prune` against a loopback fake KDS serving a simulated chain: fetch
 * files what verifying a report needs, after which `verify snp --offline` on that directory needs no network;
 * list shows each item (CRL dates included); import files a VCEK given as PEM; prune removes only VCEKs older
 * than asked (file times set by the test, never waited for) and leftover temporary files. The CLI runs from
 * the sources (see usage-errors.test.ts for why).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cachePath, readVcekIdentity } from '../../src/collateral/index.js';
import { encodePem } from '../../src/formats/pem.js';
import {
  createCrl,
  createSimChain,
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  type SimChain,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { loaderFor, ROOT, runnable } from '../helpers/paths.js';

const MAIN = runnable('src/cli/main.ts');

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [...loaderFor(MAIN), MAIN, ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

let chain: SimChain;
let other: SimChain;
let kds: Server;
let base = '';
let dir: string;
const hits: string[] = [];

before(async () => {
  chain = await sharedSimChain('Milan');
  other = await createSimChain({ product: 'Milan', keys: {} });
  const crl = await createCrl(chain, { revokedSerials: [] });
  kds = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url?.endsWith('/cert_chain')) {
      res
        .writeHead(200)
        .end(encodePem('CERTIFICATE', chain.ask.der) + encodePem('CERTIFICATE', chain.ark.der));
    } else if (req.url?.endsWith('/crl')) res.writeHead(200).end(Buffer.from(crl));
    else res.writeHead(200).end(Buffer.from(chain.vcek.der));
  });
  await new Promise<void>((r) => kds.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(kds.address() as { port: number }).port}`;
  dir = mkdtempSync(join(tmpdir(), 'vouchsafe-collateral-cli-'));
});

after(async () => {
  await new Promise<void>((r) => kds.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe('vouchsafe collateral', () => {
  const cache = () => join(dir, 'cache');

  it('fetch files the VCEK, chain and CRL of a report; verify --offline then needs no network', async () => {
    const fw = new SimSnpFirmware(chain, {
      measurement: SIM_DEFAULT_MEASUREMENT,
      policy: SIM_DEFAULT_POLICY,
      hostData: new Uint8Array(32),
    });
    const report = join(dir, 'report.bin');
    writeFileSync(report, fw.getReport(new Uint8Array(64)).report);
    const f = await cli(['collateral', 'fetch', report, '--dir', cache(), '--kds-url', base]);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(hits.length, 3);
    const v = await cli([
      'verify',
      'snp',
      report,
      '--offline',
      '--cache-dir',
      cache(),
      '--check-revocation',
      '--trust-root',
      `Milan:${chain.rootSha256}`,
      '--json',
    ]);
    assert.equal(JSON.parse(v.stdout).verdict, 'accepted', v.stdout + v.stderr);
    assert.equal(hits.length, 3, 'offline: KDS not asked');
  });

  it('list names each item and the CRL dates', async () => {
    const r = await cli(['collateral', 'list', '--dir', cache(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const items = JSON.parse(r.stdout).items as { kind: string; crl?: { stale: boolean } }[];
    assert.deepEqual(items.map((i) => i.kind).sort(), ['cert_chain', 'crl', 'vcek']);
    assert.equal(items.find((i) => i.kind === 'crl')?.crl?.stale, false);
  });

  it('import files a VCEK given as PEM; prune removes only old VCEKs and temporary files', async () => {
    const src = join(dir, 'import');
    mkdirSync(src);
    writeFileSync(join(src, 'vcek.pem'), encodePem('CERTIFICATE', other.vcek.der));
    const i = await cli(['collateral', 'import', src, '--dir', cache()]);
    assert.equal(i.code, 0, i.stderr);
    const id = readVcekIdentity(chain.vcek.der);
    const oldVcek = join(
      cache(),
      ...cachePath({ kind: 'vcek', product: 'Milan', hwid: id.hwid, tcb: id.tcb }).split('/'),
    );
    utimesSync(oldVcek, new Date('2001-01-01'), new Date('2001-01-01'));
    writeFileSync(join(cache(), 'vcek', 'Milan', 'cert_chain.pem.1.ab.tmp'), 'x');
    const p = await cli(['collateral', 'prune', '--dir', cache(), '--older-than', '30', '--json']);
    assert.equal(p.code, 0, p.stderr);
    const removed = (JSON.parse(p.stdout).removed as string[]).sort();
    assert.equal(removed.length, 2, removed.join(' '));
    assert.ok(removed.some((r) => r.endsWith('.tmp')));
    assert.ok(removed.includes(cachePath({ kind: 'vcek', product: 'Milan', hwid: id.hwid, tcb: id.tcb })));
    const l = await cli(['collateral', 'list', '--dir', cache(), '--json']);
    assert.deepEqual(
      (JSON.parse(l.stdout).items as { kind: string }[]).map((x) => x.kind).sort(),
      ['cert_chain', 'crl', 'vcek'],
      'the imported VCEK, the chain and the CRL remain',
    );
    assert.ok(readdirSync(cache()).length > 0);
  });

  it('without a subcommand it exits 2', async () => {
    const r = await cli(['collateral', 'frob']);
    assert.equal(r.code, 2);
  });
});
