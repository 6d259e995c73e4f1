/** Reads a real TDX case (shared/vectors/tdx/<case>/) in place: quote, collateral, expected.json, a valid time. */
import { readTdxCollateralDirectory } from '../../../src/collateral/pcs-directory.js';
import type { TdxCollateral } from '../../../src/evidence/tdx/index.js';
import { readVector, readVectorJson, readVectorText, vectorPath } from '../../helpers/vectors.js';

export interface TdxVectorCase {
  readonly quote: Uint8Array;
  /** Read by the library's offline directory reader (src/collateral/pcs-directory.ts). */
  readonly collateral: TdxCollateral;
  // biome-ignore lint/suspicious/noExplicitAny: vector JSON is untyped oracle data
  readonly expected: any;
  /** A time at which the chain and every collateral body are valid (an hour after the latest issueDate). */
  readonly now: Date;
}

/** An hour after the latest issueDate of the case's collateral: inside every window. */
export function tdxCaseNow(name: string): Date {
  const issued = ['tcb_info.json', 'qe_identity.json'].map((n) =>
    Date.parse(JSON.parse(readVectorText('tdx', name, n)).issueDate),
  );
  return new Date(Math.max(...issued) + 3600_000);
}

export function loadTdxCase(name: string): TdxVectorCase {
  return {
    quote: readVector('tdx', name, 'quote.bin'),
    collateral: readTdxCollateralDirectory(vectorPath('tdx', name)).collateral,
    expected: readVectorJson('tdx', name, 'expected.json'),
    now: tdxCaseNow(name),
  };
}
