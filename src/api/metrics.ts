import {
  COUNTERS,
  type CounterName,
  type Counters,
  HISTOGRAMS,
  type HistogramName,
} from '../util/metrics.js';

interface Histogram {
  readonly help: string;
  readonly buckets: readonly number[];
  /** Per label set: the count in each bucket (not cumulative; made cumulative when rendered), sum, count. */
  readonly values: Map<string, { counts: number[]; sum: number; count: number }>;
}

/**
 * Prometheus counters and histograms (text exposition format 0.0.4), in memory, per broker process: the
 * {@link Counters} the broker's services are given (src/util/metrics.ts names them). Labels are stable
 * codes and reasons only (a bounded set), never instance ids, keys or evidence.
 */
export class Metrics implements Counters {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly histograms = new Map<string, Histogram>();

  constructor() {
    for (const [name, help] of Object.entries(COUNTERS)) this.counters.set(name, { help, values: new Map() });
    for (const [name, h] of Object.entries(HISTOGRAMS)) {
      this.histograms.set(name, { help: h.help, buckets: h.buckets, values: new Map() });
    }
  }

  /** Adds 1 to `name` with `labels`. */
  inc(name: CounterName, labels: Readonly<Record<string, string>> = {}): void {
    const c = this.counters.get(name);
    if (!c) throw new Error(`unknown metric ${name}`);
    const key = labelText(labels);
    c.values.set(key, (c.values.get(key) ?? 0) + 1);
  }

  /** Records `value` in histogram `name` with `labels` (a negative or non-finite value is ignored). */
  observe(name: HistogramName, value: number, labels: Readonly<Record<string, string>> = {}): void {
    const h = this.histograms.get(name);
    if (!h) throw new Error(`unknown metric ${name}`);
    if (!Number.isFinite(value) || value < 0) return;
    const key = labelText(labels);
    let v = h.values.get(key);
    if (!v) {
      v = { counts: h.buckets.map(() => 0), sum: 0, count: 0 };
      h.values.set(key, v);
    }
    const i = h.buckets.findIndex((b) => value <= b);
    if (i >= 0) v.counts[i] = (v.counts[i] ?? 0) + 1;
    v.sum += value;
    v.count += 1;
  }

  /** The current value (tests, and the dashboard). */
  value(name: CounterName, labels: Readonly<Record<string, string>> = {}): number {
    return this.counters.get(name)?.values.get(labelText(labels)) ?? 0;
  }

  /**
   * Every counter and histogram as plain data (the dashboard's charts, src/web): counters per label set,
   * histograms with their bucket bounds and non-cumulative counts per label set.
   */
  snapshot(): MetricsSnapshot {
    const counters: MetricsSnapshot['counters'] = {};
    for (const [name, c] of this.counters) {
      counters[name] = [...c.values].map(([labels, value]) => ({ labels: parseLabels(labels), value }));
    }
    const histograms: MetricsSnapshot['histograms'] = {};
    for (const [name, h] of this.histograms) {
      histograms[name] = {
        buckets: [...h.buckets],
        series: [...h.values].map(([labels, v]) => ({
          labels: parseLabels(labels),
          counts: [...v.counts],
          sum: v.sum,
          count: v.count,
        })),
      };
    }
    return { counters, histograms };
  }

  /** The exposition text. */
  render(): string {
    const out: string[] = [];
    for (const [name, c] of this.counters) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [labels, v] of sorted(c.values)) out.push(sample(name, labels, v));
    }
    for (const [name, h] of this.histograms) {
      out.push(`# HELP ${name} ${h.help}`, `# TYPE ${name} histogram`);
      for (const [labels, v] of sorted(h.values)) {
        // Buckets are cumulative (each counts every observation <= its bound), ending with +Inf == _count.
        let acc = 0;
        h.buckets.forEach((b, i) => {
          acc += v.counts[i] ?? 0;
          out.push(sample(`${name}_bucket`, withLe(labels, String(b)), acc));
        });
        out.push(sample(`${name}_bucket`, withLe(labels, '+Inf'), v.count));
        out.push(sample(`${name}_sum`, labels, v.sum), sample(`${name}_count`, labels, v.count));
      }
    }
    return `${out.join('\n')}\n`;
  }
}

/** Plain data of every metric (Metrics.snapshot). */
export interface MetricsSnapshot {
  counters: Record<string, { labels: Record<string, string>; value: number }[]>;
  histograms: Record<
    string,
    {
      buckets: number[];
      series: { labels: Record<string, string>; counts: number[]; sum: number; count: number }[];
    }
  >;
}

/** The inverse of labelText for the values it writes (escaped quotes, backslashes and newlines). */
function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
    out[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return out;
}

function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');
}

function withLe(labels: string, le: string): string {
  return labels ? `${labels},le="${le}"` : `le="${le}"`;
}

function sample(name: string, labels: string, v: number): string {
  return labels ? `${name}{${labels}} ${v}` : `${name} ${v}`;
}

function sorted<V>(m: Map<string, V>): [string, V][] {
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
