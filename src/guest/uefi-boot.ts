import { AttestationError } from '../errors.js';
import type { PvClient } from '../pvchannel/client.js';
import { type BootGuestOptions, type BootResult, bootGuest, pendingPathOf } from './boot.js';
import { instanceBindingOf, readStateFile } from './state-file.js';
import { sha256 } from './uefi-seal.js';
import { indexCandidates, type Rewrapped, rewrapIndex, SealedUefiStore } from './uefi-vars.js';

type RewrapKeys = Parameters<NonNullable<NonNullable<BootGuestOptions['uefiRoot']>['rewrap']>>[0];

/** A boot with its sealed UEFI variable store open. */
export interface UefiBoot {
  /** The first boot result (state, identity, counter). */
  readonly boot: BootResult;
  readonly store: SealedUefiStore;
  /**
   * The newest boot result: every SetVariable commits through a re-attestation of the same launch, which
   * hands out a fresh commit token and lease; heartbeat and end with `latest().session`.
   */
  latest(): BootResult;
}

/**
 * bootGuest (0.2.0) for a guest that keeps sealed UEFI variables on the host over the pvchannel
 * (docs/pvchannel.md §7.3). The store root to state is not known before the broker answers: the boot states
 * the newest index slot's root first and, on `broker.rollback` (that slot was written but never committed,
 * or is older than the commitment), the other slot's, then none (a store never committed). The broker is the
 * judge: whichever root it accepts is the committed one, and the store opens exactly that index. Every later
 * SetVariable commits its new root with the next state version (a re-attestation of the same launch). After
 * a sealing-key rotation the boot (or the SetVariable's commit) rewraps the index under the new key in the
 * same commit as the state (rewrapIndex).
 *
 * Throws what bootGuest throws; `broker.rollback` when no candidate is the committed root (the host rolled
 * the store back, or withholds it); SealedUefiStore.open's errors.
 */
export async function bootWithUefiVariables(opts: BootGuestOptions, client: PvClient): Promise<UefiBoot> {
  // No state file: nothing was ever committed, so no store either (whatever the host holds is stale).
  const hasState =
    (await readStateFile(opts.statePath)) !== undefined ||
    (await readStateFile(pendingPathOf(opts.statePath))) !== undefined;
  const found = hasState ? (await indexCandidates(client)).map(sha256) : [];
  const candidates: (Uint8Array | null)[] = [...found, null];
  let boot: BootResult | undefined;
  let root: Uint8Array | null = null;
  let lastError: unknown;
  for (const c of candidates) {
    let rewrapped: Rewrapped | null = null;
    const rewrap = async (k: RewrapKeys) => {
      rewrapped = await rewrapIndex(client, c, k, instanceBindingOf(k.identity));
      return rewrapped?.root ?? null;
    };
    try {
      boot = await bootGuest({ ...opts, uefiRoot: { stated: c, next: c, rewrap } });
      root = (rewrapped as Rewrapped | null)?.root ?? c;
      break;
    } catch (e) {
      if (!(e instanceof AttestationError && e.reason === 'broker.rollback')) throw e;
      lastError = e;
    }
  }
  if (boot === undefined) throw lastError;
  const committedRoot = root;
  let latest = boot;
  const key = boot.variableKey!;
  try {
    const store = await SealedUefiStore.open({
      client,
      key,
      instanceBinding: instanceBindingOf(boot.identity),
      committedRoot,
      commit: async (next, previous) => {
        let rewrapped: Rewrapped | null = null;
        const rewrap = async (k: RewrapKeys) => {
          // `next` is not committed yet and the other slot holds the committed index: rewrap in place.
          rewrapped = await rewrapIndex(client, next, k, instanceBindingOf(k.identity), true);
          return rewrapped?.root ?? null;
        };
        const r = await bootGuest({ ...opts, uefiRoot: { stated: previous, next, rewrap } });
        r.variableKey?.fill(0);
        latest = r;
        return rewrapped;
      },
    });
    return { boot, store, latest: () => latest };
  } finally {
    key.fill(0);
  }
}
