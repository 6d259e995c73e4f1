import { expectBoolean, expectHex, expectNonEmptyArray, expectObject, policyInvalid } from '../json.js';
import { ANY, type CmdlineRules, TPM_BOOT_POLICY_KEYS, type TpmBootPolicy } from './policy.js';

const word = (v: unknown, path: string): string => {
  if (typeof v !== 'string' || v.length === 0 || v.length > 4096) {
    throw policyInvalid(path, 'expected a non-empty string of at most 4096 characters');
  }
  return v;
};

const noSpace = (v: unknown, path: string): string => {
  const w = word(v, path);
  if (/\s/.test(w)) throw policyInvalid(path, 'a command-line word has no whitespace');
  return w;
};

const sha256List = (v: unknown, path: string): string[] =>
  expectNonEmptyArray(v, path, (x, p) => expectHex(x, p, 32));

function cmdline(v: unknown, path: string): CmdlineRules {
  const o = expectObject(v, path, ['exact', 'require', 'forbid']);
  if (o.exact === undefined && o.require === undefined && o.forbid === undefined) {
    throw policyInvalid(path, "gives no rule; leave cmdline out or use 'any'");
  }
  return {
    ...(o.exact !== undefined ? { exact: expectNonEmptyArray(o.exact, `${path}.exact`, word) } : {}),
    ...(o.require !== undefined
      ? { require: expectNonEmptyArray(o.require, `${path}.require`, noSpace) }
      : {}),
    ...(o.forbid !== undefined ? { forbid: expectNonEmptyArray(o.forbid, `${path}.forbid`, noSpace) } : {}),
  };
}

/**
 * Validates a measured-boot policy document (JSON as parsed) and returns it normalized (hex lower case).
 * Unknown keys are refused so that a misspelt rule cannot fall back to its default. Throws InvalidArgument
 * (`policy.invalid`, with the JSON path) for anything else.
 */
export function parseTpmBootPolicy(v: unknown): TpmBootPolicy {
  const o = expectObject(v, '$', TPM_BOOT_POLICY_KEYS);
  const out: Record<string, unknown> = {};
  for (const key of TPM_BOOT_POLICY_KEYS) {
    const x = o[key];
    const path = `$.${key}`;
    if (x === undefined) continue;
    if (x === ANY) {
      out[key] = ANY;
      continue;
    }
    switch (key) {
      case 'requireSecureBoot':
      case 'requireSeparators':
        out[key] = expectBoolean(x, path);
        break;
      case 'cmdline':
        out[key] = cmdline(x, path);
        break;
      default:
        out[key] = sha256List(x, path);
    }
  }
  return out as TpmBootPolicy;
}
