import { COUNTERS, type CounterName, type Counters } from '../util/metrics.js';

/**
 * Prometheus counters (text exposition format 0.0.4), in memory, per broker process: the {@link Counters}
 * the broker's services are given (src/util/metrics.ts names them). Labels are stable codes and reasons
 * only (a bounded set), never instance ids, keys or evidence.
 */
export class Metrics implements Counters {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();

  constructor() {
    for (const [name, help] of Object.entries(COUNTERS)) this.define(name, help);
  }

  private define(name: string, help: string): void {
    this.counters.set(name, { help, values: new Map() });
  }

  /** Adds 1 to `name` with `labels`. */
  inc(name: CounterName, labels: Readonly<Record<string, string>> = {}): void {
    const c = this.counters.get(name);
    if (!c) throw new Error(`unknown metric ${name}`);
    const key = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    c.values.set(key, (c.values.get(key) ?? 0) + 1);
  }

  /** The current value (tests, and the dashboard). */
  value(name: CounterName, labels: Readonly<Record<string, string>> = {}): number {
    const key = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    return this.counters.get(name)?.values.get(key) ?? 0;
  }

  /** The exposition text. */
  render(): string {
    const out: string[] = [];
    for (const [name, c] of this.counters) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [labels, v] of [...c.values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        out.push(labels ? `${name}{${labels}} ${v}` : `${name} ${v}`);
      }
    }
    return `${out.join('\n')}\n`;
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
