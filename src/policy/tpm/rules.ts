import type { PolicyFailure } from '../../errors.js';
import type { BootClaims } from '../../evidence/tpm/eventlog-claims.js';
import { ANY, type TpmBootPolicy, type TpmBootRuleName } from './policy.js';

/** Every failure code measured-boot appraisal can report (docs/eventlog.md explains each). */
export const TPM_BOOT_FAILURE_CODES = [
  'tpm.secure_boot',
  'tpm.separator',
  'tpm.boot_loader',
  'tpm.kernel',
  'tpm.cmdline',
  'tpm.cmdline.unverified',
  'tpm.dbx',
] as const;
export type TpmBootFailureCode = (typeof TPM_BOOT_FAILURE_CODES)[number];

export type RuleOutcome = readonly PolicyFailure[] | undefined;

export interface TpmBootRule {
  readonly name: TpmBootRuleName;
  readonly codes: readonly TpmBootFailureCode[];
  readonly check: (c: BootClaims, p: TpmBootPolicy) => RuleOutcome;
}

const fail = (
  code: TpmBootFailureCode,
  message: string,
  expected?: string,
  actual?: string,
): PolicyFailure => ({
  code,
  message,
  ...(expected !== undefined ? { expected } : {}),
  ...(actual !== undefined ? { actual } : {}),
});

const show = (xs: readonly string[]) => (xs.length === 1 ? xs[0]! : `one of ${xs.length} listed digests`);

/** Whether `word` (a command-line word) is `name` or `name=…`. */
const named = (word: string, name: string) =>
  word === name || (!name.includes('=') && word.startsWith(`${name}=`));

/** The rules in appraisal order. A rule returns undefined when the policy places no constraint. */
export const TPM_BOOT_RULES: readonly TpmBootRule[] = [
  {
    name: 'requireSecureBoot',
    codes: ['tpm.secure_boot'],
    check: (c, p) => {
      if ((p.requireSecureBoot ?? true) !== true) return undefined;
      if (c.secureBoot === true) return [];
      return [
        fail(
          'tpm.secure_boot',
          c.secureBoot === false ? 'Secure Boot is off' : 'no verified SecureBoot variable event in PCR 7',
          'SecureBoot=1',
          c.secureBoot === false ? 'SecureBoot=0' : 'absent',
        ),
      ];
    },
  },
  {
    name: 'requireSeparators',
    codes: ['tpm.separator'],
    check: (c, p) => {
      if ((p.requireSeparators ?? true) !== true) return undefined;
      const out: PolicyFailure[] = [];
      for (const [pcr, value] of c.separators) {
        if (value === 0) continue;
        out.push(
          fail(
            'tpm.separator',
            value === null ? `PCR ${pcr} has no verified EV_SEPARATOR` : `PCR ${pcr} has an error separator`,
            '0x00000000',
            value === null ? 'absent' : `0x${value.toString(16).padStart(8, '0')}`,
          ),
        );
      }
      return out;
    },
  },
  {
    name: 'bootLoaders',
    codes: ['tpm.boot_loader'],
    check: (c, p) => {
      const allowed = p.bootLoaders;
      if (allowed === undefined || allowed === ANY) return undefined;
      if (c.bootApplications.length === 0) {
        return [
          fail('tpm.boot_loader', 'no boot application measured in a verified PCR 4', show(allowed), 'none'),
        ];
      }
      return c.bootApplications
        .filter((a) => a.sha256 === null || !allowed.includes(a.sha256))
        .map((a) =>
          fail(
            'tpm.boot_loader',
            `boot application ${a.path || `(event ${a.index})`} is not allowed`,
            show(allowed),
            a.sha256 ?? 'no SHA-256 digest',
          ),
        );
    },
  },
  {
    name: 'kernels',
    codes: ['tpm.kernel'],
    check: (c, p) => {
      const allowed = p.kernels;
      if (allowed === undefined || allowed === ANY) return undefined;
      if (c.kernel === null)
        return [fail('tpm.kernel', 'no kernel measurement found', show(allowed), 'none')];
      if (c.kernel.sha256 !== null && allowed.includes(c.kernel.sha256)) return [];
      return [
        fail(
          'tpm.kernel',
          `kernel (${c.kernel.source}) is not allowed`,
          show(allowed),
          c.kernel.sha256 ?? 'no SHA-256 digest',
        ),
      ];
    },
  },
  {
    name: 'cmdline',
    codes: ['tpm.cmdline', 'tpm.cmdline.unverified'],
    check: (c, p) => {
      const r = p.cmdline;
      if (r === undefined || r === ANY) return undefined;
      if (c.cmdline === null)
        return [
          fail('tpm.cmdline', 'no kernel command line measured in a verified PCR 8', undefined, 'none'),
        ];
      // The text is event data: it is evidence only when the event's digest is of it.
      if (!c.cmdline.verified) {
        return [
          fail(
            'tpm.cmdline.unverified',
            'the command-line event’s digest is not of its data',
            undefined,
            c.cmdline.text,
          ),
        ];
      }
      const words = c.cmdline.text.split(/\s+/).filter((w) => w.length > 0);
      const out: PolicyFailure[] = [];
      if (r.exact && !r.exact.includes(words.join(' '))) {
        out.push(
          fail(
            'tpm.cmdline',
            'command line is not one of the allowed ones',
            r.exact.length === 1 ? r.exact[0] : `one of ${r.exact.length}`,
            words.join(' '),
          ),
        );
      }
      for (const w of r.require ?? []) {
        if (!words.includes(w)) out.push(fail('tpm.cmdline', `command line lacks ${w}`, w, c.cmdline.text));
      }
      for (const w of r.forbid ?? []) {
        const hit = words.find((x) => named(x, w));
        if (hit !== undefined)
          out.push(fail('tpm.cmdline', `command line has forbidden ${hit}`, `no ${w}`, hit));
      }
      return out;
    },
  },
  {
    name: 'requiredDbxDigests',
    codes: ['tpm.dbx'],
    check: (c, p) => {
      const req = p.requiredDbxDigests;
      if (req === undefined || req === ANY) return undefined;
      if (c.dbxSha256 === null)
        return [fail('tpm.dbx', 'no verified dbx event in PCR 7', `${req.length} revocations`, 'absent')];
      const have = new Set(c.dbxSha256);
      const missing = req.filter((d) => !have.has(d));
      return missing.length === 0
        ? []
        : [
            fail(
              'tpm.dbx',
              `dbx lacks ${missing.length} required revocation(s)`,
              missing.join(','),
              `${have.size} entries`,
            ),
          ];
    },
  },
];
