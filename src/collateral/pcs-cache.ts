import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { CollateralUnavailable, MalformedEvidence } from '../errors.js';
import { writeCacheFileAtomic } from './atomic-write.js';
import { MAX_PCS_BODY } from './pcs-bodies.js';
import { type PcsItem, pcsCachePath } from './pcs-url.js';

/** What is kept of one PCS response: its body exactly, and its issuer-chain header as PEM text. */
export interface PcsRecord {
  readonly body: Uint8Array;
  /** PEM (URL-decoded header value); absent for the Root CA CRL. */
  readonly issuerChain?: Uint8Array;
}

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

/**
 * PCS responses in a collateral directory (the layout of {@link pcsCachePath}; the KDS cache's directory can
 * be the same one). Each file is written atomically (temporary file, fsync, rename). The issuer chain is
 * written before the body: a reader racing a writer may pair a new chain with an old body, which then fails
 * its signature check in the verifier; it never sees a torn file.
 */
export class PcsCache {
  constructor(readonly dir: string) {}

  /** Absolute file name of an item's body. */
  fileOf(item: PcsItem): string {
    return join(this.dir, ...pcsCachePath(item).split('/'));
  }

  /** Reads an item, or undefined when its body is absent. Throws `pcs.cache_corrupt` / `pcs.cache_io`. */
  async read(item: PcsItem): Promise<PcsRecord | undefined> {
    const file = this.fileOf(item);
    const body = await readFileBounded(file);
    if (!body) return undefined;
    if (item.kind === 'root_ca_crl') return { body };
    const issuerChain = await readFileBounded(chainFile(file));
    return issuerChain ? { body, issuerChain } : { body };
  }

  /** Writes an item (chain first, then body). Throws CollateralUnavailable `pcs.cache_io`. */
  async write(item: PcsItem, record: PcsRecord): Promise<void> {
    const file = this.fileOf(item);
    if (record.issuerChain) await writeAtomic(chainFile(file), record.issuerChain);
    await writeAtomic(file, record.body);
  }
}

const chainFile = (file: string) => `${file.replace(/\.(json|der)$/, '')}.issuer-chain.pem`;

async function readFileBounded(file: string): Promise<Uint8Array | undefined> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return undefined;
    throw new CollateralUnavailable('pcs.cache_io', `cannot read cache file ${file}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_PCS_BODY)
      throw new MalformedEvidence(
        'pcs.cache_corrupt',
        `${file} is not a file of at most ${MAX_PCS_BODY} bytes`,
      );
    // One byte past the limit: a file growing underneath is still bounded.
    const buf = Buffer.alloc(MAX_PCS_BODY + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > MAX_PCS_BODY) throw new MalformedEvidence('pcs.cache_corrupt', `${file} is too large`);
    }
    return new Uint8Array(buf.subarray(0, n));
  } catch (e) {
    if (e instanceof MalformedEvidence) throw e;
    throw new CollateralUnavailable('pcs.cache_io', `cannot read cache file ${file}`, { cause: e });
  } finally {
    await fh.close();
  }
}

const writeAtomic = (file: string, bytes: Uint8Array): Promise<void> =>
  writeCacheFileAtomic(file, bytes, 'pcs.cache_io');
