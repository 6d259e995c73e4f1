import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgument, MalformedEvidence, NotSupported, Unavailable } from '../errors.js';
import { checkReportData, type ReportProvider, type ReportResult } from './report-provider.js';

/** The file operations the provider needs; defaults to node:fs/promises (tests pass a kernel mimic). */
export interface TsmFs {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array | string): Promise<void>;
}

export interface ConfigfsTsmOptions {
  /** Default `/sys/kernel/config/tsm/report`. */
  readonly root?: string;
  /** SNP VMPL to request (0-3); checked against `privlevel_floor`. Unset: the kernel's default. */
  readonly privlevel?: number;
  /** `svsm` routes the request through the SVSM attestation protocol (REPORT_DATA then covers a manifest). */
  readonly serviceProvider?: string;
  /** With `serviceProvider`: one service's GUID (e.g. the vTPM); unset = all services. */
  readonly serviceGuid?: string;
  /** Retries when another writer races us (default 3 attempts). */
  readonly maxAttempts?: number;
  readonly fs?: TsmFs;
}

const nodeFs: TsmFs = {
  mkdir: async (p) => {
    await fsp.mkdir(p);
  },
  rmdir: (p) => fsp.rmdir(p),
  readFile: async (p) => new Uint8Array(await fsp.readFile(p)),
  writeFile: (p, d) => fsp.writeFile(p, d),
};

const MAX_OUTBLOB = 32 * 1024;

/**
 * SNP reports through Linux configfs-tsm (Documentation/ABI/testing/configfs-tsm-report; reference
 * svsm-protocol.md §7): mkdir a private entry under the report root, write `privlevel` (and the SVSM
 * service attributes) and `inblob`, read `outblob` and `auxblob`, and rmdir the entry. `provider` must be
 * `sev_guest`. `generation` counts writes to the entry: it must equal the number of our own writes before
 * and after reading, otherwise another writer raced us and the report may cover someone else's inblob; the
 * request is retried in a fresh entry.
 *
 * Errors: Unavailable `tsm.unavailable` (no configfs-tsm: kernel without CONFIG_TSM_REPORTS or
 * configfs not mounted), `tsm.generation_race`; NotSupported `tsm.provider`; InvalidArgument
 * `tsm.privlevel`; MalformedEvidence `tsm.outblob`.
 */
export class ConfigfsTsmProvider implements ReportProvider {
  private readonly root: string;
  private readonly fs: TsmFs;

  constructor(private readonly opts: ConfigfsTsmOptions = {}) {
    this.root = opts.root ?? '/sys/kernel/config/tsm/report';
    this.fs = opts.fs ?? nodeFs;
    if (
      opts.privlevel !== undefined &&
      !(Number.isInteger(opts.privlevel) && opts.privlevel >= 0 && opts.privlevel <= 3)
    ) {
      throw new InvalidArgument('tsm.privlevel', 'privlevel is 0..3');
    }
  }

  async getReport(reportData: Uint8Array): Promise<ReportResult> {
    checkReportData(reportData);
    const attempts = this.opts.maxAttempts ?? 3;
    for (let i = 0; i < attempts; i++) {
      const r = await this.once(reportData);
      if (r) return r;
    }
    throw new Unavailable('tsm.generation_race', `another writer raced every one of ${attempts} attempts`);
  }

  /** One attempt in a fresh entry; undefined if raced. */
  private async once(reportData: Uint8Array): Promise<ReportResult | undefined> {
    const dir = join(this.root, `vouchsafe-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await this.fs.mkdir(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new Unavailable(
        'tsm.unavailable',
        `cannot create a report entry under ${this.root} (${code}): is configfs mounted and the kernel built with CONFIG_TSM_REPORTS and the sev-guest driver?`,
        { cause: e },
      );
    }
    try {
      const provider = await this.readText(dir, 'provider');
      if (provider !== 'sev_guest')
        throw new NotSupported('tsm.provider', `TSM provider is ${provider}, not sev_guest`);
      let writes = 0;
      if (this.opts.privlevel !== undefined) {
        const floor = Number(await this.readText(dir, 'privlevel_floor'));
        if (this.opts.privlevel < floor) {
          throw new InvalidArgument(
            'tsm.privlevel',
            `privlevel ${this.opts.privlevel} is below the floor ${floor}`,
          );
        }
        await this.fs.writeFile(join(dir, 'privlevel'), `${this.opts.privlevel}\n`);
        writes++;
      }
      if (this.opts.serviceProvider !== undefined) {
        await this.fs.writeFile(join(dir, 'service_provider'), this.opts.serviceProvider);
        writes++;
        if (this.opts.serviceGuid !== undefined) {
          await this.fs.writeFile(join(dir, 'service_guid'), this.opts.serviceGuid);
          writes++;
        }
      }
      await this.fs.writeFile(join(dir, 'inblob'), reportData);
      writes++;
      const before = await this.readGeneration(dir);
      const report = await this.fs.readFile(join(dir, 'outblob'));
      const aux = await this.readOptional(dir, 'auxblob');
      const after = await this.readGeneration(dir);
      if (before !== writes || after !== writes) return undefined;
      if (report.length === 0 || report.length > MAX_OUTBLOB) {
        throw new MalformedEvidence('tsm.outblob', `outblob is ${report.length} bytes`);
      }
      return aux && aux.length > 0 ? { report, certTable: aux } : { report };
    } finally {
      await this.fs.rmdir(dir).catch(() => {});
    }
  }

  private async readText(dir: string, name: string): Promise<string> {
    return Buffer.from(await this.fs.readFile(join(dir, name)))
      .toString('utf8')
      .trim();
  }

  private async readGeneration(dir: string): Promise<number> {
    const t = await this.readText(dir, 'generation');
    if (!/^[0-9]{1,12}$/.test(t)) throw new MalformedEvidence('tsm.generation', 'generation is not a number');
    return Number(t);
  }

  /** auxblob is absent or empty when the host installed no certificates. */
  private async readOptional(dir: string, name: string): Promise<Uint8Array | undefined> {
    try {
      return await this.fs.readFile(join(dir, name));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENXIO' || code === 'ENOTTY' || code === 'ENODATA') return undefined;
      throw e;
    }
  }
}
