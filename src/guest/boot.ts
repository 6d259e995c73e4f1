import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import {
  AttestationError,
  type ErrorCode,
  InvalidArgument,
  MalformedEvidence,
  PolicyRejected,
  SignatureInvalid,
} from '../errors.js';
import { encodeAttestationRequest, parseAttestationResponse } from '../formats/aproxy/attestation.js';
import { encodeCommitRequest, parseCommitResponse } from '../formats/aproxy/commit.js';
import { type Dialect, isDialect } from '../formats/aproxy/dialect.js';
import { isErrorReply } from '../formats/aproxy/error-reply.js';
import { encodeNegotiationRequest, parseNegotiationResponse } from '../formats/aproxy/negotiation.js';
import { computeReportData, PARAMS_0_2_0 } from '../formats/aproxy/report-data.js';
import { parseSecretPayload } from '../formats/aproxy/secret-payload.js';
import {
  type ErrorReply,
  type InstanceIdentity,
  type NegotiationParam,
  type ProtocolVersion,
  VERSION_TUPLES,
} from '../formats/aproxy/types.js';
import {
  importBrokerPublicKey,
  verifyAttestationResponse,
  verifyCommit,
} from '../native/broker-signature.js';
import { unwrapSecret } from '../native/jwe-ecdh-es.js';
import { generateP521KeyPair, p521PointOf } from '../native/p521.js';
import { zeroize } from '../util/zeroize.js';
import { bootProposalGuest } from './boot-proposal.js';
import { GuestChannel } from './channel.js';
import { firstReply, type Pr1203EvidenceSpelling } from './dialects.js';
import type { ReportProvider } from './report-provider.js';
import { GuestSession } from './session.js';
import {
  deriveStateKey,
  instanceBindingOf,
  parseStateHeader,
  readStateFile,
  sealState,
  unsealState,
  writeStateFileAtomic,
} from './state-file.js';

export interface BootGuestOptions {
  /** The proxy: `unix:PATH` or `tcp:HOST:PORT`. */
  readonly connect: string;
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
  readonly identity: InstanceIdentity | null;
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
}

/** SHA-256 of a sealed state file as stored: what 0.2.0 states and commits with the counter. */
export function stateDigestOf(sealed: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(sealed).digest());
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

/** The pending slot of a state file: the next version, written before the commit, renamed after it. */
export function pendingPathOf(statePath: string): string {
  return `${statePath}.next`;
}

interface StateCandidate {
  /** The sealed state this boot states and unseals; undefined on first boot. */
  readonly file: Uint8Array | undefined;
  readonly pending: boolean;
  /** After a `broker.state_ahead` recovery: write counter + 2, never the abandoned version's counter. */
  readonly skipCounter?: boolean;
}

async function attemptBoot(
  opts: BootGuestOptions,
  version: ProtocolVersion,
  brokerKey: KeyObject | undefined,
  candidate: StateCandidate,
  firstBoot: boolean,
): Promise<BootResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const existing = candidate.file;
  // Its header counter is what this boot states, and its key version which older key to ask for
  // (unauthenticated until unsealed, which authenticates both).
  const header = existing ? parseStateHeader(existing) : undefined;
  const statedCounter = header ? header.counter : null;
  const statedKeyVersion = header && header.keyVersion > 0 ? header.keyVersion : null;
  const statedDigest = existing ? stateDigestOf(existing) : null;

  const ch = await GuestChannel.open(opts.connect, timeoutMs);
  let plaintext: Uint8Array | undefined;
  let stateKey: Buffer | undefined;
  let openKey: Buffer | undefined;
  try {
    await ch.send(encodeNegotiationRequest({ version: VERSION_TUPLES[version], tee: 'snp' }));
    const neg = throwIfError(
      firstReply(await ch.receive(timeoutMs), 'main', (b) => parseNegotiationResponse(b, version)),
    );
    checkParams(neg.params, version);

    const keys = await generateP521KeyPair();
    const key = p521PointOf(keys.publicKey);
    const reportData = computeReportData(neg.params, {
      challenge: neg.challenge,
      key,
      ...(version === '0.2.0' ? { stateCounter: statedCounter, stateDigest: statedDigest } : {}),
    });
    const evidence = await opts.provider.getReport(reportData);
    await ch.send(
      encodeAttestationRequest(
        {
          tee: 'snp',
          evidence: evidence.certTable
            ? { report: evidence.report, certsBuf: evidence.certTable }
            : { report: evidence.report },
          challenge: neg.challenge,
          key,
          // Stating the key version (even null) also says this guest reads secret payload format 2.
          ...(version === '0.2.0'
            ? { stateCounter: statedCounter, stateDigest: statedDigest, stateKeyVersion: statedKeyVersion }
            : {}),
        },
        version,
      ),
    );
    const resp = throwIfError(parseAttestationResponse(await ch.receive(timeoutMs), version));
    if (!resp.success) {
      throw new PolicyRejected([{ code: 'aproxy.refused', message: 'the proxy answered success:false' }]);
    }
    if (resp.secret === undefined || resp.decryption === null) {
      throw new MalformedEvidence('guest.secret_missing', 'a successful response carries no secret');
    }
    const identity = resp.identity ?? null;
    let brokerVerified = false;
    if (brokerKey) {
      if (!resp.signature)
        throw new SignatureInvalid('aproxy.signature.missing', 'the response is not signed');
      verifyAttestationResponse(
        brokerKey,
        {
          challenge: neg.challenge,
          key,
          decryption: resp.decryption,
          ciphertext: resp.secret,
          identity,
          stateCounter: statedCounter,
          stateDigest: statedDigest,
        },
        resp.signature,
      );
      brokerVerified = true;
    }

    plaintext = unwrapSecret(keys.privateKey, { decryption: resp.decryption, ciphertext: resp.secret });
    const payload = version === '0.2.0' ? parseSecretPayload(plaintext) : undefined;
    stateKey = deriveStateKey(payload ? payload.secret : plaintext);
    const keyVersion = payload?.keyVersion ?? null;

    // Which key opens the current state: after a rotation, the older one the broker sent along.
    let previousKeyVersion: number | null = null;
    if (header && payload?.stateKey) {
      if (payload.stateKey.keyVersion !== header.keyVersion) {
        throw new MalformedEvidence(
          'guest.state_key_version',
          `the broker sent key version ${payload.stateKey.keyVersion} for state sealed under ${header.keyVersion}`,
        );
      }
      openKey = deriveStateKey(payload.stateKey.key);
      previousKeyVersion = payload.stateKey.keyVersion;
    } else if (
      header &&
      keyVersion !== null &&
      statedKeyVersion !== null &&
      statedKeyVersion !== keyVersion
    ) {
      // The state names an older key and the reply does not carry it: do not try (and fail) the new one.
      throw new MalformedEvidence(
        'guest.state_key_missing',
        `state sealed under key version ${statedKeyVersion}; the reply carries only ${keyVersion}`,
      );
    }

    // Unseal or create, then write the next version durably, sealed under the current key.
    const binding = instanceBindingOf(identity);
    let body: Uint8Array;
    let keepBinding = binding;
    if (existing) {
      const opened = unsealState(existing, openKey ?? stateKey, identity ? binding : undefined);
      body = opened.body;
      if (!identity) keepBinding = opened.header.instanceBinding;
    } else {
      body = opts.initialState ?? new Uint8Array(randomBytes(32));
    }
    const counter = (statedCounter ?? 0n) + (candidate.skipCounter ? 2n : 1n);
    // Without a version from the broker, a state opened with the current key keeps its recorded version.
    const sealedVersion = keyVersion ?? (header && !openKey ? header.keyVersion : 0);
    const next = sealState({
      key: stateKey,
      counter,
      instanceBinding: keepBinding,
      body,
      keyVersion: sealedVersion,
    });

    let committed = false;
    let session: GuestSession | null = null;
    if (payload) {
      const pendingPath = pendingPathOf(opts.statePath);
      // The broker accepted the pending version, so it is committed: promote it before replacing the slot.
      if (candidate.pending) await rename(pendingPath, opts.statePath);
      await writeStateFileAtomic(pendingPath, next);
      // The commit renews the lease: from the guest's clock, no earlier than now.
      const renewedAt = Date.now();
      const stateDigest = stateDigestOf(next);
      await ch.send(
        encodeCommitRequest({
          bootId: payload.bootId,
          commitToken: payload.commitToken,
          counter,
          stateDigest,
        }),
      );
      const c = throwIfError(parseCommitResponse(await ch.receive(timeoutMs)));
      if (brokerKey) {
        if (!c.signature)
          throw new SignatureInvalid('aproxy.commit_signature.missing', 'the commit is not signed');
        verifyCommit(
          brokerKey,
          { challenge: neg.challenge, bootId: payload.bootId, counter, stateDigest },
          c.signature,
        );
      }
      await rename(pendingPath, opts.statePath);
      committed = true;
      session = new GuestSession({
        connect: opts.connect,
        timeoutMs,
        bootId: payload.bootId,
        commitToken: payload.commitToken,
        renewedAt,
        ...(brokerKey ? { brokerKey } : {}),
      });
    } else {
      await writeStateFileAtomic(opts.statePath, next);
    }
    return {
      version,
      firstBoot,
      counter,
      statedCounter,
      state: body,
      identity,
      bootId: payload?.bootId ?? null,
      committed,
      brokerVerified,
      reportData,
      keyVersion: sealedVersion === 0 ? null : sealedVersion,
      previousKeyVersion,
      session,
    };
  } finally {
    zeroize(plaintext, stateKey, openKey);
    ch.close();
  }
}

function throwIfError<T extends object>(r: T | ErrorReply): T {
  if (isErrorReply(r)) {
    // The code was checked against ErrorCode when the reply was parsed.
    throw new AttestationError(r.error.code as ErrorCode, r.error.reason, `proxy: ${r.error.message}`);
  }
  return r;
}

/**
 * 0.1.0: `Challenge` and `EcPublicKeyBytes`, each exactly once (in either order, as COCONUT's SVSM takes
 * them). 0.2.0: exactly {@link PARAMS_0_2_0}, in that order: the proxy is untrusted, and a binding it could
 * reorder, shorten or repeat would not be the one docs/protocol.md §6.1 argues is apart from 0.1.0's.
 */
function checkParams(params: readonly NegotiationParam[], version: ProtocolVersion): void {
  if (version === '0.2.0') {
    if (params.length !== PARAMS_0_2_0.length || params.some((p, i) => p !== PARAMS_0_2_0[i])) {
      throw new MalformedEvidence('guest.params', `0.2.0 params must be ${PARAMS_0_2_0.join(',')}`);
    }
    return;
  }
  for (const p of ['Challenge', 'EcPublicKeyBytes'] as const) {
    const n = params.filter((q) => q === p).length;
    if (n !== 1) throw new MalformedEvidence('guest.params', `param ${p} appears ${n} times; expected once`);
  }
  if (params.length !== 2) throw new MalformedEvidence('guest.params', 'unexpected extra params');
}
