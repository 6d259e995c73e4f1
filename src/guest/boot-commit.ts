import type { KeyObject } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { SignatureInvalid } from '../errors.js';
import { encodeCommitRequest, parseCommitResponse } from '../formats/aproxy/commit.js';
import type { SecretPayload } from '../formats/aproxy/secret-payload.js';
import { verifyCommit } from '../native/broker-signature.js';
import { throwIfError } from './boot-exchange.js';
import { commitmentDigest, type NextState, stateDigestOf } from './boot-state.js';
import type { AproxyChannel, ChannelOpener } from './channel.js';
import { GuestSession } from './session.js';
import { writeStateFileAtomic } from './state-file.js';

/** The pending slot of a state file: the next version, written before the commit, renamed after it. */
export function pendingPathOf(statePath: string): string {
  return `${statePath}.next`;
}

/** Where and how a boot commits (0.2.0). */
export interface CommitTarget {
  readonly ch: AproxyChannel;
  /** For the session's later connections. */
  readonly connect: string | ChannelOpener;
  readonly statePath: string;
  /** This boot opened the pending slot (the broker accepted it, so it is committed). */
  readonly fromPending: boolean;
  readonly challenge: Uint8Array;
  readonly brokerKey: KeyObject | undefined;
  readonly timeoutMs: number;
  /** The UEFI variable store root to commit with this version (docs/pvchannel.md §7.3); absent: none. */
  readonly uefiRoot?: Uint8Array | null;
}

/**
 * Phase 6 (0.2.0; docs/broker.md "Guest obligations"): writes the next version to the pending slot, commits
 * it, checks the pinned broker's commit signature, and only then renames it over the state file; returns the
 * boot's lease. Throws the proxy's refusal, SignatureInvalid `aproxy.commit_signature*`.
 */
export async function commitNextState(
  t: CommitTarget,
  payload: SecretPayload,
  next: NextState,
): Promise<GuestSession> {
  const pendingPath = pendingPathOf(t.statePath);
  // The broker accepted the pending version, so it is committed: promote it before replacing the slot.
  if (t.fromPending) await rename(pendingPath, t.statePath);
  await writeStateFileAtomic(pendingPath, next.sealed);
  // The commit renews the lease: from the guest's clock, no earlier than now.
  const renewedAt = Date.now();
  const stateDigest = commitmentDigest(stateDigestOf(next.sealed), t.uefiRoot);
  await t.ch.send(
    encodeCommitRequest({
      bootId: payload.bootId,
      commitToken: payload.commitToken,
      counter: next.counter,
      stateDigest,
    }),
  );
  const c = throwIfError(parseCommitResponse(await t.ch.receive(t.timeoutMs)));
  if (t.brokerKey) {
    if (!c.signature)
      throw new SignatureInvalid('aproxy.commit_signature.missing', 'the commit is not signed');
    verifyCommit(
      t.brokerKey,
      { challenge: t.challenge, bootId: payload.bootId, counter: next.counter, stateDigest },
      c.signature,
    );
  }
  await rename(pendingPath, t.statePath);
  return new GuestSession({
    connect: t.connect,
    timeoutMs: t.timeoutMs,
    bootId: payload.bootId,
    commitToken: payload.commitToken,
    renewedAt,
    ...(t.brokerKey ? { brokerKey: t.brokerKey } : {}),
  });
}
