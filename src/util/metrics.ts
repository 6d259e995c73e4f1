/**
 * What the broker's services count, as an interface they are given (the HTTP layer's Prometheus registry,
 * src/api/metrics.ts, implements it), so nothing below the API imports the API to count. Labels are stable
 * codes and reasons only (a bounded set), never instance ids, keys or evidence.
 */
export const COUNTERS = {
  vouchsafe_challenges_total: 'Challenges issued, by protocol version.',
  vouchsafe_releases_total: 'Sealing keys released, by protocol version.',
  vouchsafe_refusals_total:
    'Refused guest requests, by operation, error code and reason (a policy refusal counts once per failed check).',
  vouchsafe_commits_total: 'State counters committed.',
  vouchsafe_admin_requests_total: 'Admin API requests, by outcome.',
} as const;

export type CounterName = keyof typeof COUNTERS;

/** A sink for counters. */
export interface Counters {
  /** Adds 1 to `name` with `labels`. */
  inc(name: CounterName, labels?: Readonly<Record<string, string>>): void;
}

/** Counts nothing (a service built without metrics). */
export const NO_COUNTERS: Counters = Object.freeze({ inc: () => {} });
