import type { KeyObject } from 'node:crypto';
import type { EcPublicKey } from '../formats/aproxy/types.js';
import { generateP521KeyPair, p521PointOf } from './p521.js';

/** A P-521 key pair for one JWE (RFC 7518 §4.6: a fresh ephemeral key per message), its point precomputed. */
export interface EphemeralKey {
  readonly privateKey: KeyObject;
  readonly point: EcPublicKey;
}

/** Fills at most this many keys at once, so a refill never floods libuv's thread pool (shared with fsync). */
const MAX_FILLING = 2;

/**
 * Ephemeral P-521 keys made ahead of need, so that a release does not wait for a key generation (~1.2 ms
 * on the thread pool, longer queued behind the store's WAL flushes) nor export the point on its path.
 * Each key is handed out once and dropped from the pool when taken; an empty pool generates one on the
 * spot. The work per release is the same: this moves it off the release's latency, into idle time.
 */
export class EphemeralKeyPool {
  private readonly ready: EphemeralKey[] = [];
  private filling = 0;

  /** `size`: keys kept ready (default 16). */
  constructor(private readonly size = 16) {}

  /** A key never handed out before. */
  async take(): Promise<EphemeralKey> {
    const k = this.ready.shift();
    this.refill();
    return k ?? makeEphemeral();
  }

  private refill(): void {
    while (this.filling < MAX_FILLING && this.ready.length + this.filling < this.size) {
      this.filling++;
      makeEphemeral().then(
        (k) => {
          this.filling--;
          this.ready.push(k);
          this.refill();
        },
        () => {
          // A failed generation is not retried here: take() generates on the spot when the pool is empty.
          this.filling--;
        },
      );
    }
  }
}

async function makeEphemeral(): Promise<EphemeralKey> {
  const kp = await generateP521KeyPair();
  return { privateKey: kp.privateKey, point: p521PointOf(kp.publicKey) };
}
