import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CollateralUnavailable } from '../errors.js';

/**
 * Writes a collateral cache file so that a reader never sees half of it: a private temporary file in the same
 * folder, fsync'd, then renamed over the target. Folders 0700 and files 0600, like the rest of the data
 * directory (docs/broker.md). Throws CollateralUnavailable `reason` when the disk refuses.
 */
export async function writeCacheFileAtomic(file: string, bytes: Uint8Array, reason: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new CollateralUnavailable(reason, `cannot write cache file ${file}`, { cause: e });
  }
}
