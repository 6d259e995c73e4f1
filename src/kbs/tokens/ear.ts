/**
 * EAT Attestation Results (EAR, draft-ietf-rats-ear-04; reference kbs-and-peers.md §6): the claims of the
 * attestation-result tokens the broker signs after a key-release decision. Pure data: building the claim
 * set and computing statuses; signing is in ear-tokens.ts.
 *
 * Layout (one submodule, `cpu0`, as Trustee names its CPU appraisal):
 *
 *   {
 *     "eat_profile": "tag:github.com,2023:veraison/ear",
 *     "iat", "nbf", "exp", "iss", "jti",
 *     "eat_nonce": the RCAR nonce the evidence is bound to,
 *     "ear.verifier-id": {"build", "developer"},
 *     "submods": {"cpu0": {
 *        "ear.status", "ear.trustworthiness-vector", "ear.appraisal-policy-id",
 *        "ear.veraison.annotated-evidence": {"snp" | "tdx": <verified claims>, "report_data": hex,
 *                                            "runtime_data_claims": <runtime data>, "binding": "..."},
 *        "ear.vouchsafe.platform-identity": {"brokerInstanceId", "project", "zone", "instanceId",
 *                                            "instanceName", "source": "registry"}}}
 *   }
 *
 * `runtime_data_claims` carries the TEE public key at the path Trustee's KBS reads it from
 * (`…annotated-evidence.runtime_data_claims.tee-pubkey`), so a relying party can wrap a response to it.
 */

export const EAR_PROFILE = 'tag:github.com,2023:veraison/ear';
/** The one submodule our SNP results use. */
export const CPU_SUBMOD = 'cpu0';
/** Vouchsafe's profile extension naming the instance the broker matched. */
export const PLATFORM_IDENTITY_CLAIM = 'ear.vouchsafe.platform-identity';
export const ANNOTATED_EVIDENCE_CLAIM = 'ear.veraison.annotated-evidence';

export type EarStatus = 'none' | 'affirming' | 'warning' | 'contraindicated';

/** AR4SI trustworthiness claims (draft-ietf-rats-ar4si §2.3), in the order EAR lists them. */
export const TRUST_CLAIMS = [
  'instance-identity',
  'configuration',
  'executables',
  'file-system',
  'hardware',
  'runtime-opaque',
  'storage-opaque',
  'sourced-data',
] as const;
export type TrustClaim = (typeof TRUST_CLAIMS)[number];

/** Claims that make no statement are omitted (EAR: absent means "no claim", i.e. 0). */
export type TrustVector = Partial<Record<TrustClaim, number>>;

/**
 * The status tier of one AR4SI value (draft-ietf-rats-ar4si §2.3.3): -1..1 none; 2..31 and -32..-2
 * affirming; 32..95 and -96..-33 warning; 96..127 and -128..-97 contraindicated. Anything outside
 * -128..127 (or not an integer) is treated as contraindicated.
 */
export function statusOfTier(v: number): EarStatus {
  if (!Number.isInteger(v) || v < -128 || v > 127) return 'contraindicated';
  if (v >= -1 && v <= 1) return 'none';
  if ((v >= 2 && v <= 31) || (v >= -32 && v <= -2)) return 'affirming';
  if ((v >= 32 && v <= 95) || (v >= -96 && v <= -33)) return 'warning';
  return 'contraindicated';
}

const RANK: Readonly<Record<EarStatus, number>> = { none: 0, affirming: 1, warning: 2, contraindicated: 3 };

/** The status of a submodule: the worst tier in its vector (ear-04 §3.2); `none` for an empty vector. */
export function statusOfVector(tv: TrustVector): EarStatus {
  let worst: EarStatus = 'none';
  for (const k of TRUST_CLAIMS) {
    const v = tv[k];
    if (v === undefined) continue;
    const s = statusOfTier(v);
    if (RANK[s] > RANK[worst]) worst = s;
  }
  return worst;
}

/** What the broker knows about an accepted SNP attestation that the trust vector reports. */
export interface SnpAppraisalSummary {
  /** The instance's policy constrained MEASUREMENT (so only approved firmware/boot code ran). */
  readonly measurementChecked: boolean;
  /** The report's guest policy allows debugging: the host can read and write guest memory. */
  readonly debugAllowed: boolean;
}

/**
 * The AR4SI vector of an accepted SNP attestation. Tokens are issued only after the broker accepted the
 * evidence (signature chained to a trusted AMD root, HOST_DATA named a registered instance, the instance's
 * policy passed, rollback/clone rules passed), so:
 * - `hardware` 2 (genuine: the report chains to a trusted root),
 * - `instance-identity` 2 (recognized: the registry issued this HOST_DATA; see docs/kbs.md on what that proves),
 * - `configuration` 2 (approved: the instance policy accepted the report),
 * - `executables` 3 ("approved boot": the launch measurement is in the policy's list) only when the policy
 *   constrained MEASUREMENT, else absent (no claim),
 * - `runtime-opaque` 2 (memory encrypted and isolated by SEV-SNP), or 96 when the guest policy allows debug,
 * - `file-system`, `storage-opaque`, `sourced-data`: absent: nothing in an SNP report speaks to them.
 * A TDX quote is summarized the same way: MRTD is its launch measurement (constrained when the policy's
 * `mrTd` is a list), HOST_DATA's role is MRCONFIGID's, debug is TD_ATTRIBUTES.DEBUG.
 */
export function snpTrustVector(s: SnpAppraisalSummary): TrustVector {
  return {
    'instance-identity': 2,
    configuration: 2,
    ...(s.measurementChecked ? { executables: 3 } : {}),
    hardware: 2,
    'runtime-opaque': s.debugAllowed ? 96 : 2,
  };
}

export interface EarVerifierId {
  readonly build: string;
  readonly developer: string;
}

export interface PlatformIdentityClaim {
  /** The broker's id for the instance. */
  readonly brokerInstanceId: string;
  readonly project: string;
  readonly zone: string;
  readonly instanceId: string;
  readonly instanceName: string;
  /**
   * Where the identity comes from: `registry`, i.e. the control plane registered the instance and was
   * issued the HOST_DATA the report carries. The host chose to launch with it; the report proves only that.
   */
  readonly source: 'registry';
}

export interface EarAppraisal {
  readonly 'ear.status': EarStatus;
  readonly 'ear.trustworthiness-vector': TrustVector;
  readonly 'ear.appraisal-policy-id'?: string;
  readonly [ANNOTATED_EVIDENCE_CLAIM]?: { readonly [k: string]: unknown };
  readonly [PLATFORM_IDENTITY_CLAIM]?: PlatformIdentityClaim;
}

export interface EarClaims {
  readonly eat_profile: typeof EAR_PROFILE;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  readonly iss: string;
  readonly jti: string;
  readonly eat_nonce?: string;
  readonly 'ear.verifier-id': EarVerifierId;
  readonly submods: { readonly [name: string]: EarAppraisal };
}

/** Everything an SNP EAR says; times in ms since the epoch (the token carries seconds). */
export interface SnpEarInput {
  readonly issuer: string;
  readonly verifierId: EarVerifierId;
  readonly issuedAt: number;
  readonly lifetimeMs: number;
  /** Unique token id; the KBS uses it to find what the release decision left for this token. */
  readonly jti: string;
  /** The RCAR nonce (as the client saw it); becomes `eat_nonce`. */
  readonly nonce: string;
  readonly identity: PlatformIdentityClaim;
  /**
   * Verified SNP claims (src/evidence/snp toSnpClaims), JSON; absent when the evidence has no SNP report
   * (`tdx`: its claims come under `teeClaims.tdx`).
   */
  readonly snp?: { readonly [k: string]: unknown };
  /**
   * Claims of the TEE beyond (or instead of) an SNP report, under the TEE's name, as the evidence contract's
   * `details` (e.g. `az-snp-vtpm`: vm-configuration, PCRs; `tdx`: src/evidence/tdx TdxClaims); placed in the
   * annotated evidence beside `snp`.
   */
  readonly teeClaims?: { readonly [tee: string]: unknown };
  /** REPORT_DATA, hex. */
  readonly reportData: string;
  /** The runtime data the REPORT_DATA binds (nonce, tee-pubkey, ...). */
  readonly runtimeData: { readonly [k: string]: unknown };
  /** Which binding rule matched (docs/kbs.md): `trustee-jcs-sha384` or `aproxy-sha512`. */
  readonly binding: string;
  readonly policyId: string;
  readonly appraisal: SnpAppraisalSummary;
}

/** The EAR claim set of an accepted SNP attestation. Pure. */
export function buildSnpEar(i: SnpEarInput): EarClaims {
  const iat = Math.floor(i.issuedAt / 1000);
  const vector = snpTrustVector(i.appraisal);
  return {
    eat_profile: EAR_PROFILE,
    iat,
    nbf: iat,
    exp: Math.floor((i.issuedAt + i.lifetimeMs) / 1000),
    iss: i.issuer,
    jti: i.jti,
    eat_nonce: i.nonce,
    'ear.verifier-id': { build: i.verifierId.build, developer: i.verifierId.developer },
    submods: {
      [CPU_SUBMOD]: {
        'ear.status': statusOfVector(vector),
        'ear.trustworthiness-vector': vector,
        'ear.appraisal-policy-id': i.policyId,
        [ANNOTATED_EVIDENCE_CLAIM]: {
          ...i.teeClaims,
          ...(i.snp ? { snp: i.snp } : {}),
          report_data: i.reportData,
          runtime_data_claims: i.runtimeData,
          binding: i.binding,
        },
        [PLATFORM_IDENTITY_CLAIM]: { ...i.identity },
      },
    },
  };
}
