import { AttestationError, CollateralUnavailable, NotSupported, type PolicyFailure } from '../errors.js';
import {
  AZURE_IDENTITY_FIELD,
  type AzSnpVtpmVerified,
  azSnpVtpmEvidence,
} from '../evidence/az-snp-vtpm/index.js';
import {
  type SnpCollateralGetter,
  type SnpVerified,
  type SnpVerifier,
  snpEvidence,
  type TrustedRoot,
} from '../evidence/snp/index.js';
import {
  type TdxCollateralSource,
  type TdxVerified,
  type TdxVerifier,
  tdxCollateralQuery,
  tdxEvidence,
  verifyCcelEventLog,
} from '../evidence/tdx/index.js';
import type { VerifiedEvidence } from '../evidence/types.js';
import { shown } from '../util/shown.js';
import { type AzSnpVtpmPolicy, appraiseAzSnpVtpm, parseAzSnpVtpmPolicy } from './az-snp-vtpm/policy.js';
import { appraiseSnp } from './snp/appraise.js';
import { parseSnpPolicy } from './snp/parse.js';
import type { SnpPolicy } from './snp/policy.js';
import { appraiseTdx, parseTdxPolicy, type TdxPolicy } from './tdx/policy.js';

/**
 * The TEEs keys are released to, in one table: TEE name → how its evidence is verified (src/evidence/<tee>,
 * through its EvidenceType) and how the verified evidence is appraised (src/policy/<tee>). Every "which
 * TEE is this" decision of the broker, the native API and the KBS is a look-up here; a TEE enters by
 * adding a row (and its configuration to {@link TeeConfig}).
 */

/** The outcome of appraising verified evidence: every failure, and which rules constrained it. */
export interface TeeAppraisal {
  /** Every failed check; empty when the evidence is accepted. */
  readonly failures: readonly PolicyFailure[];
  /** Rules that constrained the evidence (whether they passed or failed). */
  readonly checked: readonly string[];
  /** Rules that placed no constraint (unset, `'any'`, permissive defaults): print as "not checked". */
  readonly unchecked: readonly string[];
}

/**
 * Verifies evidence as the broker receives it: the TEE's name, its evidence bytes and the collateral the
 * host sent with it (SEV-SNP: the certificate table). Must throw an AttestationError for anything it does
 * not accept.
 */
export type VerifyEvidence = (
  tee: string,
  evidence: Uint8Array,
  collateral: Uint8Array | undefined,
) => Promise<VerifiedEvidence>;

/**
 * Appraises verified evidence against an instance's policy (opaque JSON to the broker). Returns every
 * failed check; an empty list accepts.
 */
export type Appraise = (
  evidence: VerifiedEvidence,
  policy: unknown,
) => readonly PolicyFailure[] | Promise<readonly PolicyFailure[]>;

/** How this deployment verifies SEV-SNP evidence (src/evidence/snp verifySnpAttestation options). */
export interface SnpTeeConfig {
  /** Roots trusted besides AMD's pinned ARKs (e.g. the simulator's). Default: AMD only. */
  readonly trustedRoots?: readonly TrustedRoot[];
  /**
   * AMD KDS (or a stand-in) for certificates the host's table lacks (a real SVSM sends none). Absent: a
   * report without a complete table is refused with CollateralUnavailable `api.collateral.certs_missing`.
   */
  readonly getter?: SnpCollateralGetter;
  /** Fetch and check the chain's CRL through `getter` (needs it). Default false (startBroker turns it on). */
  readonly checkRevocations?: boolean;
  /**
   * Accept a CRL up to this long past its nextUpdate (ms). Default 0: a stale CRL is refused
   * CollateralUnavailable `api.collateral.crl_stale`.
   */
  readonly crlGraceMs?: number;
  /** The verifier and its cache of verified chains (default: one per process). */
  readonly verifier?: SnpVerifier;
}

/** How this deployment verifies Intel TDX quotes (src/evidence/tdx verifyTdx options). */
export interface TdxTeeConfig {
  /**
   * Where the collateral comes from: Intel PCS (src/collateral/pcs-client.ts PcsClient, cached) or an offline
   * directory. Absent: every quote is refused with CollateralUnavailable `api.collateral.tdx_unconfigured`.
   */
  readonly collateral?: TdxCollateralSource;
  /** SHA-256 (hex) of roots trusted besides Intel's pinned root (e.g. the simulator's). */
  readonly trustedRoots?: readonly string[];
  /** Check the PCK CRL and the Root CA CRL. Default true (unlike SNP, whose CRL needs KDS). */
  readonly checkRevocations?: boolean;
  /** The verifier and its caches (default: one per process). */
  readonly verifier?: TdxVerifier;
}

/** Each TEE's verifier configuration, and the clock. */
export interface TeeConfig {
  /** Clock in ms since the epoch, for certificate and CRL validity. */
  readonly now: () => number;
  readonly snp?: SnpTeeConfig;
  readonly tdx?: TdxTeeConfig;
}

/**
 * How a TEE's verified evidence names a registered instance: which registry TEE (src/store `RegistryTee`)
 * the instance was registered for, and the claims' identity field (its name and length) whose value the
 * broker looks up. Two TEEs can share a registry TEE (an Azure SEV-SNP VM is registered as `snp`).
 */
export interface TeeRegistryIdentity {
  readonly registryTee: 'snp' | 'tdx';
  /** The claims' `identityField.name`, e.g. `HOST_DATA`, `MRCONFIGID`. */
  readonly field: string;
  /** Its length in bytes. */
  readonly bytes: number;
}

/** One row of the table. `V` is the TEE's own verification result, `P` its parsed policy. */
interface TeeRow<V, P> {
  /**
   * Whether keys are released for this TEE (the broker, the native API and the KBS accept it). A row can
   * verify and appraise before its release path is wired.
   */
  readonly releasesKeys: boolean;
  /** How its evidence names an instance in the registry (null: it cannot name one). */
  readonly identity: TeeRegistryIdentity | null;
  /** Verifies the wire form (evidence bytes, the collateral blob sent with them). */
  verify(
    evidence: Uint8Array,
    collateral: Uint8Array | undefined,
    config: TeeConfig,
  ): Promise<VerifiedEvidence<V>>;
  /** Validates a policy document (throws InvalidArgument `policy.invalid`). */
  parsePolicy(policy: unknown): P;
  /** Appraises this TEE's own verification result; returns every failure. */
  appraise(verified: V, policy: P): TeeAppraisal;
}

/**
 * Reasons of verifySnpAttestation that mean "collateral missing" to an API client, and the reason the
 * API documents for each (docs/api.md, docs/kbs.md).
 */
const SNP_COLLATERAL_REASONS: Readonly<Record<string, readonly [string, string]>> = Object.assign(
  Object.create(null),
  {
    'snp.certs_missing': [
      'api.collateral.certs_missing',
      'the report came without a complete certificate table and KDS is not configured',
    ],
    'snp.product_unknown': [
      'api.collateral.product_unknown',
      'the report names no product (no CPUID) and its certificates do not either: send the certificate table',
    ],
    // The CRL verified but is past its nextUpdate (plus any grace): fresher collateral is needed, the
    // evidence itself was not found wrong, so a retry after KDS recovers may succeed.
    'snp.crl.expired': [
      'api.collateral.crl_stale',
      "the chain's CRL is past its nextUpdate and no fresher one could be fetched from KDS",
    ],
    'snp.vlek_missing': [
      'api.collateral.vlek_missing',
      'KDS does not serve VLEKs: send the certificate table',
    ],
  },
);

/** The SNP pipeline's options from the deployment's SEV-SNP configuration (shared by `snp` and `az-snp-vtpm`). */
function snpOptions(config: TeeConfig) {
  const c = config.snp ?? {};
  return {
    now: new Date(config.now()),
    ...(c.trustedRoots ? { trustedRoots: c.trustedRoots } : {}),
    ...(c.getter ? { getter: c.getter } : {}),
    ...(c.checkRevocations ? { checkRevocations: true } : {}),
    ...(c.crlGraceMs ? { crlGraceMs: c.crlGraceMs } : {}),
    ...(c.verifier ? { verifier: c.verifier } : {}),
  };
}

/**
 * Runs `verify`, renaming the SNP pipeline's collateral-resolution reasons (thrown before any
 * verification) and a stale CRL's (`snp.crl.expired`) to the API's; a report whose CPUID names an unknown
 * product stays NotSupported `snp.product_unknown`.
 */
async function withSnpCollateralReasons<T>(verify: () => Promise<T>): Promise<T> {
  try {
    return await verify();
  } catch (e) {
    const mapped =
      e instanceof AttestationError && !(e instanceof NotSupported)
        ? SNP_COLLATERAL_REASONS[e.reason]
        : undefined;
    if (mapped) throw new CollateralUnavailable(mapped[0], mapped[1], { cause: e });
    throw e;
  }
}

const snpRow: TeeRow<SnpVerified, SnpPolicy> = {
  releasesKeys: true,
  identity: { registryTee: 'snp', field: 'HOST_DATA', bytes: 32 },
  async verify(report, certTable, config) {
    const parsed = snpEvidence.parse({ report, ...(certTable ? { certTable } : {}) });
    const attestation = await withSnpCollateralReasons(() => snpEvidence.verify(parsed, snpOptions(config)));
    return { claims: snpEvidence.toClaims(attestation), native: attestation.verified };
  },
  parsePolicy: (p) => parseSnpPolicy(p),
  appraise: (v, policy) => appraiseSnp(v.report, v.product, policy),
};

/**
 * Intel TDX: the quote is the evidence; the collateral comes from the deployment's source (PCS, cache or
 * directory), never from the host. The blob sent with the quote, when there is one, is the TD's CCEL event
 * log (Trustee's `cc_eventlog`): it must replay to the verified quote's RTMR 0..3 (verifyCcelEventLog,
 * BindingMismatch `tdx.ccel.rtmr_mismatch`), so a log passed on to tokens is the TD's own. The instance is
 * named by MRCONFIGID (48 bytes), registered per instance as `tdx` (docs/tdx.md "Key release").
 */
const tdxRow: TeeRow<TdxVerified, TdxPolicy> = {
  releasesKeys: true,
  identity: { registryTee: 'tdx', field: 'MRCONFIGID', bytes: 48 },
  async verify(quote, ccel, config) {
    const c = config.tdx ?? {};
    const parsed = tdxEvidence.parse({ quote });
    if (!c.collateral)
      throw new CollateralUnavailable(
        'api.collateral.tdx_unconfigured',
        'this deployment has no TDX collateral source (Intel PCS or a directory)',
      );
    const collateral = await c.collateral.getTdxCollateral(tdxCollateralQuery(parsed));
    const verified = await tdxEvidence.verify(parsed, {
      collateral,
      now: new Date(config.now()),
      ...(c.trustedRoots ? { trustedRoots: c.trustedRoots } : {}),
      ...(c.checkRevocations === false ? { checkRevocations: false } : {}),
      ...(c.verifier ? { verifier: c.verifier } : {}),
    });
    const claims = tdxEvidence.toClaims(verified);
    if (ccel === undefined || ccel.length === 0) return { claims, native: verified };
    // Step: the event log replays to the quote's RTMRs (checked only after the quote's signature).
    const log = verifyCcelEventLog(ccel, verified);
    return {
      claims: { ...claims, details: { ...claims.details, eventLog: { events: log.log.events.length } } },
      native: verified,
    };
  },
  parsePolicy: (p) => parseTdxPolicy(p),
  appraise: (v, policy) => appraiseTdx(v, policy),
};

/**
 * Azure confidential VMs (`az-snp-vtpm`: Trustee's v0/v1/v2 JSON, the UTF-8 bytes as the evidence): the
 * HCL's SNP report through the one SNP pipeline with the deployment's SEV-SNP configuration (the VCEK comes
 * with the evidence, ASK/ARK from the getter), then the vTPM quote (src/evidence/az-snp-vtpm). A collateral
 * blob from the host is refused (`api.collateral.azure_blob`): the evidence carries its own VCEK. The
 * instance is named by SHA-256 of the signed runtime data's vmUniqueId (the claims' identity field; Azure
 * leaves HOST_DATA zero), so the broker's registry serves Azure VMs unchanged.
 */
const azSnpVtpmRow: TeeRow<AzSnpVtpmVerified, AzSnpVtpmPolicy> = {
  releasesKeys: true,
  identity: { registryTee: 'snp', field: AZURE_IDENTITY_FIELD, bytes: 32 },
  async verify(evidence, blob, config) {
    if (blob !== undefined && blob.length > 0)
      throw new NotSupported('api.collateral.azure_blob', 'az-snp-vtpm evidence carries its own VCEK');
    const parsed = azSnpVtpmEvidence.parse(evidence);
    const verified = await withSnpCollateralReasons(() =>
      azSnpVtpmEvidence.verify(parsed, snpOptions(config)),
    );
    return { claims: azSnpVtpmEvidence.toClaims(verified), native: verified };
  },
  parsePolicy: (p) => parseAzSnpVtpmPolicy(p),
  appraise: (v, policy) => appraiseAzSnpVtpm(v, policy),
};

/** The table. Null prototype: a TEE name from the wire never finds an inherited property. */
const TEES: Readonly<Record<string, TeeRow<never, never>>> = Object.freeze(
  Object.assign(Object.create(null), { snp: snpRow, tdx: tdxRow, 'az-snp-vtpm': azSnpVtpmRow }),
);

/** The TEEs in the table (verified and appraised), e.g. `['snp', 'tdx']`. */
export const TEE_NAMES: readonly string[] = Object.freeze(Object.keys(TEES));

/** Whether `tee` names a TEE in the table that keys are released to. */
export function isSupportedTee(tee: unknown): tee is string {
  return typeof tee === 'string' && TEES[tee]?.releasesKeys === true;
}

/** Throws NotSupported `reason` unless `tee` names a TEE in the table that keys are released to. */
export function assertSupportedTee(tee: unknown, reason: string): asserts tee is string {
  if (!isSupportedTee(tee)) throw new NotSupported(reason, `TEE ${shown(tee, 32)} is not supported`);
}

/**
 * How evidence of `tee` names a registered instance (the broker's look-up, src/broker), or null when the
 * TEE is not in the table or its evidence cannot name one.
 */
export function registryIdentityOf(tee: unknown): TeeRegistryIdentity | null {
  return typeof tee === 'string' ? (TEES[tee]?.identity ?? null) : null;
}

/** The row for `tee` (any row: one not yet releasing keys still verifies and appraises). */
function rowOf(tee: unknown, reason: string): TeeRow<unknown, unknown> {
  const row = typeof tee === 'string' ? TEES[tee] : undefined;
  if (!row) throw new NotSupported(reason, `TEE ${shown(tee, 32)} is not supported`);
  return row as unknown as TeeRow<unknown, unknown>;
}

/**
 * The broker's verifier and appraiser over the table (BrokerOptions.verifyEvidence and .appraise):
 * `verifyEvidence` dispatches on the TEE name (NotSupported `api.tee` for one not in the table) and
 * returns the TEE-independent claims with the TEE's own result; `appraise` hands that result to the same
 * TEE's appraiser with the instance's policy (InvalidArgument `policy.invalid` for a policy that does
 * not parse). Throws what each TEE's verifier throws; for SEV-SNP, CollateralUnavailable
 * `api.collateral.certs_missing` / `.product_unknown` / `.vlek_missing` when certificates are missing.
 */
export function createTeeVerifier(config: TeeConfig): {
  readonly verifyEvidence: VerifyEvidence;
  readonly appraise: Appraise;
} {
  if (config.snp?.checkRevocations && !config.snp.getter) {
    throw new TypeError('snp.checkRevocations needs a collateral getter');
  }
  return {
    verifyEvidence: (tee, evidence, collateral) => rowOf(tee, 'api.tee').verify(evidence, collateral, config),
    appraise: (evidence, policy) => appraiseEvidence(evidence, policy).failures,
  };
}

/**
 * Appraises verified evidence with its TEE's appraiser: every failure, and which rules constrained it.
 * Throws NotSupported `api.tee`, InvalidArgument `policy.invalid`.
 */
export function appraiseEvidence(evidence: VerifiedEvidence, policy: unknown): TeeAppraisal {
  const row = rowOf(evidence.claims.tee, 'api.tee');
  return row.appraise(evidence.native, row.parsePolicy(policy));
}

/** Validates a policy document for `tee`. Throws NotSupported `api.tee`, InvalidArgument `policy.invalid`. */
export function checkTeePolicy(tee: string, policy: unknown): void {
  rowOf(tee, 'api.tee').parsePolicy(policy);
}
