import type { KeyObject } from 'node:crypto';
import { AttestationError, InvalidArgument } from '../errors.js';
import { type Dialect, isDialect } from '../formats/aproxy/dialect.js';
import type { ProtocolVersion } from '../formats/aproxy/types.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import { importBrokerPublicKey } from '../native/broker-signature.js';
import type { P521KeyPair } from '../native/p521.js';
import { zeroize } from '../util/zeroize.js';
import { commitNextState, pendingPathOf } from './boot-commit.js';
import { negotiate, requestSecret, verifyReleasedSecret } from './boot-exchange.js';
import { bootProposalGuest } from './boot-proposal.js';
import { type BootSecrets, sealNextState, statedStateOf, unwrapStateKeys } from './boot-state.js';
import { type ChannelOpener, openAproxyChannel } from './channel.js';
import type { Pr1203EvidenceSpelling } from './dialects.js';
import type { ReportProvider } from './report-provider.js';
import type { GuestSession } from './session.js';
import { readStateFile, writeStateFileAtomic } from './state-file.js';
import { deriveVariableKey } from './uefi-seal.js';

export { pendingPathOf } from './boot-commit.js';
export { stateDigestOf } from './boot-state.js';

export interface BootGuestOptions {
  /**
   * The proxy: `unix:PATH` or `tcp:HOST:PORT`, or an opener of another transport, such as KEY_RELEASE over
   * the pvchannel when the host offers no vsock (pvKeyReleaseOpener, docs/pvchannel.md §7.4).
   */
  readonly connect: string | ChannelOpener;
  readonly provider: ReportProvider;
  /** The sealed state file (created on first boot). */
  readonly statePath: string;
  /** Protocol version to speak (default `0.2.0`). `0.1.0` is exactly what a COCONUT-SVSM sends. */
  readonly version?: ProtocolVersion;
  /**
   * The broker's ECDSA P-384 public key (KeyObject, PEM or SPKI DER). When set, a response whose signature is
   * missing or does not verify is rejected before anything is decrypted. Requires version 0.2.0.
   */
  readonly brokerPublicKey?: KeyObject | string | Uint8Array;
  /** The body of a new state file on first boot (default: 32 random bytes, e.g. a vTPM seed). */
  readonly initialState?: Uint8Array;
  /** Deadline for connecting and for each reply (default 30 s). */
  readonly timeoutMs?: number;
  /**
   * The message dialect (docs/protocol.md "Dialects"): `main` (default; svsm main, and Vouchsafe's 0.2.0),
   * `pr1122` or `pr1203` (COCONUT's two open proposals, which speak 0.1.0: no version other than 0.1.0 and
   * no pinned broker key with them).
   */
  readonly dialect?: Dialect;
  /**
   * `pr1203` only: the form of the SNP evidence posted to the KBS (default `svsm-pr1203`, what the PR's
   * SVSM sends: `{"Snp":{"report"}}`); see ProposalOptions.evidenceSpelling.
   */
  readonly evidenceSpelling?: Pr1203EvidenceSpelling;
  /**
   * Where the boot's P-521 key comes from (default: a fresh key from node:crypto). Every boot must use a key
   * no earlier boot used; this exists for load generators that make their guests' keys ahead of time so
   * that the broker under test, not the key generation, is measured (bench/broker.ts).
   */
  readonly keyPair?: () => Promise<P521KeyPair>;
  /**
   * 0.2.0 only: the guest keeps sealed UEFI variables on the host (docs/pvchannel.md §7.3). `stated` is the
   * store root the broker committed (null: none yet), `next` the root to commit with the next state version
   * (the same, or a new one after a SetVariable). The boot states and commits commitmentDigest(file, root),
   * and returns the variable key (`variableKey`). When the broker rotated the sealing key since the state
   * was sealed, `rewrap` gets the variable keys of the older and the current sealing key and returns the
   * root to commit instead of `next` (the index sealed again under the current key: rewrapIndex).
   */
  readonly uefiRoot?: {
    readonly stated: Uint8Array | null;
    readonly next: Uint8Array | null;
    readonly rewrap?: (k: {
      readonly previous: Uint8Array;
      readonly current: Uint8Array;
      readonly identity: PlatformIdentity | null;
    }) => Promise<Uint8Array | null>;
  };
}

export interface BootResult {
  readonly version: ProtocolVersion;
  /** True when no state file existed and one was created. */
  readonly firstBoot: boolean;
  /** The counter of the state version now on disk. */
  readonly counter: bigint;
  /** The counter the guest stated to the broker (null: no state). */
  readonly statedCounter: bigint | null;
  /** The decrypted state body. */
  readonly state: Uint8Array;
  readonly identity: PlatformIdentity | null;
  readonly bootId: string | null;
  /** 0.2.0: the broker acknowledged the new counter. */
  readonly committed: boolean;
  /** The response (and commit) signature verified against the pinned broker key. */
  readonly brokerVerified: boolean;
  /** What REPORT_DATA the report was requested with. */
  readonly reportData: Uint8Array;
  /**
   * The sealing-key version the state on disk is now sealed under (0.2.0 with a broker that sends secret
   * payload format 2); null when not known (0.1.0, or an older broker).
   */
  readonly keyVersion: number | null;
  /**
   * After a key rotation: the older key version the state was unsealed with before it was resealed under
   * `keyVersion`; null when the state was opened with the current key (or created).
   */
  readonly previousKeyVersion: number | null;
  /**
   * 0.2.0: the boot's lease. Heartbeat well inside the broker's lease (`session.startHeartbeats()`), treat
   * HaltRequired as "stop using the state now", and `session.end()` on clean shutdown. Null for 0.1.0,
   * which has no lease messages.
   */
  readonly session: GuestSession | null;
  /**
   * With `uefiRoot`: the UEFI variable store key, derived from the released sealing key (uefi-seal.ts). The
   * caller zeroes it when done. Null otherwise.
   */
  readonly variableKey: Buffer | null;
}

/**
 * The SVSM side of key release as a library (reference svsm-protocol.md §2; docs/protocol.md "Guest flow"):
 * negotiate, generate a fresh P-521 key, compute REPORT_DATA from the params, get a report, attest, verify
 * the broker signature if pinned, unwrap the secret, unseal the state file (or create it on first boot),
 * durably write the next version (counter + 1) and, in 0.2.0, commit it to the broker.
 *
 * Crash safety (0.2.0; docs/broker.md "Guest obligations"): the next version is written to a pending slot
 * (`<statePath>.next`) before the commit and renamed over the state file only after the broker acknowledged
 * it. A crash between the write and the commit leaves a pending version one ahead of the broker: the next boot
 * states the pending counter first and, when the broker answers `broker.state_ahead`, boots again from the
 * committed file. A crash after the commit but before the rename leaves the pending version committed: it is
 * accepted and promoted. Either way the guest neither loses its data nor is locked out.
 *
 * Key rotation (0.2.0): the state header records the sealing-key version; the guest states it, and a broker
 * that rotated the key since sends the older key along (secret payload format 2). The guest opens the state
 * with that key and seals the next version under the newest one (`previousKeyVersion` -> `keyVersion`).
 *
 * The lease (0.2.0): `result.session` heartbeats and ends the boot over fresh connections (GuestSession).
 *
 * Everything that fails is a typed AttestationError: the proxy's refusal (its code and reason),
 * MalformedEvidence `aproxy.*` / `guest.params`, SignatureInvalid `aproxy.signature*` / `jwe.*` /
 * `state.auth`, BindingMismatch `state.instance_binding`, Unavailable `guest.channel.*`,
 * PolicyRejected `aproxy.refused` (a 0.1.0 `success:false`), MalformedEvidence `guest.state_key_version` /
 * `guest.state_key_missing` (the reply does not carry the key the state is sealed under).
 */
export async function bootGuest(opts: BootGuestOptions): Promise<BootResult> {
  const dialect = opts.dialect ?? 'main';
  if (opts.uefiRoot !== undefined && (dialect !== 'main' || (opts.version ?? '0.2.0') !== '0.2.0')) {
    // The variable store's rollback protection is the broker's commit, which 0.1.0 does not have.
    throw new InvalidArgument('guest.uefi_requires_0_2_0', 'sealed UEFI variables need protocol 0.2.0');
  }
  if (dialect !== 'main') {
    if ((opts.version ?? '0.1.0') !== '0.1.0' || opts.brokerPublicKey !== undefined) {
      throw new InvalidArgument('guest.dialect', `${dialect} speaks 0.1.0 only, with no pinned broker key`);
    }
    if (!isDialect(dialect)) throw new InvalidArgument('guest.dialect', 'unknown dialect');
    return bootProposalGuest(opts, dialect);
  }
  const version = opts.version ?? '0.2.0';
  if (opts.brokerPublicKey !== undefined && version !== '0.2.0') {
    throw new InvalidArgument('guest.pin_requires_0_2_0', 'pinning the broker key needs protocol 0.2.0');
  }
  const brokerKey =
    opts.brokerPublicKey === undefined ? undefined : importBrokerPublicKey(opts.brokerPublicKey);
  const pendingPath = pendingPathOf(opts.statePath);
  const current = await readStateFile(opts.statePath);
  // 0.1.0 has no commit, so it has no pending slot: it writes the state file in place.
  const pending = version === '0.2.0' ? await readStateFile(pendingPath) : undefined;
  if (!pending)
    return attemptBoot(opts, version, brokerKey, { file: current, pending: false }, current === undefined);
  try {
    return await attemptBoot(opts, version, brokerKey, { file: pending, pending: true }, false);
  } catch (e) {
    // The pending version was never committed (crash before the commit): boot from the committed file,
    // and skip the abandoned version's counter, so no two versions ever carry the same counter (the
    // abandoned file stays a rollback even to a broker that recorded no digest).
    if (e instanceof AttestationError && e.reason === 'broker.state_ahead') {
      return attemptBoot(
        opts,
        version,
        brokerKey,
        { file: current, pending: false, skipCounter: true },
        current === undefined,
      );
    }
    throw e;
  }
}

interface StateCandidate {
  /** The sealed state this boot states and unseals; undefined on first boot. */
  readonly file: Uint8Array | undefined;
  readonly pending: boolean;
  /** After a `broker.state_ahead` recovery: write counter + 2, never the abandoned version's counter. */
  readonly skipCounter?: boolean;
}

/**
 * One boot attempt from one state candidate, phase by phase: state what is on disk, negotiate, attest, check
 * the broker's signature, unwrap the keys, seal the next version, then commit it (0.2.0) or write it in place
 * (0.1.0). Secrets are zeroed when the attempt ends, however it ends.
 */
async function attemptBoot(
  opts: BootGuestOptions,
  version: ProtocolVersion,
  brokerKey: KeyObject | undefined,
  candidate: StateCandidate,
  firstBoot: boolean,
): Promise<BootResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const opened = statedStateOf(candidate.file, opts.uefiRoot?.stated);
  const ch = await openAproxyChannel(opts.connect, timeoutMs);
  const secrets: BootSecrets = {};
  // The variable key goes to the caller on success only; a failed attempt zeroes it.
  let unreturnedKey: Buffer | null = null;
  try {
    const neg = await negotiate(ch, version, timeoutMs);
    const released = await requestSecret(
      ch,
      opts.provider,
      version,
      neg,
      opened.stated,
      timeoutMs,
      opts.keyPair,
    );
    const brokerVerified = verifyReleasedSecret(brokerKey, neg, released, opened.stated);
    const keys = unwrapStateKeys(released, version, opened, secrets);
    const next = sealNextState(
      opened,
      keys,
      released.identity,
      opts.initialState,
      candidate.skipCounter === true,
    );
    const secret = keys.payload ? keys.payload.secret : secrets.plaintext;
    const variableKey = opts.uefiRoot !== undefined && secret ? deriveVariableKey(secret) : null;
    unreturnedKey = variableKey;
    let uefiRoot = opts.uefiRoot?.next ?? null;
    const olderKey = keys.payload?.stateKey?.key;
    if (variableKey && olderKey && opts.uefiRoot?.rewrap) {
      // A rotation: the variable index moves to the new key in the same commit as the state (§7.3).
      const previous = deriveVariableKey(olderKey);
      try {
        uefiRoot = await opts.uefiRoot.rewrap({
          previous,
          current: variableKey,
          identity: released.identity,
        });
      } finally {
        previous.fill(0);
      }
    }
    let session: GuestSession | null = null;
    if (keys.payload) {
      const target = {
        ch,
        connect: opts.connect,
        statePath: opts.statePath,
        fromPending: candidate.pending,
        challenge: neg.challenge,
        brokerKey,
        timeoutMs,
        uefiRoot,
      };
      session = await commitNextState(target, keys.payload, next);
    } else {
      await writeStateFileAtomic(opts.statePath, next.sealed);
    }
    unreturnedKey = null;
    return {
      variableKey,
      version,
      firstBoot,
      counter: next.counter,
      statedCounter: opened.stated.counter,
      state: next.body,
      identity: released.identity,
      bootId: keys.payload?.bootId ?? null,
      committed: session !== null,
      brokerVerified,
      reportData: released.reportData,
      keyVersion: next.sealedVersion === 0 ? null : next.sealedVersion,
      previousKeyVersion: keys.previousKeyVersion,
      session,
    };
  } finally {
    zeroize(secrets.plaintext, secrets.stateKey, secrets.openKey, unreturnedKey ?? undefined);
    ch.close();
  }
}
