import 'reflect-metadata';
import assert from 'node:assert/strict';
import { X509Certificate as NodeX509, webcrypto } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import {
  cachePath,
  importCollateral,
  KdsClient,
  type KdsClientOptions,
  kdsPath,
  normalizeBaseUrl,
  parseCertChain,
  parseKdsCrl,
  parseRetryAfter,
  readVcekIdentity,
  vcekItem,
  vcekItemForReport,
} from '../../src/collateral/index.js';
import { AttestationError, ErrorCode } from '../../src/errors.js';
import {
  parseReport,
  productFromCpuid,
  productFromName,
  type SnpProduct,
  type SnpReport,
} from '../../src/formats/snp/index.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { needsVectors, readVector, readVectorJson, vectorCases, vectorPath } from '../helpers/vectors.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

// ---------------------------------------------------------------------------------------------------------
// Helpers: a local KDS on 127.0.0.1, a fake clock, temporary directories.

interface Route {
  status?: number;
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** Accept the request and never answer. */
  hang?: boolean;
  /** Send headers and part of the body, then stall. */
  stall?: boolean;
  /** Send the body in chunks without Content-Length. */
  chunked?: boolean;
}

class LocalKds {
  readonly hits: string[] = [];
  readonly hitTimes: number[] = [];
  readonly routes = new Map<string, Route | ((n: number) => Route)>();
  base = '';
  clock: () => number = Date.now;
  private server: Server | undefined;

  static async start(): Promise<LocalKds> {
    const kds = new LocalKds();
    kds.server = createServer((req, res) => kds.handle(req, res));
    await new Promise<void>((resolve) => kds.server!.listen(0, '127.0.0.1', resolve));
    kds.base = `http://127.0.0.1:${(kds.server.address() as AddressInfo).port}`;
    return kds;
  }

  /** A fetch that refuses anything but this server: no test can reach the internet. */
  readonly fetch: typeof globalThis.fetch = (input, init) => {
    const url = String(input);
    assert.ok(url.startsWith(`${this.base}/`), `test fetch to a non-local URL: ${url}`);
    return globalThis.fetch(input, init);
  };

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    this.hits.push(url);
    this.hitTimes.push(this.clock());
    const n = this.hits.filter((h) => h === url).length;
    const r = this.routes.get(url);
    const route = typeof r === 'function' ? r(n) : (r ?? { status: 404, body: 'not found' });
    if (route.hang) return;
    const body = typeof route.body === 'string' ? Buffer.from(route.body) : Buffer.from(route.body ?? []);
    if (route.stall) {
      res.writeHead(200, { 'content-length': String(body.length + 10), ...route.headers });
      res.write(body.subarray(0, 10));
      return;
    }
    if (route.chunked) {
      res.writeHead(route.status ?? 200, route.headers);
      for (let off = 0; off < body.length; off += 4096) res.write(body.subarray(off, off + 4096));
      res.end();
      return;
    }
    res.writeHead(route.status ?? 200, { 'content-length': String(body.length), ...route.headers });
    res.end(body);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

function fakeClock(start = Date.parse('2026-03-01T00:00:00Z')) {
  const state = { t: start, sleeps: [] as number[] };
  return {
    state,
    now: () => state.t,
    sleep: async (ms: number) => {
      state.sleeps.push(ms);
      state.t += ms;
    },
  };
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'vouchsafe-kds-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function derOfPem(...parts: string[]): Uint8Array {
  return new Uint8Array(new NodeX509(readVector(...parts)).raw);
}

/** A CRL issued under the name CN=ARK-{product} by a throw-away key (no real KDS CRL is in the vectors). */
async function makeCrl(product: SnpProduct, thisUpdate: Date, nextUpdate?: Date): Promise<Uint8Array> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const crl = await x509.X509CrlGenerator.create({
    issuer: `CN=ARK-${product}, O=Advanced Micro Devices`,
    thisUpdate,
    ...(nextUpdate ? { nextUpdate } : {}),
    signingKey: keys.privateKey as unknown as x509.X509CrlCreateParams['signingKey'],
    signingAlgorithm: alg,
    entries: [{ serialNumber: '01', revocationDate: thisUpdate }],
  });
  return new Uint8Array(crl.rawData);
}

// ---------------------------------------------------------------------------------------------------------
// The real VCEK cases: report -> product, CHIP_ID, REPORTED_TCB -> the exact KDS URL.

interface VcekCase {
  name: string;
  report: SnpReport;
  product: SnpProduct;
  vcekDer: Uint8Array;
  /** Built from expected.json (independent decoder), not from our parser. */
  expectedPath: string;
}

const CHAIN_FILES: Record<SnpProduct, Record<'vcek' | 'vlek', string>> = {
  Milan: { vcek: 'kds_cert_chain_milan.pem', vlek: 'kds_cert_chain_milan_vlek.pem' },
  Genoa: { vcek: 'kds_cert_chain_genoa.pem', vlek: 'kds_cert_chain_genoa_vlek.pem' },
  Turin: { vcek: 'kds_cert_chain_turin_vcek.pem', vlek: 'kds_cert_chain_turin_vlek.pem' },
};

function loadVcekCases(): VcekCase[] {
  const out: VcekCase[] = [];
  for (const name of vectorCases('snp')) {
    const expected = readVectorJson('snp', name, 'expected.json');
    if (expected.signer !== 'VCEK') continue;
    const report = parseReport(readVector('snp', name, 'report.bin'));
    const product = report.cpuid
      ? productFromCpuid(report.cpuid.family, report.cpuid.model)!
      : productFromName(expected.leaf_cert_fields.productName)!.product;
    const f = expected.report_fields;
    const t = f.reported_tcb;
    const hwid = product === 'Turin' ? (f.chip_id as string).slice(0, 16) : (f.chip_id as string);
    const spl = `blSPL=${t.bl}&teeSPL=${t.tee}&snpSPL=${t.snp}&ucodeSPL=${t.ucode}`;
    const query = product === 'Turin' ? `fmcSPL=${t.fmc}&${spl}` : spl;
    out.push({
      name,
      report,
      product,
      vcekDer: derOfPem('snp', name, 'vcek.pem'),
      expectedPath: `/vcek/v1/${product}/${hwid}?${query}`,
    });
  }
  return out;
}

function serveChains(kds: LocalKds): void {
  for (const product of ['Milan', 'Genoa', 'Turin'] as const) {
    for (const signer of ['vcek', 'vlek'] as const) {
      kds.routes.set(`/${signer}/v1/${product}/cert_chain`, {
        body: readVector('amd', CHAIN_FILES[product][signer]),
        headers: { 'content-type': 'application/x-pem-file' },
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------

describe('KDS URL rules', needsVectors, () => {
  const cases = loadVcekCases();

  it('covers Milan, Genoa and Turin VCEK cases', () => {
    const products = new Set(cases.map((c) => c.product));
    assert.deepEqual([...products].sort(), ['Genoa', 'Milan', 'Turin']);
  });

  for (const c of cases) {
    it(`${c.name}: VCEK path from the report equals the one built from expected.json`, () => {
      assert.equal(kdsPath(vcekItemForReport(c.report, c.product)), c.expectedPath);
    });
    it(`${c.name}: the real VCEK's extensions name the same item`, () => {
      const id = readVcekIdentity(c.vcekDer);
      const item = vcekItemForReport(c.report, c.product);
      assert.equal(id.product, c.product);
      assert.deepEqual(id.hwid, item.hwid);
      assert.deepEqual(id.tcb, item.tcb);
    });
  }

  it('cert_chain and CRL paths', () => {
    assert.equal(
      kdsPath({ kind: 'cert_chain', product: 'Genoa', signer: 'vcek' }),
      '/vcek/v1/Genoa/cert_chain',
    );
    assert.equal(
      kdsPath({ kind: 'cert_chain', product: 'Turin', signer: 'vlek' }),
      '/vlek/v1/Turin/cert_chain',
    );
    assert.equal(kdsPath({ kind: 'crl', product: 'Milan', signer: 'vcek' }), '/vcek/v1/Milan/crl');
    assert.equal(kdsPath({ kind: 'crl', product: 'Milan', signer: 'vlek' }), '/vlek/v1/Milan/crl');
  });

  it('real VLEK reports have an all-zero CHIP_ID: kds.chip_id_masked', async () => {
    for (const name of ['constellation-aws-milan-vlek-2023', 'constellation-aws-milan-vlek-2024']) {
      const report = parseReport(readVector('snp', name, 'report.bin'));
      await rejectsCode(
        Promise.resolve().then(() => vcekItemForReport(report, 'Milan')),
        ErrorCode.CollateralUnavailable,
        'kds.chip_id_masked',
      );
      const client = new KdsClient({ fetch: () => assert.fail('no network for a masked chip id') });
      await rejectsCode(
        client.getVcekForReport(report, 'Milan'),
        ErrorCode.CollateralUnavailable,
        'kds.chip_id_masked',
      );
    }
  });

  it('Turin uses CHIP_ID[0:8]: zero there is masked even if later bytes are not', async () => {
    const chip = new Uint8Array(64);
    chip[8] = 1;
    await rejectsCode(
      Promise.resolve().then(() => vcekItem('Turin', chip, 0n)),
      ErrorCode.CollateralUnavailable,
      'kds.chip_id_masked',
    );
    assert.equal(
      kdsPath(vcekItem('Milan', chip, 0n)).split('?')[0],
      `/vcek/v1/Milan/${'00'.repeat(8)}01${'00'.repeat(55)}`,
    );
  });

  it('rejects a CHIP_ID of the wrong length', async () => {
    await rejectsCode(
      Promise.resolve().then(() => vcekItem('Milan', new Uint8Array(8).fill(1), 0n)),
      ErrorCode.InvalidArgument,
      'kds.chip_id_length',
    );
    assert.equal(vcekItem('Turin', new Uint8Array(8).fill(0xab), 0n).hwid.length, 8);
  });

  it('base URL: default, trailing slash, path prefix; non-http refused', async () => {
    assert.equal(new KdsClient().baseUrl, 'https://kdsintf.amd.com');
    assert.equal(normalizeBaseUrl('https://mirror.example/amd/'), 'https://mirror.example/amd');
    for (const bad of ['ftp://x', 'not a url', 'https://x/?q=1', 'https://u:p@x']) {
      await rejectsCode(
        Promise.resolve().then(() => normalizeBaseUrl(bad)),
        ErrorCode.InvalidArgument,
        'kds.base_url',
      );
    }
  });

  it('cache paths are readable and derived from validated values', () => {
    const turin = cases.find((c) => c.product === 'Turin')!;
    const t = vcekItemForReport(turin.report, 'Turin');
    assert.match(cachePath(t), /^vcek\/Turin\/[0-9a-f]{16}\/fmc\d+-bl\d+-tee\d+-snp\d+-ucode\d+\.der$/);
    const milan = cases.find((c) => c.product === 'Milan')!;
    assert.match(
      cachePath(vcekItemForReport(milan.report, 'Milan')),
      /^vcek\/Milan\/[0-9a-f]{128}\/bl\d+-tee\d+-snp\d+-ucode\d+\.der$/,
    );
    assert.equal(
      cachePath({ kind: 'cert_chain', product: 'Genoa', signer: 'vlek' }),
      'vlek/Genoa/cert_chain.pem',
    );
    assert.equal(cachePath({ kind: 'crl', product: 'Milan', signer: 'vcek' }), 'vcek/Milan/crl.der');
  });

  it('Retry-After: seconds and HTTP-date; anything else ignored', () => {
    const now = Date.parse('2026-03-01T00:00:00Z');
    assert.equal(parseRetryAfter('30', now), 30_000);
    assert.equal(parseRetryAfter(new Date(now + 20_000).toUTCString(), now), 20_000);
    assert.equal(parseRetryAfter(new Date(now - 5_000).toUTCString(), now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-3', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });
});

describe('KDS client against a local KDS', needsVectors, () => {
  const cases = loadVcekCases();
  let kds: LocalKds;
  before(async () => {
    kds = await LocalKds.start();
  });
  after(async () => {
    await kds.close();
  });

  const client = (extra: Partial<KdsClientOptions> = {}) =>
    new KdsClient({ baseUrl: kds.base, fetch: kds.fetch, ...extra });
  const reset = () => {
    kds.hits.length = 0;
    kds.hitTimes.length = 0;
    kds.routes.clear();
  };

  for (const c of cases) {
    it(`${c.name}: requests exactly ${c.product}'s VCEK URL and returns the DER`, async () => {
      reset();
      kds.routes.set(c.expectedPath, {
        body: c.vcekDer,
        headers: { 'content-type': 'application/pkix-cert' },
      });
      const der = await client().getVcekForReport(c.report, c.product);
      assert.deepEqual(der, c.vcekDer);
      assert.deepEqual(kds.hits, [c.expectedPath]);
    });
  }

  it('cert chains for every product and signer: intermediate and ARK as DER', async () => {
    reset();
    serveChains(kds);
    const cl = client();
    for (const product of ['Milan', 'Genoa', 'Turin'] as const) {
      const vcek = await cl.getCertChain(product, 'vcek');
      assert.deepEqual(vcek.intermediate, derOfPem('amd', `${product.toLowerCase()}_ask.pem`));
      assert.deepEqual(vcek.ark, derOfPem('amd', `${product.toLowerCase()}_ark.pem`));
      const vlek = await cl.getCertChain(product, 'vlek');
      assert.deepEqual(vlek.intermediate, derOfPem('amd', `${product.toLowerCase()}_asvk.pem`));
    }
    assert.equal(kds.hits.length, 6);
  });

  it('a VCEK for another chip or TCB at the URL is refused (kds.bad_response) and not cached', async () => {
    reset();
    const [a, b] = [
      cases.find((c) => c.product === 'Milan')!,
      cases.filter((c) => c.product === 'Milan')[1]!,
    ];
    kds.routes.set(a.expectedPath, { body: b.vcekDer });
    const dir = await tempDir();
    await rejectsCode(
      client({ cacheDir: dir }).getVcekForReport(a.report, 'Milan'),
      ErrorCode.CollateralUnavailable,
      'kds.bad_response',
    );
    assert.equal(existsSync(join(dir, cachePath(vcekItemForReport(a.report, 'Milan')))), false);
  });

  it('a cert_chain for the wrong product or signer is refused', async () => {
    reset();
    kds.routes.set('/vcek/v1/Genoa/cert_chain', { body: readVector('amd', 'kds_cert_chain_milan.pem') });
    kds.routes.set('/vlek/v1/Milan/cert_chain', { body: readVector('amd', 'kds_cert_chain_milan.pem') });
    await rejectsCode(
      client().getCertChain('Genoa', 'vcek'),
      ErrorCode.CollateralUnavailable,
      'kds.bad_response',
    );
    await rejectsCode(
      client().getCertChain('Milan', 'vlek'),
      ErrorCode.CollateralUnavailable,
      'kds.bad_response',
    );
  });

  it('throttle: concurrent and repeated requests for one URL cost one network request', async () => {
    reset();
    const c = cases[0]!;
    kds.routes.set(c.expectedPath, { body: c.vcekDer });
    const clock = fakeClock();
    const cl = client({ now: clock.now, sleep: clock.sleep });
    const [x, y] = await Promise.all([
      cl.getVcekForReport(c.report, c.product),
      cl.getVcekForReport(c.report, c.product),
    ]);
    assert.deepEqual(x, y);
    await clock.sleep(3_000);
    await cl.getVcekForReport(c.report, c.product);
    assert.equal(kds.hits.length, 1);
  });

  it('returned bytes are copies: altering them does not alter what the client serves next', async () => {
    reset();
    serveChains(kds);
    const cl = client();
    const first = await cl.getCertChain('Milan', 'vcek');
    first.ark.fill(0);
    first.intermediate.fill(0);
    const second = await cl.getCertChain('Milan', 'vcek');
    assert.deepEqual(second.ark, derOfPem('amd', 'milan_ark.pem'));
    assert.equal(kds.hits.length, 1);
  });

  it('throttle: a second request for one URL within 10 s waits until 10 s have passed', async () => {
    reset();
    const clock = fakeClock();
    kds.clock = clock.now;
    try {
      const cl = client({ now: clock.now, sleep: clock.sleep });
      await rejectsCode(cl.getCertChain('Milan', 'vcek'), ErrorCode.CollateralUnavailable, 'kds.not_found');
      await clock.sleep(4_000);
      clock.state.sleeps.length = 0;
      await rejectsCode(cl.getCertChain('Milan', 'vcek'), ErrorCode.CollateralUnavailable, 'kds.not_found');
      assert.deepEqual(clock.state.sleeps, [6_000]);
      assert.equal(kds.hits.length, 2);
      assert.equal(kds.hitTimes[1]! - kds.hitTimes[0]!, 10_000);
      // Another URL is not held back by the first.
      clock.state.sleeps.length = 0;
      await rejectsCode(cl.getCertChain('Genoa', 'vcek'), ErrorCode.CollateralUnavailable, 'kds.not_found');
      assert.deepEqual(clock.state.sleeps, []);
    } finally {
      kds.clock = Date.now;
    }
  });

  it('429 with Retry-After (seconds), then success: waits as told', async () => {
    reset();
    const body = readVector('amd', CHAIN_FILES.Genoa.vcek);
    kds.routes.set('/vcek/v1/Genoa/cert_chain', (n) =>
      n === 1 ? { status: 429, headers: { 'retry-after': '30' } } : { body },
    );
    const clock = fakeClock();
    const chain = await client({ now: clock.now, sleep: clock.sleep }).getCertChain('Genoa', 'vcek');
    assert.deepEqual(chain.ark, derOfPem('amd', 'genoa_ark.pem'));
    assert.deepEqual(clock.state.sleeps, [30_000]);
    assert.equal(kds.hits.length, 2);
  });

  it("429 with Retry-After (HTTP-date) shorter than AMD's window: still 10 s between requests", async () => {
    reset();
    const clock = fakeClock();
    const body = readVector('amd', CHAIN_FILES.Turin.vcek);
    kds.routes.set('/vcek/v1/Turin/cert_chain', (n) =>
      n === 1
        ? { status: 429, headers: { 'retry-after': new Date(clock.now() + 2_000).toUTCString() } }
        : { body },
    );
    await client({ now: clock.now, sleep: clock.sleep }).getCertChain('Turin', 'vcek');
    assert.deepEqual(clock.state.sleeps, [2_000, 8_000]);
  });

  it('429 forever: exponential back-off from 10 s, bounded retries, then kds.rate_limited', async () => {
    reset();
    kds.routes.set('/vcek/v1/Milan/cert_chain', { status: 429 });
    const clock = fakeClock();
    await rejectsCode(
      client({ now: clock.now, sleep: clock.sleep }).getCertChain('Milan', 'vcek'),
      ErrorCode.CollateralUnavailable,
      'kds.rate_limited',
    );
    assert.deepEqual(clock.state.sleeps, [10_000, 20_000, 40_000]);
    assert.equal(kds.hits.length, 4);
  });

  it('429 with a Retry-After beyond the cap: gives up at once rather than hammering', async () => {
    reset();
    kds.routes.set('/vcek/v1/Milan/cert_chain', { status: 429, headers: { 'retry-after': '3600' } });
    const clock = fakeClock();
    await rejectsCode(
      client({ now: clock.now, sleep: clock.sleep }).getCertChain('Milan', 'vcek'),
      ErrorCode.CollateralUnavailable,
      'kds.rate_limited',
    );
    assert.deepEqual(clock.state.sleeps, []);
    assert.equal(kds.hits.length, 1);
  });

  it('other HTTP errors are typed: 404 kds.not_found, 500 kds.http_error', async () => {
    reset();
    kds.routes.set('/vcek/v1/Milan/crl', { status: 500 });
    await rejectsCode(client().getCrl('Milan', 'vcek'), ErrorCode.CollateralUnavailable, 'kds.http_error');
    await rejectsCode(client().getCrl('Genoa', 'vcek'), ErrorCode.CollateralUnavailable, 'kds.not_found');
  });

  it('oversize bodies (declared or streamed) are refused: kds.response_too_large', async () => {
    reset();
    const big = new Uint8Array(70 * 1024).fill(0x41);
    kds.routes.set('/vcek/v1/Milan/cert_chain', { body: big });
    kds.routes.set('/vcek/v1/Genoa/cert_chain', { body: big, chunked: true });
    await rejectsCode(
      client().getCertChain('Milan', 'vcek'),
      ErrorCode.CollateralUnavailable,
      'kds.response_too_large',
    );
    await rejectsCode(
      client().getCertChain('Genoa', 'vcek'),
      ErrorCode.CollateralUnavailable,
      'kds.response_too_large',
    );
  });

  it('garbage bodies are refused (kds.bad_response) and nothing is cached', async () => {
    reset();
    const html = '<html><body>Service temporarily unavailable</body></html>';
    const chain = Buffer.from(readVector('amd', CHAIN_FILES.Milan.vcek)).toString('latin1');
    const variants = [
      html,
      '',
      chain.split('-----END CERTIFICATE-----')[0]!, // truncated
      `${chain}${chain}`, // four certificates
      chain.replace('MII', 'M!I'), // bad base64
      `garbage before\n${chain}`,
    ];
    const dir = await tempDir();
    for (const [i, body] of variants.entries()) {
      kds.routes.set('/vcek/v1/Milan/cert_chain', { body });
      const err = await rejectsCode(
        client({ cacheDir: dir, minIntervalMs: 0 }).getCertChain('Milan', 'vcek'),
        ErrorCode.CollateralUnavailable,
        'kds.bad_response',
      );
      assert.ok(err.cause instanceof AttestationError, `variant ${i}: cause is typed`);
    }
    kds.routes.set('/vcek/v1/Milan/crl', { body: readVector('amd', CHAIN_FILES.Milan.vcek) });
    await rejectsCode(
      client({ cacheDir: dir }).getCrl('Milan', 'vcek'),
      ErrorCode.CollateralUnavailable,
      'kds.bad_response',
    );
    assert.equal(existsSync(join(dir, 'vcek')), false);
  });

  it('a server that never answers: kds.unreachable after timeoutMs', async () => {
    reset();
    kds.routes.set('/vcek/v1/Milan/cert_chain', { hang: true });
    kds.routes.set('/vcek/v1/Genoa/cert_chain', {
      stall: true,
      body: readVector('amd', CHAIN_FILES.Genoa.vcek),
    });
    await rejectsCode(
      client({ timeoutMs: 100 }).getCertChain('Milan', 'vcek'),
      ErrorCode.CollateralUnavailable,
      'kds.unreachable',
    );
    await rejectsCode(
      client({ timeoutMs: 100 }).getCertChain('Genoa', 'vcek'),
      ErrorCode.CollateralUnavailable,
      'kds.unreachable',
    );
  });

  it('connection refused: kds.unreachable', async () => {
    const dead = await LocalKds.start();
    const base = dead.base;
    await dead.close();
    const cl = new KdsClient({ baseUrl: base, timeoutMs: 2_000 });
    await rejectsCode(cl.getCertChain('Milan', 'vcek'), ErrorCode.CollateralUnavailable, 'kds.unreachable');
  });

  it('cache hit after restart: a new client on the same directory makes zero requests', async () => {
    reset();
    serveChains(kds);
    const c = cases.find((x) => x.product === 'Turin')!;
    kds.routes.set(c.expectedPath, { body: c.vcekDer });
    const clock = fakeClock();
    const crl = await makeCrl('Turin', new Date(clock.now() - 3_600_000), new Date(clock.now() + 86_400_000));
    kds.routes.set('/vcek/v1/Turin/crl', { body: crl });
    const dir = await tempDir();

    const first = client({ cacheDir: dir, now: clock.now, sleep: clock.sleep });
    const vcek1 = await first.getVcekForReport(c.report, 'Turin');
    const chain1 = await first.getCertChain('Turin', 'vcek');
    const crl1 = await first.getCrl('Turin', 'vcek');
    assert.equal(crl1.source, 'network');
    assert.equal(kds.hits.length, 3);
    for (const rel of [
      cachePath(vcekItemForReport(c.report, 'Turin')),
      'vcek/Turin/cert_chain.pem',
      'vcek/Turin/crl.der',
    ]) {
      assert.ok(existsSync(join(dir, rel)), `${rel} written`);
    }

    kds.hits.length = 0;
    const second = client({ cacheDir: dir, now: clock.now, sleep: clock.sleep });
    assert.deepEqual(await second.getVcekForReport(c.report, 'Turin'), vcek1);
    assert.deepEqual(await second.getCertChain('Turin', 'vcek'), chain1);
    const crl2 = await second.getCrl('Turin', 'vcek');
    assert.deepEqual(crl2.der, crl);
    assert.equal(crl2.source, 'cache');
    assert.equal(crl2.stale, false);
    assert.deepEqual(kds.hits, []);
  });

  it('CRL past nextUpdate is re-fetched (not within 10 s of the last fetch)', async () => {
    reset();
    const clock = fakeClock();
    const dir = await tempDir();
    const old = await makeCrl(
      'Milan',
      new Date(clock.now() - 2 * 86_400_000),
      new Date(clock.now() - 86_400_000),
    );
    const fresh = await makeCrl('Milan', new Date(clock.now()), new Date(clock.now() + 86_400_000));
    await mkdir(join(dir, 'vcek', 'Milan'), { recursive: true });
    await writeFile(join(dir, 'vcek', 'Milan', 'crl.der'), old);

    // The server too serves a CRL already past nextUpdate: the client returns it, says it is stale, and
    // does not ask again within AMD's 10 s window.
    kds.routes.set('/vcek/v1/Milan/crl', (n) => ({ body: n === 1 ? old : fresh }));
    const cl = client({ cacheDir: dir, now: clock.now, sleep: clock.sleep });
    const a = await cl.getCrl('Milan', 'vcek');
    assert.deepEqual([a.source, a.stale, kds.hits.length], ['network', true, 1]);
    const b = await cl.getCrl('Milan', 'vcek');
    assert.deepEqual([b.source, b.stale, kds.hits.length], ['cache', true, 1]);
    await clock.sleep(10_000);
    const c = await cl.getCrl('Milan', 'vcek');
    assert.deepEqual([c.source, c.stale, kds.hits.length], ['network', false, 2]);
    assert.deepEqual(c.der, fresh);
    assert.deepEqual(new Uint8Array(await readFile(join(dir, 'vcek', 'Milan', 'crl.der'))), fresh);
    const d = await cl.getCrl('Milan', 'vcek');
    assert.deepEqual([d.source, d.stale, kds.hits.length], ['cache', false, 2]);
  });

  it('online: a stale CRL whose re-fetch fails is an error, not silently served', async () => {
    reset();
    const clock = fakeClock();
    const dir = await tempDir();
    const old = await makeCrl(
      'Genoa',
      new Date(clock.now() - 2 * 86_400_000),
      new Date(clock.now() - 86_400_000),
    );
    await mkdir(join(dir, 'vlek', 'Genoa'), { recursive: true });
    await writeFile(join(dir, 'vlek', 'Genoa', 'crl.der'), old);
    await rejectsCode(
      client({ cacheDir: dir, now: clock.now }).getCrl('Genoa', 'vlek'),
      ErrorCode.CollateralUnavailable,
      'kds.not_found',
    );
  });

  it('online: a corrupt cache file is replaced by a fresh fetch', async () => {
    reset();
    serveChains(kds);
    const dir = await tempDir();
    await mkdir(join(dir, 'vcek', 'Genoa'), { recursive: true });
    await writeFile(join(dir, 'vcek', 'Genoa', 'cert_chain.pem'), 'not a chain');
    const chain = await client({ cacheDir: dir }).getCertChain('Genoa', 'vcek');
    assert.deepEqual(chain.ark, derOfPem('amd', 'genoa_ark.pem'));
    assert.equal(kds.hits.length, 1);
    const onDisk = await readFile(join(dir, 'vcek', 'Genoa', 'cert_chain.pem'));
    assert.deepEqual(parseCertChain(onDisk, 'Genoa', 'vcek'), chain);
  });
});

describe('offline mode and import', needsVectors, () => {
  const cases = loadVcekCases();
  const noNetwork: typeof globalThis.fetch = () => assert.fail('offline mode touched the network');

  it('offline needs a directory', async () => {
    await rejectsCode(
      Promise.resolve().then(() => new KdsClient({ offline: true })),
      ErrorCode.InvalidArgument,
      'kds.offline_without_dir',
    );
  });

  it('missing items: kds.offline_missing, and no network request', async () => {
    const dir = await tempDir();
    const cl = new KdsClient({ offline: true, cacheDir: dir, fetch: noNetwork });
    const c = cases[0]!;
    await rejectsCode(
      cl.getVcekForReport(c.report, c.product),
      ErrorCode.CollateralUnavailable,
      'kds.offline_missing',
    );
    await rejectsCode(
      cl.getCertChain('Milan', 'vcek'),
      ErrorCode.CollateralUnavailable,
      'kds.offline_missing',
    );
    await rejectsCode(cl.getCrl('Milan', 'vlek'), ErrorCode.CollateralUnavailable, 'kds.offline_missing');
  });

  it('imports the AMD directory (chains, and ASK/ASVK + ARK files paired) and serves them offline', async () => {
    const dir = await tempDir();
    const result = await importCollateral(vectorPath('amd'), dir);
    const paths = result.imported.map((e) => e.path).sort();
    assert.deepEqual(paths, [
      'vcek/Genoa/cert_chain.pem',
      'vcek/Milan/cert_chain.pem',
      'vcek/Turin/cert_chain.pem',
      'vlek/Genoa/cert_chain.pem',
      'vlek/Milan/cert_chain.pem',
      'vlek/Turin/cert_chain.pem',
    ]);
    // kds_cert_chain_milan.pem and milan_ask.pem + milan_ark.pem agree, so both feed one entry.
    const milan = result.imported.find((e) => e.path === 'vcek/Milan/cert_chain.pem')!;
    assert.ok(milan.files.some((f) => f.endsWith('kds_cert_chain_milan.pem')));
    assert.ok(milan.files.some((f) => f.endsWith('milan_ask.pem')));
    const cl = new KdsClient({ offline: true, cacheDir: dir, fetch: noNetwork });
    for (const product of ['Milan', 'Genoa', 'Turin'] as const) {
      const chain = await cl.getCertChain(product, 'vlek');
      assert.deepEqual(chain.intermediate, derOfPem('amd', `${product.toLowerCase()}_asvk.pem`));
      assert.deepEqual(chain.ark, derOfPem('amd', `${product.toLowerCase()}_ark.pem`));
    }
  });

  it('imports VCEKs (PEM and DER) filed by their own extensions, and CRLs by path word or signer', async () => {
    const src = await tempDir();
    const dir = await tempDir();
    const clock = fakeClock();
    const genoa = cases.find((c) => c.product === 'Genoa')!;
    const turin = cases.find((c) => c.product === 'Turin')!;
    await writeFile(join(src, 'turin-vcek.der'), turin.vcekDer);
    const crlVlek = await makeCrl(
      'Milan',
      new Date(clock.now() - 86_400_000),
      new Date(clock.now() - 3_600_000),
    );
    const crlVcek = await makeCrl(
      'Milan',
      new Date(clock.now() - 86_400_000),
      new Date(clock.now() + 3_600_000),
    );
    await writeFile(join(src, 'milan-vlek.crl'), crlVlek);
    await writeFile(join(src, 'unnamed.crl'), crlVcek);
    const result = await importCollateral(
      [
        vectorPath('snp', genoa.name, 'vcek.pem'),
        join(src, 'turin-vcek.der'),
        join(src, 'milan-vlek.crl'),
        { path: join(src, 'unnamed.crl'), signer: 'vcek' },
      ],
      dir,
    );
    assert.deepEqual(
      result.imported.map((e) => e.path).sort(),
      [
        cachePath(vcekItemForReport(genoa.report, 'Genoa')),
        cachePath(vcekItemForReport(turin.report, 'Turin')),
        'vcek/Milan/crl.der',
        'vlek/Milan/crl.der',
      ].sort(),
    );

    const cl = new KdsClient({ offline: true, cacheDir: dir, fetch: noNetwork, now: clock.now });
    assert.deepEqual(await cl.getVcekForReport(genoa.report, 'Genoa'), genoa.vcekDer);
    assert.deepEqual(await cl.getVcekForReport(turin.report, 'Turin'), turin.vcekDer);
    const stale = await cl.getCrl('Milan', 'vlek');
    assert.deepEqual([stale.source, stale.stale], ['offline', true]);
    assert.deepEqual(stale.der, crlVlek);
    const fresh = await cl.getCrl('Milan', 'vcek');
    assert.deepEqual([fresh.source, fresh.stale], ['offline', false]);

    // A newer CRL imported while the client runs replaces the stale one it holds.
    const newer = await makeCrl('Milan', new Date(clock.now() - 60_000), new Date(clock.now() + 86_400_000));
    await writeFile(join(src, 'newer-vlek.crl'), newer);
    await importCollateral([join(src, 'newer-vlek.crl')], dir);
    const renewed = await cl.getCrl('Milan', 'vlek');
    assert.deepEqual([renewed.source, renewed.stale], ['offline', false]);
    assert.deepEqual(renewed.der, newer);
  });

  it('offline: an unusable imported file is kds.cache_corrupt', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'vcek', 'Milan'), { recursive: true });
    await writeFile(join(dir, 'vcek', 'Milan', 'cert_chain.pem'), readVector('amd', CHAIN_FILES.Genoa.vcek));
    await writeFile(join(dir, 'vcek', 'Milan', 'crl.der'), new Uint8Array(70 * 1024));
    const cl = new KdsClient({ offline: true, cacheDir: dir, fetch: noNetwork });
    await rejectsCode(cl.getCertChain('Milan', 'vcek'), ErrorCode.CollateralUnavailable, 'kds.cache_corrupt');
    await rejectsCode(cl.getCrl('Milan', 'vcek'), ErrorCode.CollateralUnavailable, 'kds.cache_corrupt');
  });

  it('import refuses what it cannot file, before writing anything', async () => {
    const src = await tempDir();
    const dir = await tempDir();
    const crl = await makeCrl('Genoa', new Date(), new Date(Date.now() + 86_400_000));
    await writeFile(join(src, 'list.crl'), crl);
    await writeFile(
      join(src, 'junk.pem'),
      '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n',
    );
    await writeFile(join(src, 'hello.pem'), 'hello');
    await writeFile(join(src, 'junk.der'), new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]));
    const ask = vectorPath('amd', 'genoa_ask.pem');
    const imp = (files: Parameters<typeof importCollateral>[0]) => importCollateral(files, dir);
    await rejectsCode(imp([join(src, 'list.crl')]), ErrorCode.Malformed, 'collateral.import.crl_signer');
    await rejectsCode(imp([join(src, 'junk.pem')]), ErrorCode.Malformed, 'collateral.import.pem');
    await rejectsCode(imp([join(src, 'junk.der')]), ErrorCode.Malformed, 'collateral.import.unrecognized');
    await rejectsCode(imp([join(src, 'hello.pem')]), ErrorCode.Malformed, 'collateral.import.unrecognized');
    await rejectsCode(imp([ask]), ErrorCode.Malformed, 'collateral.import.no_ark');
    await rejectsCode(
      imp([
        vectorPath('amd', 'kds_cert_chain_milan.pem'),
        vectorPath('snp', 'microsoft-tav-genoa', 'report.bin'),
      ]),
      ErrorCode.Malformed,
      'collateral.import.unrecognized',
    );
    await rejectsCode(
      imp([vectorPath('amd', 'milan_ark.pem'), vectorPath('amd', 'turin_ark.pem'), ask]),
      ErrorCode.Malformed,
      'collateral.import.no_ark',
    );
    assert.equal(existsSync(join(dir, 'vcek')), false);
    assert.equal(existsSync(join(dir, 'vlek')), false);
  });

  it('import: a VLEK leaf and a lone ARK are listed as unused; non-collateral names in a directory too', async () => {
    const dir = await tempDir();
    const vlekCase = 'constellation-aws-milan-vlek-2024';
    const r1 = await importCollateral(
      [vectorPath('snp', vlekCase, 'vlek.pem'), vectorPath('amd', 'turin_ark.pem')],
      dir,
    );
    assert.deepEqual(r1.imported, []);
    assert.equal(r1.unused.length, 2);
    const r2 = await importCollateral(vectorPath('snp', vlekCase), dir);
    // asvk.pem + ark.pem pair into the VLEK chain; report.bin and expected.json are not collateral names.
    assert.deepEqual(
      r2.imported.map((e) => e.path),
      ['vlek/Milan/cert_chain.pem'],
    );
    assert.deepEqual(r2.unused.map((u) => u.file.split('/').pop()).sort(), [
      'expected.json',
      'report.bin',
      'vlek.pem',
    ]);
  });
});

describe('KDS body parsers on hostile input', () => {
  const typed = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof AttestationError)) throw e;
    }
  };

  it('never throw anything but a typed error (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        typed(() => parseCertChain(bytes, 'Milan', 'vcek'));
        typed(() => parseKdsCrl(bytes));
        typed(() => readVcekIdentity(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('DER-looking and PEM-looking mutations stay typed', needsVectors, () => {
    const chain = readVector('amd', 'kds_cert_chain_milan.pem');
    const vcek = derOfPem('snp', 'microsoft-tav-milan', 'vcek.pem');
    fc.assert(
      fc.property(
        fc.nat(vcek.length - 1),
        fc.integer({ min: 0, max: 255 }),
        fc.nat(chain.length - 1),
        (i, v, j) => {
          const d = Uint8Array.from(vcek);
          d[i] = v;
          typed(() => readVcekIdentity(d));
          typed(() => readVcekIdentity(d.subarray(0, i)));
          const p = Uint8Array.from(chain);
          p[j] = v;
          typed(() => parseCertChain(p, 'Milan', 'vcek'));
          typed(() => parseKdsCrl(d));
        },
      ),
      { numRuns: 300 },
    );
  });
});
