/**
 * `vouchsafe collateral import|fetch|list|prune --tdx` (the compiled CLI) on a real TDX vector: the offline
 * directory imported into a PCS cache that `verify tdx --offline --cache-dir` accepts; list shows each item
 * with its dates; prune removes TCB Infos older than asked (then the offline verify is unusable, exit 2);
 * fetch fills an empty cache from a local stand-in for Intel PCS that serves the vector's exact responses.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { joinSignedResponse } from '../../src/collateral/pcs-bodies.js';
import { tdxCaseNow } from '../evidence/tdx/vector-collateral.js';
import { assertDistBuilt } from '../helpers/dist.js';
import { needsVectors, readVector, readVectorText, vectorPath } from '../helpers/vectors.js';
import { runCli } from './run-cli.js';

const CASE = 'phala-dcap-qvl-v4';
const FMSPC = 'b0c06f000000';

/** What PCS answers for the case (bodies byte for byte as PCS sent them, issuer chains as URL-encoded headers). */
function pcsRoutes(): Map<string, { body: Uint8Array; headers: Record<string, string> }> {
  const t = (f: string) => readVectorText('tdx', CASE, f);
  const enc = (f: string) => encodeURIComponent(t(f));
  const signed = (base: string, field: 'tcbInfo' | 'enclaveIdentity') =>
    joinSignedResponse(field, {
      body: readVector('tdx', CASE, `${base}.json`),
      signature: new Uint8Array(Buffer.from(t(`${base}.sig.hex`).trim(), 'hex')),
    });
  return new Map<string, { body: Uint8Array; headers: Record<string, string> }>([
    [
      `/tdx/certification/v4/tcb?fmspc=${FMSPC}`,
      {
        body: signed('tcb_info', 'tcbInfo'),
        headers: { 'TCB-Info-Issuer-Chain': enc('tcb_info_issuer_chain.pem') },
      },
    ],
    [
      '/tdx/certification/v4/qe/identity',
      {
        body: signed('qe_identity', 'enclaveIdentity'),
        headers: { 'SGX-Enclave-Identity-Issuer-Chain': enc('qe_identity_issuer_chain.pem') },
      },
    ],
    [
      '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
      {
        body: readVector('tdx', CASE, 'pck_crl.der'),
        headers: { 'SGX-PCK-CRL-Issuer-Chain': enc('pck_crl_issuer_chain.pem') },
      },
    ],
    ['/IntelSGXRootCA.der', { body: readVector('tdx', CASE, 'root_ca_crl.der'), headers: {} }],
  ]);
}

describe('vouchsafe collateral … --tdx (Intel PCS collateral)', needsVectors, () => {
  const dirs: string[] = [];
  const temp = async () => {
    const d = await mkdtemp(join(tmpdir(), 'vouchsafe-col-tdx-'));
    dirs.push(d);
    return d;
  };
  let server: Server;
  let base = '';
  const hits: string[] = [];
  before(async () => {
    assertDistBuilt();
    const routes = pcsRoutes();
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      const r = routes.get(req.url ?? '');
      if (!r) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-length': String(r.body.length), ...r.headers }).end(Buffer.from(r.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const verifyOffline = (dir: string) =>
    runCli([
      'verify',
      'tdx',
      vectorPath('tdx', CASE, 'quote.bin'),
      '--offline',
      '--cache-dir',
      dir,
      '--at',
      tdxCaseNow(CASE).toISOString(),
      '--json',
    ]);

  it('import, list, verify offline from it, prune', async () => {
    const dir = await temp();
    const imp = await runCli([
      'collateral',
      'import',
      '--tdx',
      vectorPath('tdx', CASE),
      '--dir',
      dir,
      '--json',
    ]);
    assert.equal(imp.code, 0, imp.stderr);
    assert.equal(JSON.parse(imp.stdout).imported[0].items.length, 4);

    const list = await runCli(['collateral', 'list', '--tdx', '--dir', dir, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const items = JSON.parse(list.stdout).items as {
      path: string;
      kind: string;
      crl?: { nextUpdate?: string };
    }[];
    const kinds = Object.fromEntries(items.map((i) => [i.path, i.kind]));
    assert.equal(kinds[`pcs/tdx/tcb-${FMSPC}.json`], 'tcb_info');
    assert.equal(kinds['pcs/tdx/qe-identity.json'], 'qe_identity');
    assert.equal(kinds['pcs/sgx/pckcrl-platform.der'], 'crl');
    assert.equal(kinds['pcs/sgx/root-ca-crl.der'], 'crl');
    assert.equal(kinds[`pcs/tdx/tcb-${FMSPC}.issuer-chain.pem`], 'issuer_chain');
    const tcb = items.find((i) => i.kind === 'tcb_info');
    assert.equal(
      tcb?.crl?.nextUpdate,
      JSON.parse(readVectorText('tdx', CASE, 'tcb_info.json')).nextUpdate.replace('Z', '.000Z'),
    );

    const ok = await verifyOffline(dir);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).verdict, 'accepted');

    const dry = await runCli([
      'collateral',
      'prune',
      '--tdx',
      '--older-than',
      '0',
      '--dry-run',
      '--dir',
      dir,
      '--json',
    ]);
    assert.deepEqual(JSON.parse(dry.stdout).removed.sort(), [
      `pcs/tdx/tcb-${FMSPC}.issuer-chain.pem`,
      `pcs/tdx/tcb-${FMSPC}.json`,
    ]);
    const prune = await runCli(['collateral', 'prune', '--tdx', '--older-than', '0', '--dir', dir, '--json']);
    assert.equal(prune.code, 0, prune.stderr);
    const gone = await verifyOffline(dir);
    assert.equal(gone.code, 2, 'the TCB Info is gone: unusable offline');
    assert.match(gone.stdout + gone.stderr, /pcs\.offline_missing/);
    // The QE Identity and the CRLs were kept.
    const left = JSON.parse(
      (await runCli(['collateral', 'list', '--tdx', '--dir', dir, '--json'])).stdout,
    ).items.map((i: { path: string }) => i.path);
    assert.ok(left.includes('pcs/tdx/qe-identity.json'));
    assert.ok(left.includes('pcs/sgx/root-ca-crl.der'));
  });

  it('fetch for a quote from (a stand-in for) Intel PCS, then verify offline from what it fetched', async () => {
    const dir = await temp();
    hits.length = 0;
    const r = await runCli([
      'collateral',
      'fetch',
      '--tdx',
      vectorPath('tdx', CASE, 'quote.bin'),
      '--dir',
      dir,
      '--pcs-url',
      base,
      '--pcs-certificates-url',
      base,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`FMSPC ${FMSPC}`));
    assert.equal(hits.length, 4);
    // The cached TCB Info is the response as served.
    const cached = await readFile(join(dir, 'pcs', 'tdx', `tcb-${FMSPC}.json`));
    assert.deepEqual(
      new Uint8Array(cached),
      pcsRoutes().get(`/tdx/certification/v4/tcb?fmspc=${FMSPC}`)?.body,
    );
    const ok = await verifyOffline(dir);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('fetch --tdx with neither a quote nor --fmspc is a usage error (exit 2)', async () => {
    const r = await runCli(['collateral', 'fetch', '--tdx', '--dir', await temp(), '--pcs-url', base]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--fmspc/);
  });
});
