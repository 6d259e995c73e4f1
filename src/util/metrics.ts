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
  vouchsafe_lease_events_total:
    'Native boot leases started (by a release), renewed (heartbeat) and ended; refused ones count as refusals.',
  vouchsafe_kds_cache_total:
    'AMD KDS certificate lookups (VCEK, cert chain), by kind and where they were served from (memory, disk, network).',
} as const;

export type CounterName = keyof typeof COUNTERS;

/**
 * Histograms, with their fixed upper bounds in seconds. Fixed (not configurable) so that dashboards and
 * alerts written against one broker hold for every broker.
 */
export const HISTOGRAMS = {
  vouchsafe_release_duration_seconds: {
    help: 'Time to decide a release request (native /v1/attest and KBS /kbs/v0/attest), by api and outcome.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  },
} as const;

export type HistogramName = keyof typeof HISTOGRAMS;

/** A sink for counters. */
export interface Counters {
  /** Adds 1 to `name` with `labels`. */
  inc(name: CounterName, labels?: Readonly<Record<string, string>>): void;
  /** Records one observation of `value` (seconds for a duration) in histogram `name` with `labels`. */
  observe(name: HistogramName, value: number, labels?: Readonly<Record<string, string>>): void;
}

/** Counts nothing (a service built without metrics). */
export const NO_COUNTERS: Counters = Object.freeze({ inc: () => {}, observe: () => {} });
