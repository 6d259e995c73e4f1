import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CollateralUnavailable, MalformedEvidence } from '../errors.js';
import { encodePem } from '../formats/pem.js';
import type {
  SignedCollateral,
  TdxCollateral,
  TdxCollateralQuery,
  TdxCollateralSource,
} from '../formats/tdx/collateral-source.js';
import { fromHex } from '../util/bytes.js';
import {
  checkSignedBody,
  joinSignedResponse,
  MAX_PCS_BODY,
  parseIntelCrl,
  readIssuerChain,
} from './pcs-bodies.js';
import { PcsCache } from './pcs-cache.js';
import type { PcsItem } from './pcs-url.js';

/**
 * An offline TDX collateral directory, laid out as shared/vectors/tdx/<case>/ (and as an operator saves
 * PCS responses by hand):
 *
 *   tcb_info.json, tcb_info.sig.hex, tcb_info_issuer_chain.pem            the exact signed tcbInfo value
 *   qe_identity.json, qe_identity.sig.hex, qe_identity_issuer_chain.pem   the exact enclaveIdentity value
 *   pck_crl.der, pck_crl_issuer_chain.pem                                 optional (needed for revocation)
 *   root_ca_crl.der                                                       optional (needed for revocation)
 *
 * Shapes are checked here (the TCB Info's FMSPC, which CA issued the PCK CRL); signatures, chains, dates and
 * revocation are checked by the verifier, as for collateral from PCS.
 */
export interface TdxCollateralDirectory {
  readonly collateral: TdxCollateral;
  /** The TCB Info's FMSPC, lower-case hex. */
  readonly fmspc: string;
  /** Which PCK CA issued the PCK CRL, when there is one. */
  readonly pckCa?: 'platform' | 'processor';
  /** The PCK CRL's issuer chain PEM, when given (kept for import). */
  readonly pckCrlIssuerChain?: Uint8Array;
}

const R = 'pcs.directory';

/** Reads a file of at most MAX_PCS_BODY bytes; undefined when absent and `optional`. */
function readBounded(dir: string, name: string, optional: boolean): Uint8Array | undefined {
  const file = join(dir, name);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && optional) return undefined;
    if (code === 'ENOENT')
      throw new CollateralUnavailable(`${R}.missing`, `${file} is missing`, { cause: e });
    throw new CollateralUnavailable(`${R}.io`, `cannot read ${file}`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_PCS_BODY)
      throw new MalformedEvidence(`${R}.too_large`, `${file} is not a file of at most ${MAX_PCS_BODY} bytes`);
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < st.size) {
      const got = readSync(fd, buf, n, st.size - n, n);
      if (got === 0) break;
      n += got;
    }
    return new Uint8Array(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

function signed(dir: string, base: string): SignedCollateral {
  const body = readBounded(dir, `${base}.json`, false)!;
  const hex = Buffer.from(readBounded(dir, `${base}.sig.hex`, false)!)
    .toString('latin1')
    .trim();
  const signature = /^[0-9a-fA-F]{128}$/.test(hex) ? fromHex(hex) : undefined;
  if (!signature) throw new MalformedEvidence(`${R}.signature`, `${base}.sig.hex is not 64 bytes of hex`);
  const issuerChain = readIssuerChain(
    readBounded(dir, `${base}_issuer_chain.pem`, false)!,
    `${R}.issuer_chain`,
    false,
  );
  return { body, signature, issuerChain };
}

/**
 * Reads an offline collateral directory (layout above). Throws CollateralUnavailable `pcs.directory.missing`
 * / `.io`, MalformedEvidence `pcs.directory.*`, `tdx.tcb_info.json`, `tdx.qe_identity.json`.
 */
export function readTdxCollateralDirectory(dir: string): TdxCollateralDirectory {
  const tcbInfo = signed(dir, 'tcb_info');
  const qeIdentity = signed(dir, 'qe_identity');
  const { fmspc } = checkSignedBody('tcbInfo', tcbInfo.body, `${R}.tcb_info`);
  checkSignedBody('enclaveIdentity', qeIdentity.body, `${R}.qe_identity`);
  const pckCrl = readBounded(dir, 'pck_crl.der', true);
  const rootCaCrl = readBounded(dir, 'root_ca_crl.der', true);
  const pckCrlIssuerChain = readBounded(dir, 'pck_crl_issuer_chain.pem', true);
  let pckCa: 'platform' | 'processor' | undefined;
  if (pckCrl) {
    const issuer = parseIntelCrl(pckCrl, `${R}.pck_crl`).issuer;
    if (issuer === 'root') throw new MalformedEvidence(`${R}.pck_crl`, 'pck_crl.der is the Root CA CRL');
    pckCa = issuer;
  }
  if (rootCaCrl) parseIntelCrl(rootCaCrl, `${R}.root_ca_crl`, 'root');
  if (pckCrlIssuerChain) readIssuerChain(pckCrlIssuerChain, `${R}.issuer_chain`, false);
  return {
    collateral: { tcbInfo, qeIdentity, ...(pckCrl ? { pckCrl } : {}), ...(rootCaCrl ? { rootCaCrl } : {}) },
    fmspc: fmspc!,
    ...(pckCa ? { pckCa } : {}),
    ...(pckCrlIssuerChain ? { pckCrlIssuerChain } : {}),
  };
}

/**
 * An offline directory as a collateral source (`vouchsafe verify tdx --collateral DIR`). A quote asking for
 * another FMSPC or PCK CA than the directory holds gets CollateralUnavailable `pcs.directory.fmspc` /
 * `pcs.directory.pck_ca`, rather than a verification failure that would hide the cause.
 */
export function tdxCollateralFromDirectory(dir: string): TdxCollateralSource {
  return {
    async getTdxCollateral(query: TdxCollateralQuery): Promise<TdxCollateral> {
      const d = readTdxCollateralDirectory(dir);
      if (d.fmspc !== query.fmspc)
        throw new CollateralUnavailable(
          `${R}.fmspc`,
          `${dir} holds TCB Info for FMSPC ${d.fmspc}; the quote's platform is ${query.fmspc}`,
        );
      if (d.pckCa && d.pckCa !== query.ca)
        throw new CollateralUnavailable(
          `${R}.pck_ca`,
          `${dir} holds the ${d.pckCa} CA's CRL; the PCK is from the ${query.ca} CA`,
        );
      return d.collateral;
    },
  };
}

/**
 * Imports an offline directory into a PCS cache directory (pcs-url.ts pcsCachePath), so `PcsClient` with
 * `offline: true` serves it: each signed body is filed as the PCS response it came in (its exact bytes
 * unchanged), under its own FMSPC; the CRLs under their issuer. The PCK CRL needs its issuer chain file.
 * Returns the items written. Throws as {@link readTdxCollateralDirectory}, MalformedEvidence
 * `pcs.directory.issuer_chain` (PCK CRL without its chain), CollateralUnavailable `pcs.cache_io`.
 */
export async function importTdxCollateral(dir: string, cacheDir: string): Promise<PcsItem[]> {
  const d = readTdxCollateralDirectory(dir);
  const c = d.collateral;
  const pem = (ders: readonly Uint8Array[]) =>
    new Uint8Array(Buffer.from(ders.map((der) => encodePem('CERTIFICATE', der)).join(''), 'latin1'));
  if (c.pckCrl && !d.pckCrlIssuerChain)
    throw new MalformedEvidence(
      `${R}.issuer_chain`,
      'pck_crl.der needs pck_crl_issuer_chain.pem to be imported',
    );
  const cache = new PcsCache(cacheDir);
  const written: PcsItem[] = [];
  const put = async (item: PcsItem, body: Uint8Array, issuerChain?: Uint8Array) => {
    await cache.write(item, issuerChain ? { body, issuerChain } : { body });
    written.push(item);
  };
  await put(
    { kind: 'tcb_info', fmspc: d.fmspc },
    joinSignedResponse('tcbInfo', c.tcbInfo),
    pem(c.tcbInfo.issuerChain),
  );
  await put(
    { kind: 'qe_identity' },
    joinSignedResponse('enclaveIdentity', c.qeIdentity),
    pem(c.qeIdentity.issuerChain),
  );
  if (c.pckCrl && d.pckCa) await put({ kind: 'pck_crl', ca: d.pckCa }, c.pckCrl, d.pckCrlIssuerChain);
  if (c.rootCaCrl) await put({ kind: 'root_ca_crl' }, c.rootCaCrl);
  return written;
}
