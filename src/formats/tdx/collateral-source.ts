/**
 * The shapes of Intel TDX collateral, shared by the PCS client and offline directory (src/collateral), the
 * simulator (src/sim/tdx) and the verifier (src/evidence/tdx), which alone checks it. Types only: data as it
 * comes from Intel, before any check.
 */

/**
 * TDX collateral as Intel PCS v4 serves it, in the shape an offline directory holds it
 * (shared/vectors/tdx/<case>/): each signed JSON body as its exact bytes, its signature (P-256 r||s) and
 * the issuer chain from the response header (TCB Signing, then Root CA), and the two CRLs as DER.
 */
export interface SignedCollateral {
  /** The exact bytes Intel signed: the `tcbInfo` / `enclaveIdentity` value. */
  readonly body: Uint8Array;
  /** 64 bytes, r||s big-endian. */
  readonly signature: Uint8Array;
  /** DER certificates, signer first, root last (the TCB-Info-Issuer-Chain header). */
  readonly issuerChain: readonly Uint8Array[];
}

export interface TdxCollateral {
  readonly tcbInfo: SignedCollateral;
  readonly qeIdentity: SignedCollateral;
  /** PCK CRL (DER) of the CA that issued the PCK (ca=platform or processor); needed unless revocation is off. */
  readonly pckCrl?: Uint8Array;
  /** Intel SGX Root CA CRL (DER); needed unless revocation is off. */
  readonly rootCaCrl?: Uint8Array;
}

/**
 * Which collateral a quote needs (Intel PCS API v4): the TCB Info of the platform's FMSPC, and the PCK CRL
 * of the CA that issued its PCK (`platform` or `processor`). The QE Identity and the Root CA CRL are one
 * per world.
 */
export interface TdxCollateralQuery {
  /** 6 bytes, lower-case hex (the PCK's SGX extension). */
  readonly fmspc: string;
  readonly ca: 'platform' | 'processor';
}

/** Where collateral comes from: Intel PCS (src/collateral/pcs-client.ts), a cache or an offline directory. */
export interface TdxCollateralSource {
  /** The collateral for `query`. Throws CollateralUnavailable when it cannot be had. */
  getTdxCollateral(query: TdxCollateralQuery): Promise<TdxCollateral>;
}
