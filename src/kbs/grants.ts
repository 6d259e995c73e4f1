import type { KekSource } from '../broker/kek.js';
import { InvalidArgument } from '../errors.js';
import type { KbsStateStore } from '../store/kbs-state-types.js';

/**
 * Where the KBS holds a released sealing key between `/attest` and `/resource` (the token's `jti` names
 * it): in this process ({@link MemoryGrants}) or in the store ({@link StoreGrants}, encrypted under the
 * KEK), so that a token issued by one broker replica reads its key from any other.
 */
export interface KbsGrants {
  /** Holds a copy of `key` for `instanceId` until `expiresAt`; the caller zeroes its own. */
  put(grant: string, instanceId: string, key: Uint8Array, expiresAt: number): Promise<void>;
  /** A fresh copy of the held key (the caller zeroes it), expired or not, or undefined. */
  get(grant: string): Promise<{ key: Uint8Array; instanceId: string; expiresAt: number } | undefined>;
  /** Keys held in this process's memory. */
  held(): number;
  /** Zeroes and forgets what this process holds. */
  close(): void;
}

interface Held {
  readonly key: Uint8Array;
  readonly instanceId: string;
  readonly expiresAt: number;
}

/** In memory, at most `max` (the oldest goes, zeroed); expired ones are zeroed at the next put. */
export class MemoryGrants implements KbsGrants {
  private readonly grants = new Map<string, Held>();

  constructor(
    private readonly max: number,
    private readonly now: () => number,
  ) {}

  put(grant: string, instanceId: string, key: Uint8Array, expiresAt: number): Promise<void> {
    const t = this.now();
    for (const [id, g] of this.grants) {
      if (g.expiresAt <= t) this.drop(id, g);
    }
    while (this.grants.size >= this.max) {
      const [id, g] = this.grants.entries().next().value as [string, Held];
      this.drop(id, g);
    }
    this.grants.set(grant, { key: Uint8Array.from(key), instanceId, expiresAt });
    return Promise.resolve();
  }

  get(grant: string) {
    const g = this.grants.get(grant);
    return Promise.resolve(
      g && { key: Uint8Array.from(g.key), instanceId: g.instanceId, expiresAt: g.expiresAt },
    );
  }

  held(): number {
    return this.grants.size;
  }

  close(): void {
    for (const g of this.grants.values()) g.key.fill(0);
    this.grants.clear();
  }

  private drop(id: string, g: Held): void {
    g.key.fill(0);
    this.grants.delete(id);
  }
}

const AAD_LABEL = Buffer.from('vouchsafe kbs grant v1\0', 'ascii');
/** Purge expired grants every this many puts (per replica). */
const PURGE_EVERY = 256;

/**
 * The AAD binding a held key to its grant and instance: label || u32be(len) || grant || u32be(len) ||
 * instance id (UTF-8), so a ciphertext moved to another grant row, or relabelled with another instance,
 * does not decrypt.
 */
export function grantAad(grant: string, instanceId: string): Uint8Array {
  const g = Buffer.from(grant, 'utf8');
  const i = Buffer.from(instanceId, 'utf8');
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return new Uint8Array(Buffer.concat([AAD_LABEL, len(g.length), g, len(i.length), i]));
}

/**
 * In the store (kbs_grants, migration 7): AES-256-GCM under the KEK, never plaintext in the database.
 * Several reads of one grant are allowed until it expires (Trustee clients may fetch the resource again
 * with the same token); a row expired `expiresAt` ago is purged.
 */
export class StoreGrants implements KbsGrants {
  private puts = 0;

  constructor(
    private readonly state: KbsStateStore,
    private readonly kek: KekSource,
    private readonly now: () => number,
  ) {}

  async put(grant: string, instanceId: string, key: Uint8Array, expiresAt: number): Promise<void> {
    if (++this.puts % PURGE_EVERY === 0) await this.state.purgeGrants(this.now());
    const wrapped = await this.kek.encrypt(key, grantAad(grant, instanceId));
    await this.state.insertGrant({ grantId: grant, instanceId, wrapped, kekId: this.kek.id, expiresAt });
  }

  async get(grant: string) {
    const row = await this.state.getGrant(grant);
    if (!row) return undefined;
    if (row.kekId !== this.kek.id) {
      throw new InvalidArgument('broker.kek.mismatch', 'the held key was wrapped by another KEK');
    }
    const key = await this.kek.decrypt(row.wrapped, grantAad(row.grantId, row.instanceId));
    return { key, instanceId: row.instanceId, expiresAt: row.expiresAt };
  }

  held(): number {
    return 0;
  }

  close(): void {}
}
