import { MalformedEvidence } from '../../errors.js';
import type { TdxCollateralQuery } from '../../formats/tdx/collateral-source.js';
import { parsePckSgxExtension, SGX_EXTENSION_OID } from '../../formats/tdx/pck-extension.js';
import type { TdxQuote } from '../../formats/tdx/quote.js';
import { commonName } from '../../formats/x509/name.js';
import { toHex } from '../../util/bytes.js';
import { extensionValue, parseX509 } from '../snp/x509.js';
import { readPemChain } from './chain.js';

export type { TdxCollateralQuery, TdxCollateralSource } from '../../formats/tdx/collateral-source.js';

/**
 * Reads the query from a quote's PCK chain, unverified (the verifier checks the chain afterwards; a forged
 * chain only asks for the wrong collateral, which then fails to match). Throws MalformedEvidence
 * `tdx.pck.*` / `tdx.pck.sgx_extension`, and `tdx.pck.issuer` for a PCK not issued by a PCK CA.
 */
export function tdxCollateralQuery(quote: TdxQuote): TdxCollateralQuery {
  const ders = readPemChain(quote.pckChainPem, 'pck');
  const leaf = parseX509(ders[0]!, 'tdx.pck.cert');
  const ext = extensionValue(leaf, SGX_EXTENSION_OID);
  if (!ext) throw new MalformedEvidence('tdx.pck.sgx_extension', 'the PCK has no SGX extension');
  const fmspc = toHex(parsePckSgxExtension(ext).fmspc);
  const issuer = commonName(leaf.issuerName);
  const ca =
    issuer === 'Intel SGX PCK Platform CA'
      ? 'platform'
      : issuer === 'Intel SGX PCK Processor CA'
        ? 'processor'
        : undefined;
  if (!ca) throw new MalformedEvidence('tdx.pck.issuer', 'the PCK is not issued by an Intel PCK CA');
  return { fmspc, ca };
}
