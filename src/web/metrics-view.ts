import type { MetricsSnapshot } from '../api/metrics.js';

/** The figures the health page charts, at one instant (the page keeps the history and draws rates). */
export interface MetricsSummary {
  readonly at: number;
  readonly releases: number;
  readonly refusals: number;
  /** Refused guest requests by error code (a policy refusal counts once per failed check, as in /metrics). */
  readonly refusalsByCode: Readonly<Record<string, number>>;
  readonly refusalsByReason: Readonly<Record<string, number>>;
  /** Release decision latency, seconds, estimated from the histogram (null before the first release). */
  readonly latency: {
    readonly count: number;
    readonly p50: number | null;
    readonly p90: number | null;
    readonly p99: number | null;
  };
}

export function summarizeMetrics(s: MetricsSnapshot, at: number): MetricsSummary {
  const sum = (name: string) => (s.counters[name] ?? []).reduce((a, c) => a + c.value, 0);
  const byCode: Record<string, number> = {};
  const byReason: Record<string, number> = {};
  for (const c of s.counters.vouchsafe_refusals_total ?? []) {
    const code = c.labels.code ?? 'unknown';
    const reason = c.labels.reason ?? 'unknown';
    byCode[code] = (byCode[code] ?? 0) + c.value;
    byReason[reason] = (byReason[reason] ?? 0) + c.value;
  }
  const h = s.histograms.vouchsafe_release_duration_seconds;
  const counts = h ? h.buckets.map(() => 0) : [];
  let count = 0;
  for (const series of h?.series ?? []) {
    series.counts.forEach((n, i) => {
      counts[i] = (counts[i] ?? 0) + n;
    });
    count += series.count;
  }
  const q = (p: number) => (h ? quantile(p, h.buckets, counts, count) : null);
  return {
    at,
    releases: sum('vouchsafe_releases_total'),
    refusals: sum('vouchsafe_refusals_total'),
    refusalsByCode: byCode,
    refusalsByReason: byReason,
    latency: { count, p50: q(0.5), p90: q(0.9), p99: q(0.99) },
  };
}

/**
 * The `p` quantile of a histogram with upper bounds `bounds` and per-bucket (non-cumulative) `counts`,
 * interpolated linearly within the bucket it falls in, as Prometheus's histogram_quantile does; an
 * observation above the last bound is reported as that bound.
 */
export function quantile(
  p: number,
  bounds: readonly number[],
  counts: readonly number[],
  total: number,
): number | null {
  if (total <= 0) return null;
  const rank = p * total;
  let acc = 0;
  for (let i = 0; i < bounds.length; i++) {
    const n = counts[i] ?? 0;
    if (acc + n >= rank && n > 0) {
      const lo = i === 0 ? 0 : bounds[i - 1]!;
      return lo + (bounds[i]! - lo) * ((rank - acc) / n);
    }
    acc += n;
  }
  return bounds[bounds.length - 1] ?? null;
}
