import { createHash } from 'node:crypto';
import type { KekSource } from '../broker/kek.js';
import { InvalidArgument } from '../errors.js';
import type { KbsStateStore } from '../store/kbs-state-types.js';
import { decodeBase64 } from '../util/base64.js';
import { pooledRandomBytes } from '../util/random.js';
import type { SessionLookup, SessionStore } from './sessions.js';
import { type KbsServedTee, kbsTeeOf } from './tees.js';

/**
 * Where the RCAR routes keep sessions: in this process ({@link memorySessions}, over SessionStore: one
 * broker on its own) or in the store ({@link StoreSessions}: any replica on the same database serves any
 * step). Both answer the same way; the routes see only this interface.
 */
export interface KbsSessions {
  /** A new `authed` session for a client at `source`; InvalidArgument `kbs.sessions_full` when full. */
  create(
    source: string,
    nonce: string,
    challenge: Uint8Array,
    tee: KbsServedTee,
  ): Promise<{ id: string; expiresAt: number }>;
  get(id: string): Promise<SessionLookup>;
  /** `authed` -> `attested` holding `token`; false when the session is gone, expired or already attested. */
  attest(id: string, token: string): Promise<boolean>;
}

/** SessionStore (sessions.ts) as {@link KbsSessions}. */
export function memorySessions(s: SessionStore): KbsSessions {
  return {
    create: (source, nonce, challenge, tee) => Promise.resolve(s.create(source, nonce, challenge, tee)),
    get: (id) => Promise.resolve(s.get(id)),
    attest: (id, token) => Promise.resolve(s.attest(id, token)),
  };
}

const ID_PATTERN = /^[0-9a-f]{64}$/;
const TOKEN_AAD_LABEL = Buffer.from('vouchsafe kbs session token v1\0', 'ascii');
/** Purge sessions past their second lifetime every this many creations (per replica). */
const PURGE_EVERY = 256;

const digestOf = (id: string): Uint8Array =>
  new Uint8Array(createHash('sha256').update(id, 'ascii').digest());

/** The attested session's token is bound to its session: a row's token moved to another row fails. */
const tokenAad = (digest: Uint8Array): Uint8Array => new Uint8Array(Buffer.concat([TOKEN_AAD_LABEL, digest]));

export interface StoreSessionsOptions {
  readonly state: KbsStateStore;
  readonly kek: KekSource;
  readonly ttlMs: number;
  readonly maxSessions: number;
  readonly maxPendingPerSource: number;
  readonly now: () => number;
}

const positive = (v: unknown, name: string): number => {
  if (!Number.isSafeInteger(v) || (v as number) <= 0) {
    throw new InvalidArgument('kbs.config', `${name} must be a positive integer`);
  }
  return v as number;
};

/**
 * RCAR sessions in the store (kbs_sessions, migration 7), with SessionStore's rules (sessions.ts): named
 * by the SHA-256 of the cookie, answered as expired for one more lifetime then forgotten, the same
 * per-source and total limits (counted in the database, so across replicas). The attested session's
 * token is kept encrypted under the KEK. `attest` is one conditional UPDATE: of two replicas attesting one
 * session, exactly one moves it (and the broker's challenge, consumed by DELETE ... RETURNING, lets only
 * one of them release anyway).
 */
export class StoreSessions implements KbsSessions {
  private readonly o: StoreSessionsOptions;
  private readonly perSource: number;
  private creates = 0;

  /** Throws InvalidArgument `kbs.config` for a limit or lifetime that is not a positive integer. */
  constructor(o: StoreSessionsOptions) {
    positive(o.ttlMs, 'sessionTtlMs');
    positive(o.maxSessions, 'maxSessions');
    this.perSource = Math.min(positive(o.maxPendingPerSource, 'maxPendingSessionsPerSource'), o.maxSessions);
    this.o = o;
  }

  async create(
    source: string,
    nonce: string,
    _challenge: Uint8Array,
    tee: KbsServedTee,
  ): Promise<{ id: string; expiresAt: number }> {
    const now = this.o.now();
    if (++this.creates % PURGE_EVERY === 0) await this.o.state.purgeSessions(now - this.o.ttlMs);
    const id = pooledRandomBytes(32).toString('hex');
    const expiresAt = now + this.o.ttlMs;
    const r = await this.o.state.createSession(
      { idDigest: digestOf(id), source, tee, nonce, createdAt: now, expiresAt },
      { maxSessions: this.o.maxSessions, maxPendingPerSource: this.perSource, now },
    );
    if (r === 'full') throw new InvalidArgument('kbs.sessions_full', 'too many sessions');
    return { id, expiresAt };
  }

  async get(id: string): Promise<SessionLookup> {
    if (!ID_PATTERN.test(id)) return { status: 'unknown' };
    const digest = digestOf(id);
    const row = await this.o.state.getSession(digest);
    if (!row) return { status: 'unknown' };
    if (row.expiresAt <= this.o.now()) return { status: 'expired' };
    if (row.phase === 'authed') {
      return {
        status: 'ok',
        session: {
          phase: 'authed',
          // Written by a replica from kbsTeeOf; read back through it (a TEE since switched off is refused).
          tee: kbsTeeOf(row.tee),
          nonce: row.nonce,
          challenge: decodeBase64(row.nonce, 'kbs.nonce', 'nonce'),
          expiresAt: row.expiresAt,
        },
      };
    }
    if (!row.tokenWrapped || row.kekId !== this.o.kek.id) {
      throw new InvalidArgument('broker.kek.mismatch', 'the session token was wrapped by another KEK');
    }
    const plain = await this.o.kek.decrypt(row.tokenWrapped, tokenAad(digest));
    const token = Buffer.from(plain).toString('utf8');
    plain.fill(0);
    return { status: 'ok', session: { phase: 'attested', token, expiresAt: row.expiresAt } };
  }

  async attest(id: string, token: string): Promise<boolean> {
    if (!ID_PATTERN.test(id)) return false;
    const digest = digestOf(id);
    const plain = new Uint8Array(Buffer.from(token, 'utf8'));
    const wrapped = await this.o.kek.encrypt(plain, tokenAad(digest));
    plain.fill(0);
    return this.o.state.attestSession(digest, wrapped, this.o.kek.id, this.o.now());
  }
}
