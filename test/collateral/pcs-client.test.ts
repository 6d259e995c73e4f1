/**
 * The Intel PCS v4 client for TDX collateral against a loopback fake PCS (never the network) serving the
 * real vectors' collateral: exact URLs and headers, exact signed bytes, cache, offline import, throttle,
 * 429 back-off, bounded bodies and refusals of bodies that are not the item asked for.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { joinSignedResponse, splitSignedResponse } from '../../src/collateral/pcs-bodies.js';
import { PcsClient, type PcsClientOptions } from '../../src/collateral/pcs-client.js';
import {
  importTdxCollateral,
  readTdxCollateralDirectory,
  tdxCollateralFromDirectory,
} from '../../src/collateral/pcs-directory.js';
import { pcsCachePath } from '../../src/collateral/pcs-url.js';
import { TdxVerifier, tdxCollateralQuery, verifyTdx } from '../../src/evidence/tdx/index.js';
import { parseTdxQuote } from '../../src/formats/tdx/quote.js';
import { tdxCaseNow } from '../evidence/tdx/vector-collateral.js';
import { errorWith } from '../helpers/assert-error.js';
import { needsVectors, readVector, readVectorText, vectorPath } from '../helpers/vectors.js';

interface Route {
  status?: number;
  body?: Uint8Array | string;
  headers?: Record<string, string>;
}

class FakePcs {
  readonly hits: string[] = [];
  readonly routes = new Map<string, Route | ((n: number) => Route)>();
  base = '';
  private server: Server | undefined;

  static async start(): Promise<FakePcs> {
    const pcs = new FakePcs();
    pcs.server = createServer((req, res) => pcs.handle(req, res));
    await new Promise<void>((resolve) => pcs.server!.listen(0, '127.0.0.1', resolve));
    pcs.base = `http://127.0.0.1:${(pcs.server.address() as AddressInfo).port}`;
    return pcs;
  }

  /** Refuses anything but this server: no test reaches Intel. */
  readonly fetch: typeof globalThis.fetch = (input, init) => {
    assert.ok(String(input).startsWith(`${this.base}/`), `non-local URL ${String(input)}`);
    return globalThis.fetch(input, init);
  };

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    this.hits.push(url);
    const n = this.hits.filter((h) => h === url).length;
    const r = this.routes.get(url);
    const route = typeof r === 'function' ? r(n) : (r ?? { status: 404, body: 'not found' });
    const body = typeof route.body === 'string' ? Buffer.from(route.body) : Buffer.from(route.body ?? []);
    res.writeHead(route.status ?? 200, { 'content-length': String(body.length), ...route.headers });
    res.end(body);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const CASE = 'phala-dcap-qvl-v4';
const FMSPC = 'b0c06f000000';
const URLS = {
  tcb: `/tdx/certification/v4/tcb?fmspc=${FMSPC}`,
  qe: '/tdx/certification/v4/qe/identity',
  pckCrl: '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
  rootCrl: '/IntelSGXRootCA.der',
};

/** The routes a real PCS serves for a vector case, rebuilt from its files (the bodies' bytes unchanged). */
function routesFor(name: string): Map<string, Route> {
  const t = (f: string) => readVectorText('tdx', name, f);
  const enc = (f: string) => encodeURIComponent(t(f));
  const signed = (base: string, field: 'tcbInfo' | 'enclaveIdentity') =>
    joinSignedResponse(field, {
      body: readVector('tdx', name, `${base}.json`),
      signature: new Uint8Array(Buffer.from(t(`${base}.sig.hex`).trim(), 'hex')),
    });
  return new Map<string, Route>([
    [
      URLS.tcb,
      {
        body: signed('tcb_info', 'tcbInfo'),
        headers: { 'TCB-Info-Issuer-Chain': enc('tcb_info_issuer_chain.pem') },
      },
    ],
    [
      URLS.qe,
      {
        body: signed('qe_identity', 'enclaveIdentity'),
        headers: { 'SGX-Enclave-Identity-Issuer-Chain': enc('qe_identity_issuer_chain.pem') },
      },
    ],
    [
      URLS.pckCrl,
      {
        body: readVector('tdx', name, 'pck_crl.der'),
        headers: { 'SGX-PCK-CRL-Issuer-Chain': enc('pck_crl_issuer_chain.pem') },
      },
    ],
    [URLS.rootCrl, { body: readVector('tdx', name, 'root_ca_crl.der') }],
  ]);
}

describe('Intel PCS client (TDX collateral)', needsVectors, () => {
  let pcs: FakePcs;
  const dirs: string[] = [];
  const tempDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'vouchsafe-pcs-'));
    dirs.push(d);
    return d;
  };
  before(async () => {
    pcs = await FakePcs.start();
  });
  after(async () => {
    await pcs.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const reset = (name = CASE) => {
    pcs.hits.length = 0;
    pcs.routes.clear();
    for (const [k, v] of routesFor(name)) pcs.routes.set(k, v);
  };
  const clock = (t: number) => {
    const s = { t, sleeps: [] as number[] };
    const sleep = async (ms: number) => {
      s.sleeps.push(ms);
      s.t += ms;
    };
    return { s, now: () => s.t, sleep };
  };
  const client = (o: Partial<PcsClientOptions> & { now: () => number }) =>
    new PcsClient({ baseUrl: pcs.base, certificatesUrl: pcs.base, fetch: pcs.fetch, ...o });

  it('fetches the four items from the PCS v4 URLs and a real quote verifies UpToDate with them', async () => {
    reset();
    const now = tdxCaseNow(CASE);
    const quote = parseTdxQuote(readVector('tdx', CASE, 'quote.bin'));
    const query = tdxCollateralQuery(quote);
    assert.deepEqual(query, { fmspc: FMSPC, ca: 'platform' });
    const c = clock(now.getTime());
    const collateral = await client({ now: c.now, sleep: c.sleep }).getTdxCollateral(query);
    assert.deepEqual([...pcs.hits].sort(), Object.values(URLS).sort());
    // The signed bytes are exactly the value PCS served.
    assert.deepEqual(collateral.tcbInfo.body, readVector('tdx', CASE, 'tcb_info.json'));
    const v = verifyTdx(quote, { collateral, now, verifier: new TdxVerifier() });
    assert.equal(v.tcb.status, 'UpToDate');
    assert.equal(v.revocationChecked, true);
  });

  it("splits a real PCS response (go-tdx-guest's saved tcb_info_response.json) into the exact signed bytes", () => {
    const name = 'google-go-tdx-guest-spr-e4-v4';
    for (const [resp, field, body, sig] of [
      ['tcb_info_response.json', 'tcbInfo', 'tcb_info.json', 'tcb_info.sig.hex'],
      ['qe_identity_response.json', 'enclaveIdentity', 'qe_identity.json', 'qe_identity.sig.hex'],
    ] as const) {
      const s = splitSignedResponse(readVector('tdx', name, resp), field, 'pcs.test');
      assert.deepEqual(s.body, readVector('tdx', name, body));
      assert.equal(
        Buffer.from(s.signature).toString('hex'),
        readVectorText('tdx', name, sig).trim().toLowerCase(),
      );
    }
  });

  it('caches on disk: a second client with the same directory does not ask PCS while the items are current', async () => {
    reset();
    const dir = await tempDir();
    const c = clock(tdxCaseNow(CASE).getTime());
    await client({ now: c.now, sleep: c.sleep, cacheDir: dir }).getTdxCollateral({
      fmspc: FMSPC,
      ca: 'platform',
    });
    assert.equal(pcs.hits.length, 4);
    const tcb = await client({ now: c.now, sleep: c.sleep, cacheDir: dir }).getTcbInfo(FMSPC.toUpperCase());
    assert.equal(pcs.hits.length, 4);
    assert.equal(tcb.source, 'cache');
    assert.equal(tcb.stale, false);
    // The cache file is the response as served.
    const file = await readFile(join(dir, ...pcsCachePath({ kind: 'tcb_info', fmspc: FMSPC }).split('/')));
    assert.deepEqual(
      new Uint8Array(file),
      pcs.routes.get(URLS.tcb) && (pcs.routes.get(URLS.tcb) as Route).body,
    );
  });

  it('past nextUpdate an item is fetched again; a failed re-fetch throws rather than serve the stale copy', async () => {
    reset();
    const c = clock(tdxCaseNow(CASE).getTime());
    const pc = client({ now: c.now, sleep: c.sleep, minIntervalMs: 1000 });
    await pc.getQeIdentity();
    c.s.t = Date.parse('2030-01-01T00:00:00Z');
    const again = await pc.getQeIdentity();
    assert.equal(again.source, 'network');
    assert.equal(again.stale, true); // the vector's copy is still the one served: PCS answers what it has
    assert.equal(pcs.hits.filter((h) => h === URLS.qe).length, 2);
    pcs.routes.set(URLS.qe, { status: 503, body: 'down' });
    c.s.t += 5000;
    await assert.rejects(pc.getQeIdentity(), errorWith('ERR_COLLATERAL_UNAVAILABLE', 'pcs.http_error'));
  });

  it('throttles one URL to once per interval, waiting on the injected clock', async () => {
    reset();
    const c = clock(Date.parse('2030-01-01T00:00:00Z')); // every item stale: each call fetches
    const pc = client({ now: c.now, sleep: c.sleep, minIntervalMs: 10_000 });
    await pc.getRootCaCrl();
    c.s.t += 10_000;
    await pc.getRootCaCrl();
    assert.deepEqual(c.s.sleeps, []);
    c.s.t += 3_000;
    const third = await pc.getRootCaCrl();
    // Fetched 3 s ago: served from memory (stale, said so), no new request and no wait.
    assert.equal(third.source, 'cache');
    assert.equal(pcs.hits.length, 2);
    // A failed attempt counts too: asking again at once waits out the interval before the next request.
    const ok = pcs.routes.get(URLS.qe)!;
    pcs.routes.set(URLS.qe, (n) => (n === 1 ? { status: 503 } : (ok as Route)));
    await assert.rejects(pc.getQeIdentity(), errorWith('ERR_COLLATERAL_UNAVAILABLE', 'pcs.http_error'));
    c.s.t += 4_000;
    await pc.getQeIdentity();
    assert.deepEqual(c.s.sleeps, [6_000]);
  });

  it('backs off on 429 (Retry-After, then doubling) and gives up with pcs.rate_limited', async () => {
    reset();
    const ok = pcs.routes.get(URLS.qe)!;
    pcs.routes.set(URLS.qe, (n) =>
      n === 1 ? { status: 429, headers: { 'retry-after': '2' } } : (ok as Route),
    );
    const c = clock(tdxCaseNow(CASE).getTime());
    await client({ now: c.now, sleep: c.sleep, minIntervalMs: 0 }).getQeIdentity();
    assert.deepEqual(c.s.sleeps, [2000]);
    pcs.routes.set(URLS.qe, { status: 429 });
    const c2 = clock(tdxCaseNow(CASE).getTime());
    await assert.rejects(
      client({
        now: c2.now,
        sleep: c2.sleep,
        minIntervalMs: 0,
        retry: { maxRetries: 2, baseDelayMs: 100 },
      }).getQeIdentity(),
      errorWith('ERR_COLLATERAL_UNAVAILABLE', 'pcs.rate_limited'),
    );
    assert.deepEqual(c2.s.sleeps, [100, 200]);
  });

  it('refuses bodies that are not the item asked for, and never caches them', async () => {
    const c = clock(tdxCaseNow(CASE).getTime());
    const cases: [string, Route, string][] = [
      // Another platform's TCB Info (go-tdx-guest's real response, FMSPC 50806f000000) under this FMSPC's URL.
      [
        URLS.tcb,
        {
          body: readVector('tdx', 'google-go-tdx-guest-spr-e4-v4', 'tcb_info_response.json'),
          headers: {
            'TCB-Info-Issuer-Chain': encodeURIComponent(
              readVectorText('tdx', CASE, 'tcb_info_issuer_chain.pem'),
            ),
          },
        },
        'pcs.bad_response',
      ],
      [URLS.tcb, { body: readVector('tdx', CASE, 'tcb_info.json') }, 'pcs.bad_response'], // no issuer chain header
      [
        URLS.qe,
        {
          body: '{"enclaveIdentity":{},"enclaveIdentity":{},"signature":"00"}',
          headers: { 'SGX-Enclave-Identity-Issuer-Chain': 'x' },
        },
        'pcs.bad_response',
      ],
      [URLS.rootCrl, { body: readVector('tdx', CASE, 'pck_crl.der') }, 'pcs.bad_response'], // the PCK CRL as the root's
      [URLS.pckCrl, { status: 404 }, 'pcs.not_found'],
      [URLS.rootCrl, { body: new Uint8Array((1 << 20) + 1) }, 'pcs.response_too_large'],
    ];
    for (const [url, route, reason] of cases) {
      reset();
      pcs.routes.set(url, route);
      const dir = await tempDir();
      const pc = client({ now: c.now, sleep: c.sleep, cacheDir: dir });
      const get =
        url === URLS.tcb
          ? pc.getTcbInfo(FMSPC)
          : url === URLS.qe
            ? pc.getQeIdentity()
            : url === URLS.pckCrl
              ? pc.getPckCrl('platform')
              : pc.getRootCaCrl();
      await assert.rejects(get, errorWith('ERR_COLLATERAL_UNAVAILABLE', reason), `${url} ${reason}`);
      const item =
        url === URLS.tcb
          ? { kind: 'tcb_info' as const, fmspc: FMSPC }
          : url === URLS.qe
            ? { kind: 'qe_identity' as const }
            : url === URLS.pckCrl
              ? { kind: 'pck_crl' as const, ca: 'platform' as const }
              : { kind: 'root_ca_crl' as const };
      await assert.rejects(readFile(join(dir, ...pcsCachePath(item).split('/'))), /ENOENT/);
    }
  });

  it('a re-serialised body (same JSON, other bytes) is fetched but fails its signature: the exact bytes are signed', async () => {
    reset();
    const route = pcs.routes.get(URLS.tcb) as Route;
    const body = readVector('tdx', CASE, 'tcb_info.json');
    const pretty = new Uint8Array(
      Buffer.from(JSON.stringify(JSON.parse(Buffer.from(body).toString()), null, 1)),
    );
    const sig = splitSignedResponse(route.body as Uint8Array, 'tcbInfo', 't').signature;
    pcs.routes.set(URLS.tcb, {
      ...route,
      body: joinSignedResponse('tcbInfo', { body: pretty, signature: sig }),
    });
    const now = tdxCaseNow(CASE);
    const c = clock(now.getTime());
    const collateral = await client({ now: c.now, sleep: c.sleep }).getTdxCollateral({
      fmspc: FMSPC,
      ca: 'platform',
    });
    const quote = parseTdxQuote(readVector('tdx', CASE, 'quote.bin'));
    assert.throws(
      () => verifyTdx(quote, { collateral, now, verifier: new TdxVerifier() }),
      errorWith('ERR_SIGNATURE_INVALID', 'tdx.tcb_info.signature'),
    );
  });

  it('offline: an imported vector directory is served with no network; what is missing is pcs.offline_missing', async () => {
    const dir = await tempDir();
    const written = await importTdxCollateral(vectorPath('tdx', CASE), dir);
    assert.deepEqual(
      written.map((i) => i.kind),
      ['tcb_info', 'qe_identity', 'pck_crl', 'root_ca_crl'],
    );
    const now = tdxCaseNow(CASE);
    const noFetch: typeof globalThis.fetch = async () => assert.fail('offline client used the network');
    const pc = new PcsClient({ offline: true, cacheDir: dir, fetch: noFetch, now: () => now.getTime() });
    const quote = parseTdxQuote(readVector('tdx', CASE, 'quote.bin'));
    const collateral = await pc.getTdxCollateral(tdxCollateralQuery(quote));
    assert.equal(verifyTdx(quote, { collateral, now, verifier: new TdxVerifier() }).tcb.status, 'UpToDate');
    // Stale offline copies are served, said so, and the verifier refuses them by date.
    const late = new PcsClient({
      offline: true,
      cacheDir: dir,
      fetch: noFetch,
      now: () => Date.parse('2030-01-01T00:00:00Z'),
    });
    const tcb = await late.getTcbInfo(FMSPC);
    assert.deepEqual([tcb.source, tcb.stale], ['offline', true]);
    await assert.rejects(
      pc.getTcbInfo('50806f000000'),
      errorWith('ERR_COLLATERAL_UNAVAILABLE', 'pcs.offline_missing'),
    );
    await assert.rejects(
      pc.getPckCrl('processor'),
      errorWith('ERR_COLLATERAL_UNAVAILABLE', 'pcs.offline_missing'),
    );
    // A corrupted imported file is an error offline, not a silent miss.
    await writeFile(join(dir, ...pcsCachePath({ kind: 'qe_identity' }).split('/')), '{"enclaveIdentity":1}');
    await assert.rejects(
      new PcsClient({
        offline: true,
        cacheDir: dir,
        fetch: noFetch,
        now: () => now.getTime(),
      }).getQeIdentity(),
      errorWith('ERR_COLLATERAL_UNAVAILABLE', 'pcs.cache_corrupt'),
    );
  });

  it('the directory reader: every vector case reads; a directory for another platform is named as such', async () => {
    for (const name of ['google-go-tdx-guest-spr-e4-v4', 'phala-dcap-qvl-v4', 'phala-dcap-qvl-v5-outdated']) {
      const d = readTdxCollateralDirectory(vectorPath('tdx', name));
      assert.equal(d.pckCa, 'platform');
      assert.match(d.fmspc, /^[0-9a-f]{12}$/);
    }
    const src = tdxCollateralFromDirectory(vectorPath('tdx', 'google-go-tdx-guest-spr-e4-v4'));
    await assert.rejects(
      src.getTdxCollateral({ fmspc: FMSPC, ca: 'platform' }),
      errorWith('ERR_COLLATERAL_UNAVAILABLE', 'pcs.directory.fmspc'),
    );
    const empty = await tempDir();
    assert.throws(
      () => readTdxCollateralDirectory(empty),
      errorWith('ERR_COLLATERAL_UNAVAILABLE', 'pcs.directory.missing'),
    );
  });

  it('options: offline needs a directory; base URLs must be plain http(s); FMSPC is 12 hex digits', () => {
    const bad = (f: () => unknown, reason: string) =>
      assert.throws(f, errorWith('ERR_INVALID_ARGUMENT', reason));
    bad(() => new PcsClient({ offline: true }), 'pcs.offline_without_dir');
    bad(() => new PcsClient({ baseUrl: 'ftp://x' }), 'pcs.base_url');
    bad(() => new PcsClient({ baseUrl: 'https://u:p@x' }), 'pcs.base_url');
    bad(() => new PcsClient().getTcbInfo('../../etc'), 'pcs.fmspc');
  });
});
