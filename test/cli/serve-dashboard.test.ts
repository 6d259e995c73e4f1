/**
 * `vouchsafe serve` and the dashboard: on by default on a loopback address (its URL printed), off with
 * `--dashboard off` (no /ui/ route), and `--dashboard` takes only on or off. The compiled CLI (run
 * `npx tsc -p tsconfig.build.json` and `node scripts/build-web.mjs`, or `npm run build`, first).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { exited, runCli, startCli } from './run-cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'vs-serve-dashboard-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

async function serve(extra: string[], data: string) {
  const d = await startCli(
    ['serve', '--listen', '127.0.0.1:0', '--data', join(tmp, data), '--no-kds', ...extra],
    /dashboard: +(\S+)/,
  );
  children.push(d.p);
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(d.output())![1]!;
  return { ...d, url, dashboard: d.match[1]! };
}

it('serves the dashboard at /ui/ by default on loopback, and prints its URL', async () => {
  const d = await serve([], 'a');
  assert.equal(d.dashboard, `${d.url}/ui/`);
  const page = await fetch(d.dashboard);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  d.p.kill('SIGTERM');
  assert.equal(await exited(d.p), 0);
});

it('--dashboard off: no /ui/ route at all', async () => {
  const d = await serve(['--dashboard', 'off'], 'b');
  assert.equal(d.dashboard, 'off');
  const r = await fetch(`${d.url}/ui/`);
  assert.equal(r.status, 404);
  assert.equal(((await r.json()) as { reason: string }).reason, 'api.not_found');
  d.p.kill('SIGTERM');
  assert.equal(await exited(d.p), 0);
});

it('--dashboard takes only on or off (usage error, exit 2)', async () => {
  const r = await runCli(['serve', '--dashboard', 'maybe', '--data', join(tmp, 'c')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--dashboard/);
});
