import { createHash, randomBytes } from 'node:crypto';
import { InvalidArgument } from '../errors.js';

/**
 * RCAR sessions (Trustee kbs/src/attestation/session.rs): `/auth` creates one in state `authed` holding
 * the challenge; a successful `/attest` moves it to `attested` holding the token. Sessions are named by the
 * `kbs-session-id` cookie, 32 random bytes as lower-case hex, and held in memory under the SHA-256 of the
 * id (so a lookup compares digests, not the secret id). Expired sessions are answered as expired for one
 * more lifetime, then forgotten. In memory only: a session lives on the replica that created it (the
 * token, not the cookie, is what works across replicas).
 */

export type SessionState =
  | {
      readonly phase: 'authed';
      readonly nonce: string;
      readonly challenge: Uint8Array;
      readonly expiresAt: number;
    }
  | { readonly phase: 'attested'; readonly token: string; readonly expiresAt: number };

export type SessionLookup =
  | { readonly status: 'ok'; readonly session: SessionState }
  | { readonly status: 'expired' }
  | { readonly status: 'unknown' };

const ID_PATTERN = /^[0-9a-f]{64}$/;

const keyOf = (id: string): string => createHash('sha256').update(id, 'ascii').digest('hex');

export class SessionStore {
  private readonly sessions = new Map<string, SessionState>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;
  private writes = 0;

  constructor(opts: { ttlMs: number; maxSessions: number; now: () => number }) {
    if (!Number.isSafeInteger(opts.ttlMs) || opts.ttlMs <= 0) {
      throw new InvalidArgument('kbs.config', 'sessionTtlMs must be a positive integer');
    }
    if (!Number.isSafeInteger(opts.maxSessions) || opts.maxSessions <= 0) {
      throw new InvalidArgument('kbs.config', 'maxSessions must be a positive integer');
    }
    this.ttlMs = opts.ttlMs;
    this.max = opts.maxSessions;
    this.now = opts.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Creates an `authed` session; returns its id and expiry. When the store is full (after forgetting
   * long-expired sessions) the oldest `authed` session is evicted, so a flood of /auth calls cannot lock
   * out attested sessions; only when every session is attested does it throw InvalidArgument
   * `kbs.sessions_full`.
   */
  create(nonce: string, challenge: Uint8Array): { id: string; expiresAt: number } {
    if (++this.writes % 256 === 0 || this.sessions.size >= this.max) this.sweep();
    if (this.sessions.size >= this.max) this.evictOldestAuthed();
    if (this.sessions.size >= this.max) throw new InvalidArgument('kbs.sessions_full', 'too many sessions');
    const id = randomBytes(32).toString('hex');
    const expiresAt = this.now() + this.ttlMs;
    this.sessions.set(keyOf(id), { phase: 'authed', nonce, challenge, expiresAt });
    return { id, expiresAt };
  }

  get(id: string): SessionLookup {
    if (!ID_PATTERN.test(id)) return { status: 'unknown' };
    const s = this.sessions.get(keyOf(id));
    if (!s) return { status: 'unknown' };
    if (s.expiresAt <= this.now()) return { status: 'expired' };
    return { status: 'ok', session: s };
  }

  /** Marks a session attested, keeping its expiry; false if it is gone or no longer `authed`. */
  attest(id: string, token: string): boolean {
    const k = keyOf(id);
    const s = this.sessions.get(k);
    if (s?.phase !== 'authed') return false;
    this.sessions.set(k, { phase: 'attested', token, expiresAt: s.expiresAt });
    return true;
  }

  private evictOldestAuthed(): void {
    // Map iteration is insertion order: the first authed entry is the oldest.
    for (const [k, s] of this.sessions) {
      if (s.phase === 'authed') {
        this.sessions.delete(k);
        return;
      }
    }
  }

  /** Forgets sessions that expired more than one lifetime ago. */
  sweep(): void {
    const cutoff = this.now() - this.ttlMs;
    for (const [k, s] of this.sessions) if (s.expiresAt <= cutoff) this.sessions.delete(k);
  }
}
