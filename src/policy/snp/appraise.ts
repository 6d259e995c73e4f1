import { InvalidArgument, type PolicyFailure, PolicyRejected } from '../../errors.js';
import { isSnpProduct, type SnpProduct } from '../../formats/snp/product.js';
import type { SnpReport } from '../../formats/snp/report.js';
import { parseSnpPolicy } from './parse.js';
import type { SnpPolicy } from './policy.js';
import { ruleContext, SNP_RULES, type SnpRuleName } from './rules.js';

/** The outcome of appraising one report: every failure, and which rules constrained the report. */
export interface SnpAppraisal {
  /** Every failed check, in rule order; empty when the report is accepted. */
  readonly failures: readonly PolicyFailure[];
  /** Rules that placed a constraint on the report (whether they passed or failed). */
  readonly checked: readonly SnpRuleName[];
  /**
   * Rules that placed no constraint: unset reference values (e.g. `measurements`), `'any'`, `allow*: true`,
   * `require*: false`, minimums not given. Print these as "not checked".
   */
  readonly unchecked: readonly SnpRuleName[];
}

/**
 * Appraises a verified SEV-SNP report against a policy (reference/snp-tdx.md A5 steps 7-15: go-sev-guest's
 * validate package, plus platform-info requirements and mitigation vectors). Appraisal sees only the parsed
 * report and its product: signatures, the certificate chain, REPORTED_TCB == certificate TCB and
 * CHIP_ID == hwID are the verifier's job and must have been checked before.
 *
 * Every rule is evaluated; all failures are returned together (nothing is thrown for a rejected report).
 * TCBs are decoded for `product` and compared component by component.
 *
 * Throws InvalidArgument: `policy.invalid` when the policy object is malformed (it is validated exactly as
 * parseSnpPolicy validates a document), `snp.product` when `product` is not an SnpProduct.
 */
export function appraiseSnp(report: SnpReport, product: SnpProduct, policy: SnpPolicy): SnpAppraisal {
  if (typeof product !== 'string' || !isSnpProduct(product)) {
    throw new InvalidArgument('snp.product', `unknown SEV-SNP product ${String(product)}`);
  }
  const ctx = ruleContext(report, product, parseSnpPolicy(policy));
  const failures: PolicyFailure[] = [];
  const checked: SnpRuleName[] = [];
  const unchecked: SnpRuleName[] = [];
  for (const rule of SNP_RULES) {
    const outcome = rule.check(ctx);
    if (outcome === undefined) {
      unchecked.push(rule.name);
    } else {
      checked.push(rule.name);
      failures.push(...outcome);
    }
  }
  return { failures, checked, unchecked };
}

/**
 * Appraises like {@link appraiseSnp} and throws PolicyRejected (`ERR_POLICY_REJECTED`, `failures` listing
 * every failed check) when anything failed; returns the appraisal (with its `unchecked` list) otherwise.
 * Also throws InvalidArgument as appraiseSnp does.
 */
export function assertSnpPolicy(report: SnpReport, product: SnpProduct, policy: SnpPolicy): SnpAppraisal {
  const appraisal = appraiseSnp(report, product, policy);
  if (appraisal.failures.length > 0) throw new PolicyRejected(appraisal.failures);
  return appraisal;
}
