/**
 * Prometheus counters (text exposition format 0.0.4), in memory, per broker process. Labels are stable
 * codes and reasons only (a bounded set), never instance ids, keys or evidence.
 */
export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();

  constructor() {
    this.define('vouchsafe_challenges_total', 'Challenges issued, by protocol version.');
    this.define('vouchsafe_releases_total', 'Sealing keys released, by protocol version.');
    this.define(
      'vouchsafe_refusals_total',
      'Refused guest requests, by operation, error code and reason (a policy refusal counts once per failed check).',
    );
    this.define('vouchsafe_commits_total', 'State counters committed.');
    this.define('vouchsafe_admin_requests_total', 'Admin API requests, by outcome.');
  }

  private define(name: string, help: string): void {
    this.counters.set(name, { help, values: new Map() });
  }

  /** Adds 1 to `name` with `labels`. */
  inc(name: string, labels: Readonly<Record<string, string>> = {}): void {
    const c = this.counters.get(name);
    if (!c) throw new Error(`unknown metric ${name}`);
    const key = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    c.values.set(key, (c.values.get(key) ?? 0) + 1);
  }

  /** The current value (tests, and the dashboard). */
  value(name: string, labels: Readonly<Record<string, string>> = {}): number {
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
