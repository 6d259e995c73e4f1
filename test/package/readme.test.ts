/**
 * The README works when pasted (issue 14). Two checks:
 *
 * 1. Each ```sh block marked `<!-- readme-test: run -->` runs as it is, with bash (-e), in an empty temporary
 *    directory, with `vouchsafe` on PATH as the compiled CLI (bin/vouchsafe.js). The only change is the port:
 *    `8443` becomes a free loopback port, so the test never collides with a broker already on 8443. Blocks
 *    marked `<!-- readme-test: skip (why) -->` need what a test machine lacks (root, vsock, hardware). Every
 *    block of the "Release keys" walk-through says which it is, so a new one cannot be left out unnoticed;
 *    elsewhere unmarked blocks are examples with placeholder inputs (report.bin, quote.bin), checked by 2.
 * 2. Every `vouchsafe …` line of every sh block names a command that exists and options that command
 *    takes (from its --help), so a renamed command or option breaks the test, not the reader.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { VOUCHSAFE_BIN } from '../cli/run-cli.js';
import { assertDistBuilt, ROOT } from '../helpers/dist.js';

interface Block {
  readonly mark: 'run' | 'skip' | undefined;
  readonly code: string;
  readonly line: number;
  /** The `## ` section it is in. */
  readonly section: string;
}

function readmeBlocks(): Block[] {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const out: Block[] = [];
  for (const m of text.matchAll(/(?:<!-- readme-test: (run|skip)[^>]*-->\n)?```sh\n([\s\S]*?)```/g)) {
    const before = text.slice(0, m.index);
    out.push({
      mark: m[1] as Block['mark'],
      code: m[2]!,
      line: before.split('\n').length,
      section: [...before.matchAll(/^## (.*)$/gm)].pop()?.[1] ?? '',
    });
  }
  return out;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });

function cli(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [VOUCHSAFE_BIN, ...args], { maxBuffer: 4 << 20 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('README.md as pasted', () => {
  it('every block of the Release keys walk-through is marked run or skip; one runs', () => {
    const walk = readmeBlocks().filter((b) => b.section.startsWith('Release keys'));
    assert.ok(walk.some((b) => b.mark === 'run'));
    assert.deepEqual(
      walk.filter((b) => b.mark === undefined).map((b) => `README.md:${b.line}`),
      [],
      'mark each block <!-- readme-test: run --> or <!-- readme-test: skip (why) -->',
    );
  });

  for (const block of readmeBlocks().filter((b) => b.mark === 'run')) {
    it(`runs the block at README.md:${block.line} in an empty directory`, { timeout: 300_000 }, async () => {
      assertDistBuilt();
      const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-readme-'));
      dirs.push(dir);
      const bin = join(dir, '.bin');
      mkdirSync(bin);
      writeFileSync(
        join(bin, 'vouchsafe'),
        `#!/bin/sh\nexec "${process.execPath}" "${VOUCHSAFE_BIN}" "$@"\n`,
      );
      chmodSync(join(bin, 'vouchsafe'), 0o755);
      const work = join(dir, 'work');
      mkdirSync(work);
      const port = await freePort();
      const script = block.code.replaceAll('8443', String(port));
      const p = spawn('bash', ['-e', '-c', script], {
        cwd: work,
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      let out = '';
      p.stdout.on('data', (d) => {
        out += d;
      });
      p.stderr.on('data', (d) => {
        out += d;
      });
      const code = await new Promise<number | null>((r) => p.once('close', (c) => r(c)));
      // Whatever the block left running (it stops its own jobs; a failed run may not have).
      try {
        process.kill(-p.pid!, 'SIGTERM');
      } catch {
        // the group is gone
      }
      assert.equal(code, 0, `the block at README.md:${block.line} failed:\n${out}`);
      if (block.code.includes('guest boot')) {
        assert.match(out, /state created/, out);
        assert.match(out, /state unsealed/, out);
        assert.ok(existsSync(join(work, 'vm1.state')));
      }
    });
  }

  it('every vouchsafe command line names a command and options that exist', {
    timeout: 300_000,
  }, async () => {
    assertDistBuilt();
    const helps = new Map<string, Promise<{ code: number; out: string }>>();
    const help = (path: string[]) => {
      const k = path.join(' ');
      if (!helps.has(k)) helps.set(k, cli([...path, '--help']));
      return helps.get(k)!;
    };
    const problems: string[] = [];
    for (const block of readmeBlocks()) {
      const lines = block.code.replace(/\\\n\s*/g, ' ').split('\n');
      for (const raw of lines) {
        const line = raw.replace(/\s#\s.*$/, '');
        for (const m of line.matchAll(/(?:^|[\s;&|(])vouchsafe((?: [a-z][a-z0-9-]*)+)(.*)/g)) {
          const words = m[1]!.trim().split(' ');
          // Descend while the help lists the next word as a subcommand.
          const path: string[] = [];
          for (const w of words) {
            const h = await help(path);
            const commands = h.out.split(/\nCommands:\n/)[1] ?? '';
            if (!new RegExp(`^\\s+${w}\\b`, 'm').test(commands)) break;
            path.push(w);
          }
          if (path.length === 0) {
            problems.push(`README.md:${block.line}: no command in "${line.trim()}"`);
            continue;
          }
          const h = await help(path);
          if (h.code !== 0)
            problems.push(`README.md:${block.line}: vouchsafe ${path.join(' ')} --help exits ${h.code}`);
          for (const opt of `${m[1]}${m[2]}`.matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g)) {
            if (!h.out.includes(opt[1]!)) {
              problems.push(`README.md:${block.line}: vouchsafe ${path.join(' ')} has no option ${opt[1]}`);
            }
          }
        }
      }
    }
    assert.deepEqual(problems, []);
  });
});
