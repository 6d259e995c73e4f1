import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { CollateralUnavailable, MalformedEvidence } from '../errors.js';
import { toHex } from '../util/bytes.js';
import { writeCacheFileAtomic } from './atomic-write.js';
import { MAX_KDS_BODY } from './kds-bodies.js';
import type { KdsItem } from './kds-url.js';

/**
 * The on-disk collateral cache, also the layout of an offline import directory. Paths are readable and built
 * only from validated values (product enum, hex, integers), never from URL text, so no input can escape the
 * directory:
 *
 *   vcek/{Product}/cert_chain.pem                     ASK then ARK, PEM (as KDS serves it)
 *   vlek/{Product}/cert_chain.pem                     ASVK then ARK
 *   vcek/{Product}/crl.der, vlek/{Product}/crl.der    DER CRLs issued by the ARK
 *   vcek/{Product}/{hwid hex}/bl{n}-tee{n}-snp{n}-ucode{n}.der           Milan, Genoa (hwid = 64-byte CHIP_ID)
 *   vcek/Turin/{hwid hex}/fmc{n}-bl{n}-tee{n}-snp{n}-ucode{n}.der        Turin (hwid = CHIP_ID[0:8])
 *
 * The base URL is not part of the path: a mirror serves the same bytes as KDS.
 */
export function cachePath(item: KdsItem): string {
  switch (item.kind) {
    case 'cert_chain':
      return `${item.signer}/${item.product}/cert_chain.pem`;
    case 'crl':
      return `${item.signer}/${item.product}/crl.der`;
    case 'vcek': {
      const t = item.tcb;
      const fmc = item.product === 'Turin' ? `fmc${t.fmc ?? 0}-` : '';
      return `vcek/${item.product}/${toHex(item.hwid)}/${fmc}bl${t.bootloader}-tee${t.tee}-snp${t.snp}-ucode${t.microcode}.der`;
    }
  }
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

/** A directory of collateral files in the {@link cachePath} layout. */
export class CollateralCache {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Absolute file name of an item. */
  fileOf(item: KdsItem): string {
    return join(this.dir, ...cachePath(item).split('/'));
  }

  /**
   * Reads an item's bytes, or undefined when absent. Throws MalformedEvidence `kds.cache_corrupt` for a file
   * larger than any KDS body, CollateralUnavailable `kds.cache_io` for other I/O failures.
   */
  async read(item: KdsItem): Promise<Uint8Array | undefined> {
    const file = this.fileOf(item);
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
      throw new CollateralUnavailable('kds.cache_io', `cannot read cache file ${file}`, { cause: e });
    }
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > MAX_KDS_BODY) {
        throw new MalformedEvidence(
          'kds.cache_corrupt',
          `cache file ${file} is not a file of at most ${MAX_KDS_BODY} bytes`,
        );
      }
      // Read at most one byte past the limit so a file growing underneath us is still bounded.
      const buf = Buffer.alloc(MAX_KDS_BODY + 1);
      let n = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
        if (bytesRead === 0) break;
        n += bytesRead;
        if (n > MAX_KDS_BODY)
          throw new MalformedEvidence('kds.cache_corrupt', `cache file ${file} is too large`);
      }
      return new Uint8Array(buf.subarray(0, n));
    } catch (e) {
      if (e instanceof MalformedEvidence) throw e;
      throw new CollateralUnavailable('kds.cache_io', `cannot read cache file ${file}`, { cause: e });
    } finally {
      await fh.close();
    }
  }

  /**
   * Writes an item atomically: a uniquely named temporary file in the same directory, fsync, then rename
   * over the target, so readers (other processes too) see the old file or the new one, never a torn one.
   * Throws CollateralUnavailable `kds.cache_io`.
   */
  async write(item: KdsItem, bytes: Uint8Array): Promise<void> {
    await writeCacheFileAtomic(this.fileOf(item), bytes, 'kds.cache_io');
  }
}
