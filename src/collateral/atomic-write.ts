import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CollateralUnavailable } from '../errors.js';
import { writeFileDurably } from '../util/durable-file.js';

/**
 * Writes a collateral cache file so that a reader never sees half of it (src/util/durable-file.ts: a private
 * temporary file in the same folder, fsync'd, renamed over the target). Folders 0700 and files 0600, like the
 * rest of the data directory (docs/broker.md). Throws CollateralUnavailable `reason` when the disk refuses.
 */
export async function writeCacheFileAtomic(file: string, bytes: Uint8Array, reason: string): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFileDurably(file, bytes);
  } catch (e) {
    throw new CollateralUnavailable(reason, `cannot write cache file ${file}`, { cause: e });
  }
}
