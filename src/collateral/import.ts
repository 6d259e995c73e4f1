import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { AttestationError, MalformedEvidence } from '../errors.js';
import { decodePem, encodePem, looksLikePem, pemText } from '../formats/pem.js';
import type { SnpProduct } from '../formats/snp/product.js';
import { ctEqual } from '../util/bytes.js';
import { CollateralCache, cachePath } from './cache.js';
import {
  classifyAmdCert,
  MAX_KDS_BODY,
  type ParsedCrl,
  parseCertChain,
  parseCertificateDer,
  parseKdsCrl,
  readVcekIdentity,
  subjectOf,
} from './kds-bodies.js';
import type { KdsItem, KdsSigner } from './kds-url.js';

/** A file to import; `signer` says whether a CRL is the VCEK or the VLEK one when its path does not. */
export interface ImportFile {
  readonly path: string;
  readonly signer?: KdsSigner;
}

/** A directory (walked recursively), or a list of files. */
export type ImportSource = string | readonly (string | ImportFile)[];

export interface ImportedEntry {
  /** The source file(s) the entry came from (two for an ASK + ARK pair). */
  readonly files: readonly string[];
  readonly item: KdsItem;
  /** Where it now lives, relative to the collateral directory. */
  readonly path: string;
}

export interface ImportResult {
  readonly imported: readonly ImportedEntry[];
  /** Files that were read but hold nothing the cache stores (a lone ARK, a VLEK leaf, a README). */
  readonly unused: readonly { readonly file: string; readonly why: string }[];
}

/** Names a directory walk considers; anything else in a directory is listed as unused. */
const COLLATERAL_EXTENSIONS = new Set(['', '.pem', '.der', '.crt', '.cer', '.crl']);
const MAX_FILES = 10_000;
const MAX_DEPTH = 8;

interface Staged {
  readonly files: string[];
  readonly item: KdsItem;
  readonly bytes: Uint8Array;
}

type Piece =
  | { readonly kind: 'item'; readonly item: KdsItem; readonly bytes: Uint8Array }
  | { readonly kind: 'ark'; readonly product: SnpProduct; readonly der: Uint8Array }
  | {
      readonly kind: 'intermediate';
      readonly product: SnpProduct;
      readonly signer: KdsSigner;
      readonly der: Uint8Array;
    }
  | { readonly kind: 'unused'; readonly why: string };

/**
 * Imports collateral files into a collateral directory (the cache layout, see cache.ts), for offline mode
 * or to pre-seed a cache: KDS cert_chain PEMs, VCEKs (DER or PEM, filed by their own productName, hwID and
 * SPL extensions), CRLs (DER or PEM, filed by issuer ARK-{P}; VCEK or VLEK from a `vcek`/`vlek` word in the
 * file's path or from `signer`), and separate ASK/ASVK + ARK certificate files, which are paired by product.
 *
 * Everything is checked before anything is written, and each file is written atomically. No signature is
 * verified here: the SNP verifier checks chains against the pinned ARKs when the collateral is used.
 *
 * Throws MalformedEvidence: the underlying reason (`kds.cert_chain`, `kds.vcek`, `kds.crl`,
 * `collateral.import.pem`) or `collateral.import.unrecognized`, `.too_large`, `.crl_signer`, `.no_ark`,
 * `.conflict`, `.too_many_files`; CollateralUnavailable `kds.cache_io` on write failure.
 */
export async function importCollateral(source: ImportSource, cacheDir: string): Promise<ImportResult> {
  const files = await listFiles(source);
  const unused: { file: string; why: string }[] = [];
  const staged = new Map<string, Staged>();
  const arks = new Map<SnpProduct, { file: string; der: Uint8Array }>();
  const intermediates: { file: string; product: SnpProduct; signer: KdsSigner; der: Uint8Array }[] = [];

  const stage = (file: string | string[], item: KdsItem, bytes: Uint8Array) => {
    const path = cachePath(item);
    const have = staged.get(path);
    const fileList = Array.isArray(file) ? file : [file];
    if (have) {
      if (!ctEqual(have.bytes, bytes)) {
        throw new MalformedEvidence(
          'collateral.import.conflict',
          `${fileList.join(' + ')} and ${have.files.join(' + ')} give different contents for ${path}`,
        );
      }
      have.files.push(...fileList);
      return;
    }
    staged.set(path, { files: [...fileList], item, bytes });
  };

  for (const f of files) {
    if (f.skip) {
      unused.push({ file: f.path, why: f.skip });
      continue;
    }
    const piece = await withFile(f.path, async () => classifyFile(f.path, f.hint, f.signer));
    switch (piece.kind) {
      case 'item':
        stage(f.path, piece.item, piece.bytes);
        break;
      case 'ark': {
        const have = arks.get(piece.product);
        if (have && !ctEqual(have.der, piece.der)) {
          throw new MalformedEvidence(
            'collateral.import.conflict',
            `${f.path} and ${have.file} are different ARK-${piece.product} certificates`,
          );
        }
        arks.set(piece.product, { file: f.path, der: piece.der });
        break;
      }
      case 'intermediate':
        intermediates.push({ file: f.path, product: piece.product, signer: piece.signer, der: piece.der });
        break;
      case 'unused':
        unused.push({ file: f.path, why: piece.why });
        break;
    }
  }

  // A separate ASK/ASVK becomes a cert_chain once paired with its product's ARK (KDS order: intermediate, ARK).
  const usedArks = new Set<SnpProduct>();
  for (const i of intermediates) {
    const ark = arks.get(i.product);
    if (!ark) {
      throw new MalformedEvidence(
        'collateral.import.no_ark',
        `${i.file}: a ${i.signer === 'vcek' ? 'ASK' : 'ASVK'} for ${i.product} needs the ARK-${i.product} certificate in the same import`,
      );
    }
    usedArks.add(i.product);
    const bytes = chainPem(i.der, ark.der);
    await withFile(i.file, async () => parseCertChain(bytes, i.product, i.signer));
    stage([i.file, ark.file], { kind: 'cert_chain', product: i.product, signer: i.signer }, bytes);
  }
  for (const [product, ark] of arks) {
    if (!usedArks.has(product)) {
      unused.push({
        file: ark.file,
        why: `lone ARK-${product}: roots are pinned in code; only chains are cached`,
      });
    }
  }

  const cache = new CollateralCache(cacheDir);
  const imported: ImportedEntry[] = [];
  for (const [path, s] of staged) {
    await cache.write(s.item, s.bytes);
    imported.push({ files: s.files, item: s.item, path });
  }
  return { imported, unused };
}

/** The canonical cert_chain body: intermediate then ARK, 64-column PEM. */
export function chainPem(intermediate: Uint8Array, ark: Uint8Array): Uint8Array {
  return new Uint8Array(
    Buffer.from(encodePem('CERTIFICATE', intermediate) + encodePem('CERTIFICATE', ark), 'latin1'),
  );
}

async function classifyFile(path: string, hint: string, signer: KdsSigner | undefined): Promise<Piece> {
  const st = await stat(path);
  if (!st.isFile() || st.size > MAX_KDS_BODY) {
    throw new MalformedEvidence('collateral.import.too_large', `not a file of at most ${MAX_KDS_BODY} bytes`);
  }
  const bytes = new Uint8Array(await readFile(path));
  if (bytes.length > MAX_KDS_BODY)
    throw new MalformedEvidence('collateral.import.too_large', 'file grew past the limit');
  if (looksLikePem(bytes)) {
    const blocks = decodePem(pemText(bytes), 'collateral.import');
    if (blocks.length === 1 && blocks[0]!.label === 'X509 CRL')
      return crlPiece(parseKdsCrl(blocks[0]!.der), hint, signer);
    if (blocks.length === 0 || blocks.some((b) => b.label !== 'CERTIFICATE')) {
      throw new MalformedEvidence(
        'collateral.import.unrecognized',
        'PEM must hold certificates or one X509 CRL',
      );
    }
    if (blocks.length === 2) {
      const inter = parseCertificateDer(blocks[0]!.der, 'kds.cert_chain', 'first certificate');
      const role = classifyAmdCert(inter);
      if (role.role !== 'intermediate') {
        throw new MalformedEvidence(
          'collateral.import.unrecognized',
          `a two-certificate PEM must start with an ASK or ASVK, not ${subjectOf(inter).text}`,
        );
      }
      const chain = parseCertChain(bytes, role.product, role.signer);
      const canonical = chainPem(chain.intermediate, chain.ark);
      return {
        kind: 'item',
        item: { kind: 'cert_chain', product: role.product, signer: role.signer },
        bytes: canonical,
      };
    }
    if (blocks.length !== 1) {
      throw new MalformedEvidence(
        'collateral.import.unrecognized',
        `${blocks.length} certificates: expected 1 or a KDS cert_chain`,
      );
    }
    return certPiece(blocks[0]!.der);
  }
  if (bytes[0] !== 0x30) throw new MalformedEvidence('collateral.import.unrecognized', 'neither PEM nor DER');
  let isCert: boolean;
  try {
    parseCertificateDer(bytes, 'kds.cert', 'certificate');
    isCert = true;
  } catch {
    isCert = false;
  }
  if (isCert) return certPiece(bytes);
  let crl: ParsedCrl;
  try {
    crl = parseKdsCrl(bytes);
  } catch (e) {
    throw new MalformedEvidence(
      'collateral.import.unrecognized',
      'DER is neither a certificate nor an ARK-issued CRL',
      {
        cause: e,
      },
    );
  }
  return crlPiece(crl, hint, signer);
}

function certPiece(der: Uint8Array): Piece {
  const cert = parseCertificateDer(der, 'kds.cert', 'certificate');
  let role: ReturnType<typeof classifyAmdCert>;
  try {
    role = classifyAmdCert(cert);
  } catch (e) {
    throw new MalformedEvidence('collateral.import.unrecognized', 'certificate names cannot be read', {
      cause: e,
    });
  }
  switch (role.role) {
    case 'vcek': {
      const id = readVcekIdentity(der);
      return {
        kind: 'item',
        item: { kind: 'vcek', product: id.product, hwid: id.hwid, tcb: id.tcb },
        bytes: der,
      };
    }
    case 'ark':
      return { kind: 'ark', product: role.product, der };
    case 'intermediate':
      return { kind: 'intermediate', product: role.product, signer: role.signer, der };
    case 'vlek':
      return {
        kind: 'unused',
        why: 'VLEK leaf: KDS does not serve VLEKs publicly; it comes from the host certificate table',
      };
    case 'unknown':
      throw new MalformedEvidence(
        'collateral.import.unrecognized',
        `not an AMD SEV certificate: ${role.subject}`,
      );
  }
}

function crlPiece(crl: ParsedCrl, hint: string, signer: KdsSigner | undefined): Piece {
  // Both KDS CRLs are issued by the same ARK, so the file cannot say which one it is: the path or caller must.
  const words = new Set(hint.toLowerCase().split(/[^a-z0-9]+/));
  const fromPath = words.has('vlek') === words.has('vcek') ? undefined : words.has('vlek') ? 'vlek' : 'vcek';
  const which = signer ?? fromPath;
  if (!which) {
    throw new MalformedEvidence(
      'collateral.import.crl_signer',
      'cannot tell whether this CRL is the VCEK or the VLEK one: put "vcek" or "vlek" in its path or pass signer',
    );
  }
  return { kind: 'item', item: { kind: 'crl', product: crl.product, signer: which }, bytes: crl.der };
}

/** Re-throws a file's typed error with the file name in the message (reason unchanged). */
async function withFile<T>(file: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof MalformedEvidence)
      throw new MalformedEvidence(e.reason, `${file}: ${e.message}`, { cause: e });
    if (e instanceof AttestationError) throw e;
    throw new MalformedEvidence('collateral.import.unrecognized', `${file}: cannot be read`, { cause: e });
  }
}

interface ListedFile {
  readonly path: string;
  /** Text searched for `vcek`/`vlek` (the path below the import root). */
  readonly hint: string;
  readonly signer?: KdsSigner;
  readonly skip?: string;
}

async function listFiles(source: ImportSource): Promise<ListedFile[]> {
  if (typeof source !== 'string') {
    if (source.length > MAX_FILES)
      throw new MalformedEvidence('collateral.import.too_many_files', 'too many files');
    return source.map((s) => {
      const f = typeof s === 'string' ? { path: s } : s;
      return f.signer ? { path: f.path, hint: f.path, signer: f.signer } : { path: f.path, hint: f.path };
    });
  }
  const st = await stat(source);
  if (!st.isDirectory()) return [{ path: source, hint: source }];
  const out: ListedFile[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const path = join(dir, e.name);
      if (out.length >= MAX_FILES)
        throw new MalformedEvidence('collateral.import.too_many_files', 'too many files');
      // Symbolic links are not followed: a link could point anywhere, or loop.
      const l = await lstat(path);
      if (l.isDirectory()) {
        if (depth < MAX_DEPTH) await walk(path, depth + 1);
        continue;
      }
      const hint = relative(source, path).split(sep).join('/');
      if (!l.isFile()) out.push({ path, hint, skip: 'not a regular file' });
      else if (!COLLATERAL_EXTENSIONS.has(extname(e.name).toLowerCase())) {
        out.push({ path, hint, skip: 'not a collateral file name (.pem .der .crt .cer .crl or none)' });
      } else out.push({ path, hint });
    }
  };
  await walk(source, 0);
  return out;
}
