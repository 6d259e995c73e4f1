import { InvalidArgument, type PolicyFailure } from '../../errors.js';
import type { AzSnpVtpmVerified } from '../../evidence/az-snp-vtpm/verify.js';
import { ctEqual, fromHex, toHex } from '../../util/bytes.js';
import { isObject } from '../../util/json-object.js';
import { appraiseSnp } from '../snp/appraise.js';
import { parseSnpPolicy } from '../snp/parse.js';
import type { SnpPolicy } from '../snp/policy.js';

/**
 * `az-snp-vtpm` appraisal policy (docs/kbs.md "Azure confidential VMs"):
 *
 *   {"snp": <SEV-SNP policy, src/policy/snp>, "pcrs": {"<index 0-23>": ["<64 hex>", ...] | "any", ...} | "any"}
 *
 * `snp` appraises the HCL's SNP report exactly as for `snp` (same rules, same safe defaults, same codes);
 * on Azure it measures the paravisor and its firmware, not the guest OS. The guest's boot is in the vTPM's
 * PCRs, hence `pcrs`: per PCR index, the SHA-256 values allowed (any one of them). `pcrs` must be given —
 * an object of rules, or `'any'` to say explicitly that the guest boot is not constrained — because an
 * unset rule must never mean "skip" (TDX's `mrTd` is required for the same reason). A PCR index absent from
 * the object is not constrained and is reported as not checked (`pcr<i>`); a PCR listed in the policy but
 * not quoted fails (`azure.pcr_missing`).
 */
export interface AzSnpVtpmPolicy {
  readonly snp: SnpPolicy;
  readonly pcrs: ReadonlyMap<number, readonly Uint8Array[] | 'any'> | 'any';
}

/** The SHA-256 PCRs the Azure vTPM quotes (TPM 2.0 PC Client: 24). */
const PCR_INDEXES = 24;
const PCR_BYTES = 32;
/** Enough for a fleet's boot variants; a longer list is a mistake, not a policy. */
const MAX_VALUES_PER_PCR = 64;

const fail = (m: string): never => {
  throw new InvalidArgument('policy.invalid', m);
};

function parsePcrRule(v: unknown, at: string): readonly Uint8Array[] | 'any' {
  if (v === 'any') return 'any';
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_VALUES_PER_PCR) {
    return fail(`${at} is 'any' or a list of 1-${MAX_VALUES_PER_PCR} SHA-256 values (hex)`);
  }
  return v.map((x, i) => {
    const b = typeof x === 'string' && /^[0-9a-fA-F]*$/.test(x) ? fromHex(x) : undefined;
    if (!b || b.length !== PCR_BYTES) fail(`${at}[${i}] is ${PCR_BYTES} bytes of hex`);
    return b as Uint8Array;
  });
}

/** Validates an `az-snp-vtpm` policy document. Throws InvalidArgument `policy.invalid`, naming the path. */
export function parseAzSnpVtpmPolicy(doc: unknown): AzSnpVtpmPolicy {
  if (!isObject(doc)) return fail('an az-snp-vtpm policy is an object {snp, pcrs}');
  for (const k of Object.keys(doc)) {
    if (k !== 'snp' && k !== 'pcrs') fail(`$.${k.slice(0, 40)} is not an az-snp-vtpm policy key`);
  }
  if (doc.snp === undefined) fail('$.snp (the SEV-SNP policy of the HCL report) is required');
  let snp: SnpPolicy;
  try {
    snp = parseSnpPolicy(doc.snp);
  } catch (e) {
    // The SNP parser names its paths from `$`; say they are under `$.snp`.
    const m = e instanceof Error ? e.message.replace(/^\$/, '$.snp') : 'invalid';
    return fail(m);
  }
  const p = doc.pcrs;
  if (p === undefined) return fail("$.pcrs is required: PCR rules, or 'any' to leave the guest boot open");
  if (p === 'any') return { snp, pcrs: 'any' };
  if (!isObject(p)) return fail("$.pcrs is an object {index: values | 'any'} or 'any'");
  const pcrs = new Map<number, readonly Uint8Array[] | 'any'>();
  for (const [k, v] of Object.entries(p)) {
    const i = /^(0|[1-9][0-9]?)$/.test(k) ? Number(k) : Number.NaN;
    if (!(i >= 0 && i < PCR_INDEXES)) fail(`$.pcrs.${k.slice(0, 40)}: PCR indexes are 0-${PCR_INDEXES - 1}`);
    pcrs.set(i, parsePcrRule(v, `$.pcrs.${k}`));
  }
  return { snp, pcrs };
}

/** Every failure, and which rules constrained the evidence (SNP rules prefixed `snp.`, PCRs as `pcr<i>`). */
export interface AzSnpVtpmAppraisal {
  readonly failures: readonly PolicyFailure[];
  readonly checked: readonly string[];
  readonly unchecked: readonly string[];
}

/**
 * Appraises verified `az-snp-vtpm` evidence: the SNP report with the SNP appraiser (every SNP failure,
 * unchanged codes), then each PCR rule against the quoted (signature- and digest-checked) PCR values:
 * `azure.pcr` when the value is not in the rule's list, `azure.pcr_missing` when the quote lacks the PCR.
 * Every failure is listed. Pure.
 */
export function appraiseAzSnpVtpm(v: AzSnpVtpmVerified, policy: AzSnpVtpmPolicy): AzSnpVtpmAppraisal {
  const snp = appraiseSnp(v.snp.verified.report, v.snp.verified.product, policy.snp);
  const failures: PolicyFailure[] = [...snp.failures];
  const checked = snp.checked.map((r) => `snp.${r}`);
  const unchecked = snp.unchecked.map((r) => `snp.${r}`);
  for (let i = 0; i < PCR_INDEXES; i++) {
    const rule = policy.pcrs === 'any' ? 'any' : policy.pcrs.get(i);
    if (rule === undefined || rule === 'any') {
      unchecked.push(`pcr${i}`);
      continue;
    }
    checked.push(`pcr${i}`);
    const actual = v.pcrs.get(i);
    if (actual === undefined) {
      failures.push({ code: 'azure.pcr_missing', message: `PCR ${i} is not in the quote` });
    } else if (!rule.some((allowed) => ctEqual(allowed, actual))) {
      failures.push({
        code: 'azure.pcr',
        message: `PCR ${i} is not an allowed value`,
        expected: rule.map(toHex).join(' | '),
        actual: toHex(actual),
      });
    }
  }
  return { failures, checked, unchecked };
}
