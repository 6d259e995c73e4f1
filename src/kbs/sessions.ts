import { createHash, randomBytes } from 'node:crypto';
import { InvalidArgument } from '../errors.js';
import type { KbsServedTee } from './tees.js';

/**
 * RCAR sessions (Trustee kbs/src/attestation/session.rs): `/auth` creates one in state `authed` holding
 * the challenge; a successful `/attest` moves it to `attested` holding the token. Sessions are named by the
 * `kbs-session-id` cookie, 32 random bytes as lower-case hex, and held in memory under the SHA-256 of the
 * id (so a lookup compares digests, not the secret id). Expired sessions are answered as expired for one
 * more lifetime, then forgotten. In memory, for a KBS on its own (the routes wired by hand); startBroker keeps
 * sessions in the store instead, by the same rules (store-sessions.ts), so that any replica serves any step.
 *
 * Bounded per source and in total, so that a flood of `/auth` calls from one place cannot evict the pending
 * session of a client elsewhere: each source (client address, see client-source.ts) holds at most
 * `maxPendingPerSource` pending (`authed`) sessions, and a source at its limit gives up its own oldest one.
 * When the whole store is full, sessions already expired go first (kept only to answer "expired" rather than
 * "unknown"), then the oldest pending session of the source holding the most pending sessions (the caller's
 * own on a tie). Live attested sessions are never evicted: they are what a genuine report earned, and an
 * attacker cannot make them in bulk. So the store holds `maxSessions` live sessions: a fleet restarting at
 * once gets that many attested sessions at any rate, then `maxSessions` per session lifetime.
 */

export type SessionState =
  | {
      readonly phase: 'authed';
      /** The TEE /auth named: its evidence is what /attest decodes. */
      readonly tee: KbsServedTee;
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

interface Entry {
  state: SessionState;
  readonly source: string;
}

/** One source's sessions, oldest first (a Set iterates in insertion order), and how many are pending. */
interface SourceSessions {
  readonly keys: Set<string>;
  pending: number;
}

export interface SessionStoreOptions {
  readonly ttlMs: number;
  /** Sessions held at once, all sources together. */
  readonly maxSessions: number;
  /** Pending (`authed`) sessions one source may hold (default 256, at most maxSessions). */
  readonly maxPendingPerSource?: number;
  readonly now: () => number;
}

const positive = (v: unknown, name: string): number => {
  if (!Number.isSafeInteger(v) || (v as number) <= 0) {
    throw new InvalidArgument('kbs.config', `${name} must be a positive integer`);
  }
  return v as number;
};

export class SessionStore {
  private readonly sessions = new Map<string, Entry>();
  private readonly bySource = new Map<string, SourceSessions>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly perSource: number;
  private readonly now: () => number;
  private writes = 0;

  /** Throws InvalidArgument `kbs.config` for a limit or lifetime that is not a positive integer. */
  constructor(opts: SessionStoreOptions) {
    this.ttlMs = positive(opts.ttlMs, 'sessionTtlMs');
    this.max = positive(opts.maxSessions, 'maxSessions');
    this.perSource = Math.min(
      positive(opts.maxPendingPerSource ?? 256, 'maxPendingSessionsPerSource'),
      this.max,
    );
    this.now = opts.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Pending sessions `source` holds now. */
  pendingOf(source: string): number {
    return this.bySource.get(source)?.pending ?? 0;
  }

  /**
   * Creates an `authed` session for a client at `source`; returns its id and expiry. A source at
   * `maxPendingPerSource` loses its own oldest pending session; a full store loses the oldest pending
   * session of the source with the most (see the class comment). Throws InvalidArgument `kbs.sessions_full`
   * only when every session held is attested. `tee` is the TEE /auth named (kbs_types `Request.tee`):
   * /attest decodes that TEE's evidence, as Trustee's session keeps it.
   */
  create(
    source: string,
    nonce: string,
    challenge: Uint8Array,
    tee: KbsServedTee = 'snp',
  ): { id: string; expiresAt: number } {
    if (++this.writes % 256 === 0) this.sweep();
    if (this.sessions.size >= this.max) this.forgetExpiredBy(this.now());
    const own = this.bySource.get(source);
    if (own && own.pending >= this.perSource) this.evictOldestPending(own);
    if (this.sessions.size >= this.max) {
      const heaviest = this.heaviestSource(own);
      if (heaviest) this.evictOldestPending(heaviest);
    }
    if (this.sessions.size >= this.max) throw new InvalidArgument('kbs.sessions_full', 'too many sessions');
    const id = randomBytes(32).toString('hex');
    const expiresAt = this.now() + this.ttlMs;
    const k = keyOf(id);
    this.sessions.set(k, { state: { phase: 'authed', tee, nonce, challenge, expiresAt }, source });
    const mine = own ?? { keys: new Set<string>(), pending: 0 };
    if (!own) this.bySource.set(source, mine);
    mine.keys.add(k);
    mine.pending++;
    return { id, expiresAt };
  }

  get(id: string): SessionLookup {
    if (!ID_PATTERN.test(id)) return { status: 'unknown' };
    const e = this.sessions.get(keyOf(id));
    if (!e) return { status: 'unknown' };
    if (e.state.expiresAt <= this.now()) return { status: 'expired' };
    return { status: 'ok', session: e.state };
  }

  /** Marks a session attested, keeping its expiry; false if it is gone or no longer `authed`. */
  attest(id: string, token: string): boolean {
    const e = this.sessions.get(keyOf(id));
    if (e?.state.phase !== 'authed') return false;
    e.state = { phase: 'attested', token, expiresAt: e.state.expiresAt };
    const src = this.bySource.get(e.source);
    if (src) src.pending--;
    return true;
  }

  /** Forgets sessions that expired more than one lifetime ago. */
  sweep(): void {
    this.forgetExpiredBy(this.now() - this.ttlMs);
  }

  private forgetExpiredBy(cutoff: number): void {
    for (const [k, e] of this.sessions) if (e.state.expiresAt <= cutoff) this.remove(k, e);
  }

  /** The source with the most pending sessions; `own` wins a tie. Undefined when none is pending. */
  private heaviestSource(own: SourceSessions | undefined): SourceSessions | undefined {
    let best = own && own.pending > 0 ? own : undefined;
    for (const src of this.bySource.values()) if (src.pending > (best?.pending ?? 0)) best = src;
    return best;
  }

  private evictOldestPending(src: SourceSessions): void {
    for (const k of src.keys) {
      const e = this.sessions.get(k);
      if (e?.state.phase === 'authed') {
        this.remove(k, e);
        return;
      }
    }
  }

  private remove(k: string, e: Entry): void {
    this.sessions.delete(k);
    const src = this.bySource.get(e.source);
    if (!src) return;
    src.keys.delete(k);
    if (e.state.phase === 'authed') src.pending--;
    if (src.keys.size === 0) this.bySource.delete(e.source);
  }
}
