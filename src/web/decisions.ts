import type { AuditEntry } from '../store/types.js';

/** One failed check of a refusal as the dashboard shows it. */
export interface FailedCheck {
  readonly code: string;
  /** What the policy or the stored state expected, when the broker recorded it (audit detail `failure.<code>`). */
  readonly expected: string | null;
  readonly actual: string | null;
}

/** An audit entry for the browser: the entry itself, its instance's name and project, refusals' checks split out. */
export interface DecisionView {
  readonly seq: number;
  readonly time: number;
  readonly kind: string;
  readonly decision: 'accept' | 'refuse';
  readonly instance: string | null;
  readonly project: string | null;
  readonly instanceName: string | null;
  readonly reasons: readonly string[];
  /** Refusals: every failed check, with its expected and actual values where the broker recorded them. */
  readonly failures: readonly FailedCheck[];
  /** The other details (boot id, key version, counters). */
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
  readonly evidenceDigest: string | null;
  readonly prevHash: string;
  readonly hash: string;
}

export interface InstanceNames {
  readonly project: string;
  readonly instanceName: string;
}

/**
 * The broker writes a policy refusal's values as `failure.<code>` = `expected E; actual A`, joined by ` | `
 * when one code failed more than once (src/broker/broker.ts refusalDetails). Each reason becomes one
 * check; a reason without recorded values has nulls.
 */
export function decisionView(e: AuditEntry, names: ReadonlyMap<string, InstanceNames>): DecisionView {
  const details: Record<string, string | number | boolean | null> = {};
  const values = new Map<string, string>();
  for (const [k, v] of Object.entries(e.details)) {
    if (k.startsWith('failure.') && typeof v === 'string') values.set(k.slice('failure.'.length), v);
    else details[k] = v;
  }
  const failures: FailedCheck[] = [];
  if (e.decision === 'refuse') {
    const seen = new Set<string>();
    for (const code of e.reasons) {
      if (seen.has(code)) continue;
      seen.add(code);
      const text = values.get(code);
      if (text === undefined) {
        failures.push({ code, expected: null, actual: null });
        continue;
      }
      for (const one of text.split(' | ')) failures.push({ code, ...splitValues(one) });
    }
  }
  const n = e.instance ? names.get(e.instance) : undefined;
  return {
    seq: e.seq,
    time: e.time,
    kind: e.kind,
    decision: e.decision,
    instance: e.instance,
    project: n?.project ?? null,
    instanceName: n?.instanceName ?? null,
    reasons: [...e.reasons],
    failures,
    details,
    evidenceDigest: e.evidenceDigest,
    prevHash: e.prevHash,
    hash: e.hash,
  };
}

function splitValues(text: string): { expected: string | null; actual: string | null } {
  const m = /^expected (.*); actual (.*)$/s.exec(text);
  if (!m) return { expected: null, actual: text };
  return { expected: m[1] === '-' ? null : m[1]!, actual: m[2] === '-' ? null : m[2]! };
}

/** What the live feed carries: releases (granted or refused) and every other refusal. */
export function isFeedEntry(e: AuditEntry): boolean {
  return e.kind === 'release' || e.decision === 'refuse';
}
