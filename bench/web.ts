/**
 * The operator dashboard (docs/dashboard.md), two figures with a budget each (issue 15):
 *
 * - `web.bundle`: the bytes a browser downloads for the dashboard (dist/web-assets: app.js + app.css +
 *   index.html), gzip-compressed as a reverse proxy or browser cache would hold it. Floor: the same files
 *   uncompressed (ratio = the compression). Budget: 100 KiB gzipped.
 * - `web.first_render`: from navigation start to the instances table drawn with the broker's data (a
 *   signed-in session, 20 instances), in headless Chromium, as renders per second of wall time. Floor:
 *   navigating the same browser to the broker's /healthz (one request, no script): what any page of this
 *   broker costs. Budget: a median first render within 1 000 ms.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createCredential } from '../src/broker/credentials.js';
import { registerDashboard } from '../src/web/index.js';
import { startBrokerStack } from '../test/helpers/broker.js';
import { launchChromium } from '../test/helpers/chromium.js';
import type { Figure } from './harness.js';

const BUNDLE_BUDGET_GZIP = 100 * 1024;
const FIRST_RENDER_BUDGET_MS = 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchWeb(root: string): Promise<Figure[]> {
  const assets = join(root, 'dist', 'web-assets');
  if (!existsSync(join(assets, 'index.html'))) {
    throw new Error('web.bundle measures the built dashboard: run `npm run build` first');
  }
  let raw = 0;
  let gz = 0;
  for (const name of readdirSync(assets)) {
    const body = readFileSync(join(assets, name));
    raw += body.length;
    gz += gzipSync(body, { level: 9 }).length;
  }
  const bundle: Figure = {
    name: 'web.bundle',
    unit: 'bytes',
    value: gz,
    floor: { name: 'uncompressed', value: raw },
    ratio: Number((gz / raw).toFixed(3)),
    rounds: 1,
    budget: { value: BUNDLE_BUDGET_GZIP, unit: 'bytes (gzip)', within: gz <= BUNDLE_BUDGET_GZIP },
    extra: { app_js_bytes: readFileSync(join(assets, 'app.js')).length },
  };

  const stack = await startBrokerStack({
    tmpPrefix: 'vouchsafe-bench-web-',
    broker: { extend: (app, parts) => registerDashboard(app, parts, { assetsDir: assets }).then(() => {}) },
  });
  const browser = await launchChromium();
  try {
    for (let i = 0; i < 20; i++) await stack.register({ project: 'bench' });
    const token = (
      await createCredential(stack.b.store, { name: 'bench', role: 'read', projects: ['bench'] }, Date.now())
    ).token;
    const signIn = await stack.call('POST', '/ui/api/session', { credential: token });
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0]!.split('=');
    const url = new URL(`${stack.b.url}/ui/`);
    await browser.context.addCookies([
      {
        name: cookie[0]!,
        value: cookie[1]!,
        domain: url.hostname,
        path: '/ui/',
        httpOnly: true,
        sameSite: 'Strict',
      },
    ]);
    const page = await browser.context.newPage();
    // Milliseconds from navigation start (performance.now() in the page) to the moment `selector` is there.
    const load = async (target: string, selector: string) => {
      await page.goto('about:blank');
      await page.goto(target);
      await page.waitForSelector(selector);
      return (await page.evaluate('performance.now()')) as number;
    };
    await load(`${stack.b.url}/ui/#/instances`, '[data-testid=instances] tbody tr');
    const rounds = Number(process.env.BENCH_ROUNDS ?? 11);
    const f: number[] = [];
    const s: number[] = [];
    for (let i = 0; i < rounds; i++) {
      f.push(await load(`${stack.b.url}/healthz`, 'body'));
      s.push(await load(`${stack.b.url}/ui/#/instances`, '[data-testid=instances] tbody tr'));
    }
    const ms = median(s);
    const first: Figure = {
      name: 'web.first_render',
      unit: 'ops/s',
      value: Number((1000 / ms).toFixed(2)),
      floor: { name: 'GET /healthz in the same browser', value: Number((1000 / median(f)).toFixed(2)) },
      // Per round, floor time / subject time (the floor load just before): the median of those.
      ratio: Number(median(s.map((v, i) => f[i]! / v)).toFixed(3)),
      rounds,
      budget: { value: FIRST_RENDER_BUDGET_MS, unit: 'ms (median)', within: ms <= FIRST_RENDER_BUDGET_MS },
      extra: { median_ms: Number(ms.toFixed(1)), floor_median_ms: Number(median(f).toFixed(1)) },
    };
    return [bundle, first];
  } finally {
    await browser.close();
    await stack.close();
  }
}
