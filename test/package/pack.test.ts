import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertDistBuilt, ROOT } from '../helpers/dist.js';
import { needsVectors, vectorPath } from '../helpers/vectors.js';
import { cleanEnv, installOffline, type Packed, pack } from './install.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runFile(file: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(file, args, { cwd, env: cleanEnv(), maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Dependencies the sources never import: tests only. None of them may reach an installed package. */
const TEST_ONLY = [
  'tsx',
  'typescript',
  'esbuild',
  'jose',
  'pkijs',
  'preact',
  'htm',
  'uplot',
  'playwright-core',
];

describe('the npm tarball, installed into an empty prefix', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vs-pack-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  let packed: Packed;
  let prefix: string;
  let vouchsafe: (args: string[]) => Promise<Run>;

  before(async () => {
    // The packaging is under test, not the freshness of dist/ (scripts/test.sh builds it first): a source
    // edited since the last build does not make the tarball's layout or its install any less real.
    assertDistBuilt();
    packed = await pack(tmp);
    prefix = await installOffline(tmp, packed.filename);
    // The command as npm linked it: the shebang, the bin symlink and the compiled dist/ behind it.
    const bin = join(prefix, 'node_modules', '.bin', 'vouchsafe');
    vouchsafe = (args) => runFile(bin, args, prefix);
  });

  it('holds the compiled CLI and nothing of the repository besides (no tests, no sources)', () => {
    assert.ok(packed.files.includes('bin/vouchsafe.js'));
    assert.ok(packed.files.includes('dist/cli/main.js'));
    // The dashboard, built by esbuild at pack time (its libraries are bundled, not dependencies).
    for (const f of ['index.html', 'app.js', 'app.css'])
      assert.ok(packed.files.includes(`dist/web-assets/${f}`), f);
    const stray = packed.files.filter(
      (f) => !/^(dist|bin)\//.test(f) && !['package.json', 'README.md', 'LICENSE'].includes(f),
    );
    assert.deepEqual(stray, []);
    assert.deepEqual(
      packed.files.filter(
        (f) => f.endsWith('.test.ts') || f.endsWith('.test.js') || f.endsWith('.tsbuildinfo'),
      ),
      [],
    );
    assert.deepEqual(
      packed.files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')),
      [],
    );
  });

  it('installs without any test-only dependency (no tsx or TypeScript at run time)', () => {
    const installed = JSON.parse(
      readFileSync(join(prefix, 'node_modules', 'vouchsafe', 'package.json'), 'utf8'),
    );
    assert.deepEqual(
      Object.keys(installed.dependencies).filter((d) => TEST_ONLY.includes(d)),
      [],
    );
    assert.deepEqual(
      TEST_ONLY.filter((d) => existsSync(join(prefix, 'node_modules', d))),
      [],
    );
  });

  it('runs `vouchsafe --help`', async () => {
    const r = await vouchsafe(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const command of ['verify', 'serve', 'proxy', 'guest', 'ca', 'demo']) {
      assert.match(r.stdout, new RegExp(`^\\s+${command}\\b`, 'm'));
    }
  });

  it('verifies a real Turin report with its chain: exit 0, accepted', needsVectors, async () => {
    const dir = vectorPath('snp', 'microsoft-tav-turin');
    const r = await vouchsafe([
      'verify',
      'snp',
      join(dir, 'report.bin'),
      '--vcek',
      join(dir, 'vcek.pem'),
      '--ask',
      join(dir, 'ask.pem'),
      '--ark',
      join(dir, 'ark.pem'),
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.verdict, 'accepted');
    assert.equal(out.claims.product, 'Turin');
  });

  it('runs the demo: every step ends as expected, exit 0', async () => {
    const r = await vouchsafe(['demo', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const events = JSON.parse(r.stdout) as { expected: boolean; outcome: string }[];
    assert.deepEqual(
      events.filter((e) => !e.expected),
      [],
    );
    assert.ok(events.some((e) => e.outcome === 'released'));
    assert.ok(events.some((e) => e.outcome === 'refused'));
  });

  it('runs demo --keep-running: prints the dashboard URL, serves the built dashboard there until interrupted, then exits 0', async () => {
    const child = spawn(join(prefix, 'node_modules', '.bin', 'vouchsafe'), ['demo', '--keep-running'], {
      cwd: prefix,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    let out = '';
    const url = await new Promise<string>((done, fail) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/ui\/)$/m.exec(out);
        if (m) done(m[1]!);
      });
      child.on('exit', () => fail(new Error(`demo exited before printing the URL:\n${out}`)));
    });
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await page.text(), /assets\/app\.js/);
    assert.equal((await fetch(`${url}assets/app.js`)).status, 200);
    child.kill('SIGINT');
    assert.equal(await exited, 0, out);
  });
});

describe('bin/vouchsafe.js without dist/', () => {
  it('exits 2 and says to build, instead of falling back to the sources', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vs-nodist-'));
    try {
      mkdirSync(join(dir, 'bin'));
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
      copyFileSync(join(ROOT, 'bin', 'vouchsafe.js'), join(dir, 'bin', 'vouchsafe.js'));
      const r = await runFile(process.execPath, [join(dir, 'bin', 'vouchsafe.js'), '--help'], dir);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /npm run build/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
