/** Reads a real TDX case (shared/vectors/tdx/<case>/) in place: quote, collateral, expected.json, a valid time. */
import { readPemChain, type TdxCollateral } from '../../src/evidence/tdx/index.js';
import { readVector, readVectorJson, readVectorText } from '../helpers/vectors.js';

export interface TdxVectorCase {
  readonly quote: Uint8Array;
  readonly collateral: TdxCollateral;
  // biome-ignore lint/suspicious/noExplicitAny: vector JSON is untyped oracle data
  readonly expected: any;
  /** A time at which the chain and every collateral body are valid (an hour after the latest issueDate). */
  readonly now: Date;
}

export function loadTdxCase(name: string): TdxVectorCase {
  const f = (n: string) => readVector('tdx', name, n);
  const t = (n: string) => readVectorText('tdx', name, n).trim();
  const signed = (base: string) => ({
    body: f(`${base}.json`),
    signature: new Uint8Array(Buffer.from(t(`${base}.sig.hex`), 'hex')),
    issuerChain: readPemChain(t(`${base}_issuer_chain.pem`), 'issuer_chain'),
  });
  const collateral = {
    tcbInfo: signed('tcb_info'),
    qeIdentity: signed('qe_identity'),
    pckCrl: f('pck_crl.der'),
    rootCaCrl: f('root_ca_crl.der'),
  };
  const issued = ['tcb_info.json', 'qe_identity.json'].map((n) => Date.parse(JSON.parse(t(n)).issueDate));
  return {
    quote: f('quote.bin'),
    collateral,
    expected: readVectorJson('tdx', name, 'expected.json'),
    now: new Date(Math.max(...issued) + 3600_000),
  };
}
