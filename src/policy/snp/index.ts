export { InvalidPolicy, POLICY_INVALID } from '../json.js';
export * from './appraise.js';
export * from './describe.js';
export * from './parse.js';
export * from './policy.js';
export {
  SNP_FAILURE_CODES,
  SNP_RULES,
  type SnpFailureCode,
  type SnpRule,
  type SnpRuleName,
} from './rules.js';
