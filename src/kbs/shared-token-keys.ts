import { existsSync } from 'node:fs';
import type { KekSource } from '../broker/kek.js';
import { InvalidArgument, Unavailable } from '../errors.js';
import type { KbsStateStore, KbsTokenKeysRow } from '../store/kbs-state-types.js';
import {
  decodeTokenKeys,
  encodeTokenKeys,
  openTokenKeyFile,
  type TokenKeyFileOptions,
} from './token-keys.js';
import { type TokenAlg, type TokenKey, TokenKeyRing } from './tokens/index.js';

/**
 * The EAR token signing keys in the store (migration 7), shared by every broker replica on one database:
 * the ring (token-keys.ts's encoding: every published key with its history) encrypted under the KEK
 * (AES-256-GCM, AAD {@link TOKEN_KEYS_AAD}) in one row with a generation number.
 *
 * - First start: the replica that finds no row writes generation 1: the keys of a token key file when one
 *   is there (a broker that kept them in `<data>/token-keys.json` before, imported once; the file is not
 *   read again), else one fresh key. Two replicas starting at once both try; the database keeps one
 *   (INSERT ... ON CONFLICT DO NOTHING) and the other reads it back.
 * - Rotation: the new ring is written as generation g+1 only over generation g (a conditional UPDATE),
 *   before the replica signs with it; a replica that lost the race reads the winner's ring and rotates
 *   that, so two rotations at once are two rotations, never a lost key.
 * - Other replicas see a rotation at their next {@link SharedTokenKeys.sync}, which the KBS routes call
 *   before issuing a token, before serving the JWKS and when a token names a key they do not hold.
 */
export const TOKEN_KEYS_AAD = new Uint8Array(Buffer.from('vouchsafe kbs token keys v1\0', 'ascii'));

/** Conflicting rotations retried before giving up (each retry means another replica rotated meanwhile). */
const ROTATE_ATTEMPTS = 8;

export interface SharedTokenKeys {
  /** The ring tokens are signed and verified with (replaced in place by sync and rotate). */
  readonly ring: TokenKeyRing;
  /** The generation this replica holds. */
  readonly generation: number;
  /** Reads the stored ring and takes it when another replica has moved it on. */
  sync(): Promise<void>;
  /** A new signing key, stored before it signs; the old one stays published until its tokens expire. */
  rotate(alg?: TokenAlg): Promise<TokenKey>;
}

export interface OpenSharedTokenKeysInput {
  readonly state: KbsStateStore;
  readonly kek: KekSource;
  readonly options: TokenKeyFileOptions;
  /** A token key file to import when the store holds no keys yet (ignored once it does). */
  readonly importFrom?: string;
}

/**
 * Opens (on first use: creates or imports) the shared ring. Throws InvalidArgument `broker.kek.mismatch`
 * / `broker.kek.unwrap_failed` when the stored ring was written under another KEK (replicas must share
 * one), `kbs.token_keys.*` for an unusable import file or stored ring.
 */
export async function openSharedTokenKeys(i: OpenSharedTokenKeysInput): Promise<SharedTokenKeys> {
  const decode = async (row: KbsTokenKeysRow): Promise<TokenKeyRing> => {
    if (row.kekId !== i.kek.id) {
      throw new InvalidArgument(
        'broker.kek.mismatch',
        `the stored token keys were wrapped by KEK ${row.kekId}, not the configured ${i.kek.id}`,
      );
    }
    const plain = await i.kek.decrypt(row.wrapped, TOKEN_KEYS_AAD);
    try {
      return decodeTokenKeys(plain, 'the store', i.options);
    } finally {
      plain.fill(0);
    }
  };
  const wrap = async (ring: TokenKeyRing): Promise<Uint8Array> => {
    const plain = encodeTokenKeys(ring);
    try {
      return await i.kek.encrypt(plain, TOKEN_KEYS_AAD);
    } finally {
      plain.fill(0);
    }
  };

  const clock = i.options.now ?? Date.now;
  let row = await i.state.readTokenKeys();
  if (!row) {
    const first =
      i.importFrom !== undefined && existsSync(i.importFrom)
        ? await openTokenKeyFile(i.importFrom, i.options)
        : await TokenKeyRing.generate({ ...i.options, alg: i.options.alg ?? 'ES256' });
    const written = { generation: 1, wrapped: await wrap(first), kekId: i.kek.id };
    // False: another replica wrote the first ring meanwhile; theirs is the one.
    row = (await i.state.writeTokenKeys(written, clock())) ? written : await i.state.readTokenKeys();
    if (!row) throw new Error('token keys: written, yet not found in the store');
  }
  const ring = await decode(row);
  let generation = row.generation;
  let syncing: Promise<void> | undefined;

  const syncOnce = async (): Promise<void> => {
    const now = await i.state.readTokenKeys();
    if (now && now.generation !== generation) {
      ring.adopt(await decode(now));
      generation = now.generation;
    }
  };

  return {
    ring,
    get generation() {
      return generation;
    },
    sync() {
      // Concurrent requests share one read.
      syncing ??= syncOnce().finally(() => {
        syncing = undefined;
      });
      return syncing;
    },
    async rotate(alg) {
      for (let attempt = 0; attempt < ROTATE_ATTEMPTS; attempt++) {
        await syncOnce();
        const next = await ring.rotated(alg);
        const row = { generation: generation + 1, wrapped: await wrap(next), kekId: i.kek.id };
        if (await i.state.writeTokenKeys(row, clock())) {
          ring.adopt(next);
          generation = row.generation;
          return ring.current;
        }
      }
      throw new Unavailable(
        'kbs.token_keys.contended',
        `the token keys changed under ${ROTATE_ATTEMPTS} rotations in a row; try again`,
      );
    },
  };
}
