import { createHash, randomBytes } from 'node:crypto';
import { ctEqual } from '../util/bytes.js';
import type { Principal } from './principal.js';

/** A signed-in browser: who it acts as and its CSRF token. */
export interface Session {
  readonly principal: Principal;
  /** Sent back by the page in `x-csrf-token` on every state-changing request (compared in constant time). */
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
}

export interface SessionLimits {
  /** A session unused this long ends (default 30 min). */
  readonly idleMs: number;
  /** A session ends this long after sign-in whatever its use (default 12 h). */
  readonly maxAgeMs: number;
  /** Sessions held at once; the oldest is ended past it (default 1 000). */
  readonly maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  idleMs: 30 * 60_000,
  maxAgeMs: 12 * 3_600_000,
  maxSessions: 1000,
};

/**
 * Dashboard sessions, in the broker's memory: the cookie carries 32 random bytes, the map is keyed by their
 * SHA-256 (a copy of the map, or a timing side channel on its look-up, gives no usable cookie). A broker
 * restart signs every browser out, which is the safe direction; nothing about sessions is written to the
 * store, so no migration is needed.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
  ) {}

  /** Starts a session; returns the cookie value (never stored) and the session. */
  create(principal: Principal): { id: string; session: Session } {
    this.sweep();
    while (this.sessions.size >= this.limits.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    const session: Session = {
      principal,
      csrf: randomBytes(32).toString('base64url'),
      createdAt: t,
      lastSeen: t,
    };
    this.sessions.set(key(id), session);
    return { id, session };
  }

  /** The live session of a cookie value, refreshing its idle timer; undefined when unknown or expired. */
  get(id: string | undefined): Session | undefined {
    if (!id || id.length > 64) return undefined;
    const k = key(id);
    const s = this.sessions.get(k);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeen > this.limits.idleMs || t - s.createdAt > this.limits.maxAgeMs) {
      this.sessions.delete(k);
      return undefined;
    }
    s.lastSeen = t;
    return s;
  }

  /** Whether `s` is still a live session (not ended, not expired), without counting this as use. */
  isLive(s: Session): boolean {
    const t = this.now();
    if (t - s.lastSeen > this.limits.idleMs || t - s.createdAt > this.limits.maxAgeMs) return false;
    for (const held of this.sessions.values()) if (held === s) return true;
    return false;
  }

  end(id: string | undefined): void {
    if (id) this.sessions.delete(key(id));
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, s] of this.sessions) {
      if (t - s.lastSeen > this.limits.idleMs || t - s.createdAt > this.limits.maxAgeMs)
        this.sessions.delete(k);
    }
  }
}

/** Whether the page's CSRF header matches its session's token (constant time). */
export function csrfMatches(session: Session, header: unknown): boolean {
  if (typeof header !== 'string') return false;
  return ctEqual(Buffer.from(header, 'utf8'), Buffer.from(session.csrf, 'utf8'));
}

function key(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}
