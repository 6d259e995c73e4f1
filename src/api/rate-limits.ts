import { InvalidArgument } from '../errors.js';
import { RateLimited, RefusalLimiter } from './refusal-limiter.js';

/**
 * Request rate limits (issue 14; docs/access.md "Rate limits"): a token bucket per key — `burst` requests
 * at once, refilled at `perMinute` — in memory, per broker process. Keylime limits session creation per
 * IP and per agent; Trustee's KBS declines to; here each is configuration (`serve --rate-limits FILE`).
 *
 * Where each applies, and to what key:
 * - `challenge.perSource`: POST /v1/challenge, by client address.
 * - `attest.perSource`: POST /v1/attest, by client address.
 * - `attest.perInstance`: every release decision, native /v1/attest and KBS /kbs/v0/attest alike, by the
 *   instance the evidence names. A challenge or KBS auth request names no instance (nothing identifies
 *   one before evidence is verified), so this is the first point where a per-instance limit can be
 *   charged: after the signature check, before appraisal and the audit entry (Broker `admitInstance`).
 * - `kbsAuth.perSource`, `kbsAttest.perSource`: POST /kbs/v0/auth and /kbs/v0/attest, by client address.
 * - `adminAuthFailures.perSource`: admin requests whose credential was not accepted, by client address;
 *   over it, even a right credential is turned away until the bucket refills (stops guessing).
 *
 * Over a limit the answer is 429 with Retry-After (seconds). The client address is what fastify reports
 * (the socket peer): every guest behind one host proxy shares the proxy's address, which is why the
 * per-source defaults are high (they stop floods, not busy hosts).
 */
export interface BucketLimit {
  readonly burst: number;
  readonly perMinute: number;
}

/** Each limit: a bucket, or `false` for none. Omitted: the default in {@link DEFAULT_RATE_LIMITS}. */
export interface RateLimitConfig {
  readonly challenge?: { readonly perSource?: BucketLimit | false };
  readonly attest?: { readonly perSource?: BucketLimit | false; readonly perInstance?: BucketLimit | false };
  readonly kbsAuth?: { readonly perSource?: BucketLimit | false };
  readonly kbsAttest?: { readonly perSource?: BucketLimit | false };
  readonly adminAuthFailures?: { readonly perSource?: BucketLimit | false };
}

/** The limit names routes declare (`config.rateLimit`) and `vouchsafe_refusals_total` counts under. */
export type RateLimitName = 'challenge' | 'attest' | 'kbsAuth' | 'kbsAttest';

export const DEFAULT_RATE_LIMITS = {
  challenge: { perSource: { burst: 2000, perMinute: 60_000 } },
  attest: { perSource: { burst: 1000, perMinute: 30_000 }, perInstance: { burst: 60, perMinute: 120 } },
  kbsAuth: { perSource: { burst: 2000, perMinute: 60_000 } },
  kbsAttest: { perSource: { burst: 1000, perMinute: 30_000 } },
  adminAuthFailures: { perSource: { burst: 20, perMinute: 10 } },
} as const satisfies Required<RateLimitConfig>;

const SECTIONS: Readonly<Record<string, readonly string[]>> = {
  challenge: ['perSource'],
  attest: ['perSource', 'perInstance'],
  kbsAuth: ['perSource'],
  kbsAttest: ['perSource'],
  adminAuthFailures: ['perSource'],
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses a rate-limit file's JSON value, e.g. `{"attest": {"perInstance": {"burst": 10, "perMinute": 30}},
 * "challenge": {"perSource": false}}`. Unknown sections or keys are refused (a typo must not silently
 * leave the default). Throws InvalidArgument `api.rate_limits`.
 */
export function parseRateLimitConfig(v: unknown): RateLimitConfig {
  const bad = (why: string) => new InvalidArgument('api.rate_limits', `rate limits: ${why}`);
  if (!isObject(v)) throw bad('expected a JSON object');
  const out: Record<string, Record<string, BucketLimit | false>> = {};
  for (const [section, body] of Object.entries(v)) {
    const keys = Object.hasOwn(SECTIONS, section) ? SECTIONS[section]! : undefined;
    if (!keys) throw bad(`unknown section "${section.slice(0, 40)}" (${Object.keys(SECTIONS).join(', ')})`);
    if (!isObject(body)) throw bad(`${section}: expected an object`);
    const limits: Record<string, BucketLimit | false> = {};
    for (const [key, limit] of Object.entries(body)) {
      if (!keys.includes(key))
        throw bad(`${section}: unknown key "${key.slice(0, 40)}" (${keys.join(', ')})`);
      if (limit === false) {
        limits[key] = false;
        continue;
      }
      if (!isObject(limit) || Object.keys(limit).some((k) => k !== 'burst' && k !== 'perMinute'))
        throw bad(`${section}.${key}: expected false or {"burst": N, "perMinute": N}`);
      const { burst, perMinute } = limit;
      for (const [name, n] of [
        ['burst', burst],
        ['perMinute', perMinute],
      ] as const) {
        if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > 1e9)
          throw bad(`${section}.${key}.${name}: an integer 1..1e9`);
      }
      limits[key] = { burst: burst as number, perMinute: perMinute as number };
    }
    out[section] = limits;
  }
  return out as RateLimitConfig;
}

/** The limiters of one broker process, from a configuration over the defaults. */
export class RateLimits {
  private readonly perSource = new Map<RateLimitName | 'adminAuthFailures', RefusalLimiter>();
  private readonly perInstance: RefusalLimiter | undefined;

  constructor(config: RateLimitConfig = {}, now?: () => number) {
    const make = (l: BucketLimit | false | undefined, def: BucketLimit) =>
      l === false ? undefined : new RefusalLimiter({ ...(l ?? def), ...(now ? { now } : {}) });
    for (const name of ['challenge', 'attest', 'kbsAuth', 'kbsAttest', 'adminAuthFailures'] as const) {
      const l = make(config[name]?.perSource, DEFAULT_RATE_LIMITS[name].perSource);
      if (l) this.perSource.set(name, l);
    }
    this.perInstance = make(config.attest?.perInstance, DEFAULT_RATE_LIMITS.attest.perInstance);
  }

  /** Spends one request of `source` under `name`; throws RateLimited (429) when none is left. */
  take(name: RateLimitName, source: string): void {
    const l = this.perSource.get(name);
    if (!l) return;
    l.check(source, 'too many requests from this source; retry later');
    l.charge(source);
  }

  /** Spends one release of `instanceId` (Broker `admitInstance`); throws RateLimited when none is left. */
  readonly admitInstance = (instanceId: string): void => {
    if (!this.perInstance) return;
    this.perInstance.check(instanceId, 'too many attestations of this instance; retry later');
    this.perInstance.charge(instanceId);
  };

  /** Throws RateLimited when `source` has used up its failed admin authentications. */
  checkAdminSource(source: string): void {
    this.perSource
      .get('adminAuthFailures')
      ?.check(source, 'too many failed admin authentications; retry later');
  }

  /** Counts one failed admin authentication of `source`. */
  adminAuthFailed(source: string): void {
    this.perSource.get('adminAuthFailures')?.charge(source);
  }
}

export { RateLimited };
