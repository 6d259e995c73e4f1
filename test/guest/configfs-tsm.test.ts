import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AttestationError } from '../../src/errors.js';
import { ConfigfsTsmProvider, type TsmFs } from '../../src/guest/configfs-tsm.js';
import { simulatorReportProvider } from '../../src/guest/report-provider.js';
import { rejectsCode } from '../helpers/assert-error.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/**
 * A temp directory that mimics /sys/kernel/config/tsm/report with the kernel's behaviour: mkdir creates the
 * attribute files, every attribute write bumps `generation`, reading `outblob` produces a report over the
 * current `inblob`, rmdir removes the entry. Options inject a foreign provider or a racing writer.
 */
function fakeKernel(opts: { provider?: string; floor?: number; racer?: number; aux?: boolean } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'vs-tsm-'));
  roots.push(root);
  let races = opts.racer ?? 0;
  const writes: string[] = [];
  const gen = (d: string) => Number(readFileSync(join(d, 'generation'), 'utf8'));
  const fs: TsmFs = {
    async mkdir(p) {
      mkdirSync(p);
      writeFileSync(join(p, 'provider'), `${opts.provider ?? 'sev_guest'}\n`);
      writeFileSync(join(p, 'generation'), '0\n');
      writeFileSync(join(p, 'privlevel_floor'), `${opts.floor ?? 0}\n`);
    },
    async rmdir(p) {
      rmSync(p, { recursive: true });
    },
    async writeFile(p, data) {
      const d = dirname(p);
      if (!existsSync(join(d, 'generation'))) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      if (basename(p) === 'inblob' && (data as Uint8Array).length > 64) {
        throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
      }
      writes.push(basename(p));
      writeFileSync(p, data);
      writeFileSync(join(d, 'generation'), `${gen(d) + 1}\n`);
    },
    async readFile(p) {
      const d = dirname(p);
      if (basename(p) === 'outblob') {
        if (races > 0) {
          races--;
          writeFileSync(join(d, 'generation'), `${gen(d) + 1}\n`); // another process wrote inblob meanwhile
        }
        const report = new Uint8Array(0x4a0);
        report.set(readFileSync(join(d, 'inblob')), 0x50);
        return report;
      }
      if (basename(p) === 'auxblob') {
        if (!opts.aux) throw Object.assign(new Error('ENXIO'), { code: 'ENXIO' });
        return new Uint8Array([1, 2, 3]);
      }
      return new Uint8Array(readFileSync(p));
    },
  };
  return { root, fs, writes };
}

const rd = new Uint8Array(64).map((_, i) => i);

describe('configfs-tsm report provider', () => {
  it('writes inblob, reads outblob and auxblob, checks the provider, and removes its entry', async () => {
    const k = fakeKernel({ aux: true });
    const p = new ConfigfsTsmProvider({ root: k.root, fs: k.fs, privlevel: 0 });
    const r = await p.getReport(rd);
    assert.equal(r.report.length, 0x4a0);
    assert.deepEqual(r.report.subarray(0x50, 0x90), rd);
    assert.deepEqual(r.certTable, new Uint8Array([1, 2, 3]));
    assert.deepEqual(k.writes, ['privlevel', 'inblob']);
    assert.deepEqual(readdirSync(k.root), [], 'entry removed');
  });

  it('without auxblob there is no cert table', async () => {
    const k = fakeKernel();
    const r = await new ConfigfsTsmProvider({ root: k.root, fs: k.fs }).getReport(rd);
    assert.equal(r.certTable, undefined);
  });

  it('refuses a provider other than sev_guest', async () => {
    const k = fakeKernel({ provider: 'tdx_guest' });
    await rejectsCode(
      new ConfigfsTsmProvider({ root: k.root, fs: k.fs }).getReport(rd),
      'ERR_NOT_SUPPORTED',
      'tsm.provider',
    );
    assert.deepEqual(readdirSync(k.root), [], 'entry removed after an error too');
  });

  it('detects a racing writer through generation and retries in a fresh entry', async () => {
    const k = fakeKernel({ racer: 1 });
    const r = await new ConfigfsTsmProvider({ root: k.root, fs: k.fs }).getReport(rd);
    assert.deepEqual(r.report.subarray(0x50, 0x90), rd);
    assert.deepEqual(k.writes, ['inblob', 'inblob']);
    const always = fakeKernel({ racer: 100 });
    await rejectsCode(
      new ConfigfsTsmProvider({ root: always.root, fs: always.fs, maxAttempts: 3 }).getReport(rd),
      'ERR_UNAVAILABLE',
      'tsm.generation_race',
    );
    assert.deepEqual(readdirSync(always.root), []);
  });

  it('refuses a privlevel below the floor, and invalid privlevels', async () => {
    const k = fakeKernel({ floor: 2 });
    await rejectsCode(
      new ConfigfsTsmProvider({ root: k.root, fs: k.fs, privlevel: 1 }).getReport(rd),
      'ERR_INVALID_ARGUMENT',
      'tsm.privlevel',
    );
    assert.throws(
      () => new ConfigfsTsmProvider({ privlevel: 4 }),
      (e: unknown) => e instanceof AttestationError && e.reason === 'tsm.privlevel',
    );
  });

  it('reports a missing configfs-tsm as Unavailable (real fs, nonexistent root)', async () => {
    const p = new ConfigfsTsmProvider({ root: join(tmpdir(), 'vs-no-such-tsm', 'report') });
    await rejectsCode(p.getReport(rd), 'ERR_UNAVAILABLE', 'tsm.unavailable');
  });

  it('refuses REPORT_DATA that is not 64 bytes', async () => {
    const k = fakeKernel();
    await rejectsCode(
      new ConfigfsTsmProvider({ root: k.root, fs: k.fs }).getReport(new Uint8Array(32)),
      'ERR_INVALID_ARGUMENT',
      'guest.report_data',
    );
  });
});

describe('simulator report provider', () => {
  it('adapts anything with getReport(reportData) => {report, certTable}', async () => {
    const firmware = {
      getReport(reportData: Uint8Array) {
        const report = new Uint8Array(0x4a0);
        report.set(reportData, 0x50);
        return { report, certTable: new Uint8Array([9]) };
      },
    };
    const r = await simulatorReportProvider(firmware).getReport(rd);
    assert.deepEqual(r.report.subarray(0x50, 0x90), rd);
    assert.deepEqual(r.certTable, new Uint8Array([9]));
    await rejectsCode(
      simulatorReportProvider({ getReport: () => ({ report: new Uint8Array(0) }) }).getReport(rd),
      'ERR_MALFORMED',
      'guest.report.empty',
    );
  });
});
