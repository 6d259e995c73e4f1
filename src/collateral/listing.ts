import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { InvalidArgument } from '../errors.js';
import { parseKdsCrl } from './kds-bodies.js';
import { checkSignedBody, parseIntelCrl, splitSignedResponse } from './pcs-bodies.js';

const MAX_LISTED = 100_000;

/**
 * One file of a collateral directory (the KDS cache layout, cache.ts, and the Intel PCS cache layout,
 * pcs-url.ts pcsCachePath), as `collateral list` and the dashboard show it.
 */
export interface CollateralFile {
  readonly path: string;
  readonly bytes: number;
  readonly modified: string;
  readonly kind:
    | 'cert_chain'
    | 'crl'
    | 'vcek'
    | 'tcb_info'
    | 'qe_identity'
    | 'issuer_chain'
    | 'temporary'
    | 'other';
  /**
   * CRLs (AMD and Intel), TDX TCB Info and TD QE Identity: their dates (for the signed JSON, thisUpdate is
   * its issueDate), and whether `now` is past nextUpdate.
   */
  readonly crl?: { thisUpdate: string; nextUpdate?: string; stale: boolean } | { unreadable: string };
}

function kindOf(rel: string): CollateralFile['kind'] {
  if (rel.endsWith('.tmp')) return 'temporary';
  if (/^(vcek|vlek)\/[A-Za-z]+\/cert_chain\.pem$/.test(rel)) return 'cert_chain';
  if (/^(vcek|vlek)\/[A-Za-z]+\/crl\.der$/.test(rel)) return 'crl';
  if (/^vcek\/[A-Za-z]+\/[0-9a-f]+\/[a-z0-9-]+\.der$/.test(rel)) return 'vcek';
  if (/^pcs\/.*\.issuer-chain\.pem$/.test(rel)) return 'issuer_chain';
  if (/^pcs\/tdx\/tcb-[0-9a-f]{12}\.json$/.test(rel)) return 'tcb_info';
  if (rel === 'pcs/tdx/qe-identity.json') return 'qe_identity';
  if (/^pcs\/sgx\/(pckcrl-(platform|processor)|root-ca-crl)\.der$/.test(rel)) return 'crl';
  return 'other';
}

/** The dates of a dated item: AMD or Intel CRL, or the signed TCB Info / QE Identity PCS returned. */
function datesOf(
  rel: string,
  kind: CollateralFile['kind'],
  bytes: Uint8Array,
): { thisUpdate: Date; nextUpdate?: Date } {
  if (kind === 'crl')
    return rel.startsWith('pcs/') ? parseIntelCrl(bytes, 'pcs.cache_corrupt') : parseKdsCrl(bytes);
  const field = kind === 'tcb_info' ? 'tcbInfo' : 'enclaveIdentity';
  const b = checkSignedBody(
    field,
    splitSignedResponse(bytes, field, 'pcs.cache_corrupt').body,
    'pcs.cache_corrupt',
  );
  return { thisUpdate: b.issueDate, nextUpdate: b.nextUpdate };
}

/** Every regular file below `dir` (links are not followed), in the cache layout's terms. */
export async function listCollateralDir(dir: string, now: number): Promise<CollateralFile[]> {
  const out: CollateralFile[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && d === dir) return;
      throw e;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      const st = await lstat(p);
      if (st.isDirectory()) await walk(p);
      else if (st.isFile()) {
        if (out.length >= MAX_LISTED)
          throw new InvalidArgument('cli.collateral.too_many', `${dir}: too many files`);
        const rel = relative(dir, p).split(sep).join('/');
        const kind = kindOf(rel);
        let crl: CollateralFile['crl'];
        if (kind === 'crl' || kind === 'tcb_info' || kind === 'qe_identity') {
          try {
            const c = datesOf(rel, kind, new Uint8Array(await readFile(p)));
            crl = {
              thisUpdate: c.thisUpdate.toISOString(),
              ...(c.nextUpdate ? { nextUpdate: c.nextUpdate.toISOString() } : {}),
              stale: c.nextUpdate === undefined || now >= c.nextUpdate.getTime(),
            };
          } catch (err) {
            crl = { unreadable: err instanceof Error ? err.message : String(err) };
          }
        }
        out.push({
          path: rel,
          bytes: st.size,
          modified: st.mtime.toISOString(),
          kind,
          ...(crl ? { crl } : {}),
        });
      }
    }
  };
  await walk(dir);
  return out;
}
