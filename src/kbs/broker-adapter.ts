import { randomUUID } from 'node:crypto';
import type { Broker } from '../broker/broker.js';
import { InvalidArgument, PolicyRejected } from '../errors.js';
import { parseSnpPolicy } from '../policy/snp/index.js';
import { parseTdxPolicy } from '../policy/tdx/policy.js';
import type { JsonValue } from '../store/types.js';
import type { KbsAttestation, KbsAttestRequest, KbsBroker, KbsResourceRequest } from './deps.js';
import { type KbsGrants, MemoryGrants } from './grants.js';
import { formatResourcePath } from './messages.js';
import { evaluateResourcePolicy } from './resource-policy.js';
import type { SecretSource } from './secrets.js';

/** Resource path that serves the attested instance's sealing key (docs/kbs.md "Resources"). */
export const SEALING_KEY_PATH = 'vouchsafe/sealing-key/current';

export interface BrokerKbsAdapterOptions {
  /**
   * The Broker. The token's claims are the claims its release returns (`ReleaseResult.evidence`): those of
   * the verification the release decision rested on; the report is verified once per attestation.
   */
  readonly broker: Pick<Broker, 'issueChallenge' | 'release'>;
  /** Operator secrets and their resource policies; none when absent. */
  readonly secrets?: SecretSource;
  /**
   * Paths that serve the caller's own sealing key (default [SEALING_KEY_PATH]). Add
   * `default/sample/test` to serve an unmodified COCONUT aproxy, which fetches only that path.
   */
  readonly sealingKeyPaths?: readonly string[];
  /** How long a released key is held for the token's resource reads, ms (default 300 000 = token lifetime). */
  readonly grantTtlMs?: number;
  /** Released keys held at once in memory (default 10 000); beyond it the oldest is dropped (and zeroed). */
  readonly maxGrants?: number;
  /**
   * Where released keys are held (default: in this process, MemoryGrants). startBroker passes StoreGrants
   * (grants.ts): encrypted under the KEK in the store, readable by every replica.
   */
  readonly grants?: KbsGrants;
  /**
   * Whether an SNP instance policy constrains MEASUREMENT (default: the SNP policy's `measurements` rule).
   * A TDX instance's policy is read by tdxPolicyChecksMeasurement.
   */
  readonly measurementChecked?: (policy: JsonValue) => boolean;
  /** Clock in ms (default Date.now). */
  readonly now?: () => number;
}

export interface BrokerKbsAdapter extends KbsBroker {
  /** Released keys currently held in this process's memory. */
  heldGrants(): number;
  /** Zeroes and forgets every held key. */
  close(): void;
}

/**
 * Default `measurementChecked`: the SNP policy enforces its `measurements` rule, i.e. gives a list (the
 * rule's own condition, src/policy/snp/rules.ts: unset and `'any'` check nothing; it has no default). Read
 * from the parsed policy, not from describeSnpPolicy, which formats every rule for people (once per release).
 */
export function snpPolicyChecksMeasurement(policy: JsonValue): boolean {
  try {
    return Array.isArray(parseSnpPolicy(policy).measurements);
  } catch {
    return false;
  }
}

/** A TDX policy constrains the launch measurement when its `mrTd` is a list (not `'any'`). */
export function tdxPolicyChecksMeasurement(policy: JsonValue): boolean {
  try {
    return parseTdxPolicy(policy).mrTd !== 'any';
  } catch {
    return false;
  }
}

/**
 * The KBS's view of the Broker (KbsDeps.broker):
 * - `issueChallenge` is the Broker's (single use, stored by digest);
 * - `attest` is one Broker `release` (challenge, verification, REPORT_DATA, instance by HOST_DATA,
 *   appraisal, rollback/clone rules, audit) with no state counter (KBS clients have none); the token's
 *   claims are the release's own (`ReleaseResult.evidence`: one verification per attestation, and the
 *   claims are those the decision rested on). The released sealing key is held under a random grant id (the token's `jti`)
 *   until the grant expires (`grants`: in memory, or in the store under the KEK so that every replica can
 *   serve the resource); the commit token is zeroed at once (KBS clients cannot commit).
 *   Every successful attest therefore starts or continues a boot lease: a re-attestation of the same launch
 *   (a token refresh) is the same boot; a new launch follows the instance's new-launch policy
 *   (docs/broker.md "Leases"), as for any release.
 * - `readResource` serves the caller's own sealing key at the sealing-key paths (from its grant; with
 *   in-memory grants a token presented to a replica that did not attest it finds none, `kbs.resource.gone`),
 *   and operator secrets under their resource policy.
 */
export function createBrokerKbsAdapter(o: BrokerKbsAdapterOptions): BrokerKbsAdapter {
  const now = o.now ?? Date.now;
  const ttl = o.grantTtlMs ?? 300_000;
  const max = o.maxGrants ?? 10_000;
  if (!Number.isSafeInteger(ttl) || ttl <= 0 || !Number.isSafeInteger(max) || max <= 0) {
    throw new InvalidArgument('kbs.config', 'grantTtlMs and maxGrants must be positive integers');
  }
  const sealingPaths = new Set(o.sealingKeyPaths ?? [SEALING_KEY_PATH]);
  const checksMeasurement = o.measurementChecked ?? snpPolicyChecksMeasurement;
  const grants = o.grants ?? new MemoryGrants(max, now);

  return {
    issueChallenge: () => o.broker.issueChallenge(),

    async attest(req: KbsAttestRequest): Promise<KbsAttestation> {
      const r = await o.broker.release({
        tee: req.tee,
        report: req.report,
        ...(req.certTable ? { certTable: req.certTable } : {}),
        challenge: req.challenge,
        expectedReportData: req.expectedReportData,
        stateCounter: null,
      });
      r.commitToken.fill(0);
      r.stateKey?.key.fill(0);
      try {
        const claims = r.evidence;
        const details = claims.details as { [k: string]: unknown };
        const grant = randomUUID();
        await grants.put(grant, r.instance.id, r.key, now() + ttl);
        r.key.fill(0);
        if (req.tee === 'tdx') {
          // No SNP report: the evidence contract's claims go under the TEE's name.
          return {
            instance: r.instance,
            teeClaims: { [claims.tee]: details },
            policyId: `vouchsafe:instance-policy/${r.instance.id}`,
            appraisal: {
              measurementChecked: tdxPolicyChecksMeasurement(r.policy),
              debugAllowed: claims.debug !== false,
            },
            grant,
          };
        }
        // az-snp-vtpm: the token's `snp` is the HCL report's SNP claims, the rest goes beside it under the
        // TEE's name; its policy's SNP part is `policy.snp` (src/policy/az-snp-vtpm).
        const azure = req.tee === 'az-snp-vtpm';
        const { snp: snpDetails, ...azureDetails } = details;
        const snpPolicy = (p: JsonValue): JsonValue =>
          azure ? ((p as { [k: string]: JsonValue } | null)?.snp ?? null) : p;
        return {
          instance: r.instance,
          claims: azure ? (snpDetails as { [k: string]: unknown }) : details,
          ...(azure ? { teeClaims: { 'az-snp-vtpm': azureDetails } } : {}),
          policyId: `vouchsafe:instance-policy/${r.instance.id}`,
          appraisal: {
            measurementChecked: checksMeasurement(snpPolicy(r.policy)),
            // Evidence that says nothing about debugging does not exclude it.
            debugAllowed: claims.debug !== false,
          },
          grant,
        };
      } catch (e) {
        r.key.fill(0);
        throw e;
      }
    },

    async readResource(req: KbsResourceRequest): Promise<Uint8Array> {
      const path = formatResourcePath(req.path);
      if (sealingPaths.has(path)) {
        const g = await grants.get(req.subject.jti);
        if (!g || g.expiresAt <= now() || g.instanceId !== req.subject.identity.brokerInstanceId) {
          g?.key.fill(0);
          if (!g || g.expiresAt <= now()) {
            throw new InvalidArgument('kbs.resource.gone', 'the key released to this token is not held');
          }
          throw new PolicyRejected([{ code: 'kbs.resource.instance', message: 'grant of another instance' }]);
        }
        return g.key;
      }
      const secret = await o.secrets?.get(path);
      if (!secret) throw new InvalidArgument('kbs.resource.not_found', `no resource ${path}`);
      const failures = evaluateResourcePolicy(secret.policy, req.subject);
      if (failures.length > 0) {
        secret.value.fill(0);
        throw new PolicyRejected(failures);
      }
      return secret.value;
    },

    heldGrants: () => grants.held(),

    close: () => grants.close(),
  };
}
