import type { KeyObject } from 'node:crypto';
import type { Broker } from '../broker/broker.js';
import type { ReleaseResult } from '../broker/types.js';
import { InvalidArgument, isAttestationError, PolicyRejected } from '../errors.js';
import { LIMITS } from '../formats/aproxy/fields.js';
import { computeReportData, PARAMS_0_2_0 } from '../formats/aproxy/report-data.js';
import { encodeSecretPayload } from '../formats/aproxy/secret-payload.js';
import {
  encodeCommitSignedContent,
  encodeLeaseSignedContent,
  encodeResponseSignedContent,
} from '../formats/aproxy/signed-content.js';
import type { EcPublicKey, NegotiationParam, ProtocolVersion } from '../formats/aproxy/types.js';
import { STATE_DIGEST_SIZE } from '../formats/aproxy/types.js';
import type { PlatformIdentity } from '../formats/platform-identity.js';
import type { EcSigner } from '../keys/signer.js';
import { assertSupportedTee } from '../policy/tees.js';
import type { Counters } from '../util/metrics.js';
import { zeroize } from '../util/zeroize.js';
import { brokerSigner, signBytesAsync } from './broker-signature.js';
import { type Agreement, agreementOnThisThread, type EcdhAgreement } from './ecdh-threads.js';
import { EphemeralKeyPool } from './ephemeral-pool.js';
import { type JweSealed, sealAgreed } from './jwe-ecdh-es.js';
import { checkP521Point } from './p521.js';

/**
 * What REPORT_DATA = SHA-512 hashes, per protocol version, in this order. 0.1.0 uses the order COCONUT's
 * KBS backend sends (key, then nonce), so a real SVSM computes exactly this; 0.2.0 starts with its domain
 * label, so no 0.1.0 input can produce a 0.2.0 binding, and adds the state counter and the state file's
 * digest, so the host can change neither (docs/protocol.md §6.1).
 */
export const REPORT_DATA_PARAMS: Readonly<Record<ProtocolVersion, readonly NegotiationParam[]>> =
  Object.freeze({
    '0.1.0': Object.freeze(['EcPublicKeyBytes', 'Challenge'] as NegotiationParam[]),
    '0.2.0': PARAMS_0_2_0,
  });

export interface NativeAttestInput {
  readonly tee: string;
  readonly version: ProtocolVersion;
  readonly report: Uint8Array;
  readonly certTable?: Uint8Array;
  readonly challenge: Uint8Array;
  readonly key: EcPublicKey;
  /** 0.2.0: required (null for no state). 0.1.0: must be undefined. */
  readonly stateCounter?: bigint | null;
  /** 0.2.0: SHA-256 of the stated state file, null exactly when `stateCounter` is. 0.1.0: undefined. */
  readonly stateDigest?: Uint8Array | null;
  /**
   * 0.2.0, optional: the key version the guest's state is sealed under (null: none or not known). Defined:
   * the payload is format 2 (key version, and the older key after a rotation). 0.1.0: must be undefined.
   */
  readonly stateKeyVersion?: number | null;
}

export interface NativeAttestResult {
  readonly version: ProtocolVersion;
  readonly sealed: JweSealed;
  readonly identity: PlatformIdentity;
  /** 0.2.0: the broker's signature over the response's signed content; 0.1.0: null. */
  readonly signature: Uint8Array | null;
  readonly instance: string;
  readonly keyVersion: number;
  readonly bootId: string;
  readonly committedCounter: number | null;
  /** null for 0.1.0, whose boot is ended at once (see {@link NativeService.attest}). */
  readonly leaseExpiresAt: number | null;
}

/**
 * The native API's guest operations between HTTP decoding and the broker: computes the expected
 * REPORT_DATA, calls the broker, seals the released key to the guest's P-521 key (JWE ECDH-ES+A256KW /
 * A256GCM) and signs 0.2.0 responses with the broker's P-384 key. Every decision is the broker's; the
 * handlers only decode, call this and encode.
 */
export class NativeService {
  /** The broker's P-384 response-signing key: a PEM file's KeyObject or a PKCS#11 signer (src/keys). */
  private readonly signingKey: EcSigner;

  constructor(
    private readonly broker: Broker,
    signingKey: KeyObject | EcSigner,
    private readonly metrics: Counters,
    /**
     * The JWE's key agreement (default on the event loop, its ephemeral keys made ahead of need; the
     * server's runs on worker threads, ecdh-threads.ts).
     */
    private readonly agree: EcdhAgreement = agreementOnThisThread(new EphemeralKeyPool()),
  ) {
    this.signingKey = brokerSigner(signingKey);
  }

  /** A single-use challenge and the params REPORT_DATA must hash for `version`. */
  async challenge(tee: string, version: ProtocolVersion) {
    assertSupportedTee(tee, 'api.tee');
    const { challenge, expiresAt } = await this.broker.issueChallenge();
    this.metrics.inc('vouchsafe_challenges_total', { version });
    return { challenge, expiresAt, params: REPORT_DATA_PARAMS[version], version };
  }

  /**
   * Decides a release (docs/api.md "POST /v1/attest"). For 0.2.0 the sealed plaintext is the secret
   * payload (key, boot id, commit token) and the response is signed. A 0.1.0 guest cannot state a
   * counter, commit, heartbeat or end, so it gets no rollback protection, and its boot is ended at once
   * after the release: otherwise its unrenewable lease would refuse the next legitimate boot as a clone
   * while protecting nothing once it lapsed.
   */
  async attest(req: NativeAttestInput): Promise<NativeAttestResult> {
    const started = performance.now();
    try {
      const out = await this.attestSteps(req);
      this.metrics.inc('vouchsafe_releases_total', { version: req.version });
      this.metrics.inc('vouchsafe_lease_events_total', { event: 'started' });
      this.observeRelease(started, 'released');
      return out;
    } catch (e) {
      this.refused('attest', e);
      this.observeRelease(started, 'refused');
      throw e;
    }
  }

  private observeRelease(started: number, outcome: 'released' | 'refused'): void {
    this.metrics.observe('vouchsafe_release_duration_seconds', (performance.now() - started) / 1000, {
      api: 'native',
      outcome,
    });
  }

  private async attestSteps(req: NativeAttestInput): Promise<NativeAttestResult> {
    assertSupportedTee(req.tee, 'api.tee');
    const stateCounter = checkStateCounter(req.version, req.stateCounter);
    const stateDigest = checkStateDigest(req.version, stateCounter, req.stateDigest);
    const stateKeyVersion = checkStateKeyVersion(req.version, req.stateKeyVersion);
    // The key must be a P-521 point before the broker consumes the challenge and starts a boot for it:
    // checked without a key object here; the agreement imports the point on the thread where it runs.
    checkP521Point(req.key, 'key');
    const expectedReportData = computeReportData(REPORT_DATA_PARAMS[req.version], {
      challenge: req.challenge,
      key: req.key,
      ...(req.version === '0.2.0' ? { stateCounter, stateDigest } : {}),
    });
    // The JWE's key agreement depends on the guest's key and a fresh ephemeral key only, not on what is
    // released: it starts once the evidence is verified and bound to this request (so no forged request
    // costs one) and runs on its thread while the broker decides, rather than after the decision.
    let agreement: Promise<Agreement> | undefined;
    const agreed = () => {
      agreement ??= this.agree(req.key);
      return agreement;
    };
    let released: ReleaseResult;
    try {
      released = await this.broker.release({
        tee: req.tee,
        report: req.report,
        ...(req.certTable && req.certTable.length > 0 ? { certTable: req.certTable } : {}),
        challenge: req.challenge,
        expectedReportData,
        stateCounter: stateCounter === null ? null : Number(stateCounter),
        ...(stateDigest ? { stateDigest } : {}),
        ...(typeof stateKeyVersion === 'number' ? { stateKeyVersion } : {}),
        onBound: () => void agreed().catch(() => {}),
      });
    } catch (e) {
      discard(agreement);
      throw e;
    }
    let plaintext: Uint8Array | undefined;
    try {
      plaintext =
        req.version === '0.2.0'
          ? encodeSecretPayload({
              secret: released.key,
              bootId: released.bootId,
              commitToken: released.commitToken,
              // A guest that states a key version (even null) reads format 2: tell it the key's version and,
              // after a rotation, send the older key its state is sealed under.
              ...(stateKeyVersion === undefined
                ? {}
                : {
                    keyVersion: released.keyVersion,
                    ...(released.stateKey ? { stateKey: released.stateKey } : {}),
                  }),
            })
          : released.key.slice();
      const { epk, z } = await agreed();
      const sealed = sealAgreed(epk, z, plaintext);
      const { project, zone, instanceId, instanceName } = released.instance;
      const identity = { project, zone, instanceId, instanceName };
      const signature =
        req.version === '0.2.0'
          ? await signBytesAsync(
              this.signingKey,
              encodeResponseSignedContent({
                challenge: req.challenge,
                key: req.key,
                decryption: sealed.decryption,
                ciphertext: sealed.ciphertext,
                identity,
                stateCounter,
                stateDigest,
              }),
            )
          : null;
      if (req.version === '0.1.0') await this.broker.end(released.bootId, released.commitToken);
      return {
        version: req.version,
        sealed,
        identity,
        signature,
        instance: released.instance.id,
        keyVersion: released.keyVersion,
        bootId: released.bootId,
        committedCounter: released.committedCounter,
        leaseExpiresAt: req.version === '0.1.0' ? null : released.leaseExpiresAt,
      };
    } catch (e) {
      // The guest will never see this key: do not leave a boot holding the instance's lease.
      await this.broker.end(released.bootId, released.commitToken).catch(() => {});
      throw e;
    } finally {
      zeroizeRelease(released);
      zeroize(plaintext);
      discard(agreement);
    }
  }

  /**
   * 0.2.0 commit of a state version (counter and the SHA-256 of its sealed file); the acknowledgement is
   * signed over the session's challenge, the boot id, the counter and the digest.
   */
  async commit(
    bootId: string,
    commitToken: Uint8Array,
    counter: bigint,
    stateDigest: Uint8Array,
    challenge: Uint8Array,
  ) {
    try {
      const n = safeCounter(counter, 'counter');
      // The acknowledgement signs what the guest asked to commit, not the broker's answer, so it is made on
      // libuv's pool while the broker decides and the store flushes; it leaves only with a committed
      // decision. The broker's refusal, if any, is the error reported (it is awaited first).
      const signing = (async () =>
        signBytesAsync(
          this.signingKey,
          encodeCommitSignedContent({ challenge, bootId, counter, stateDigest }),
        ))();
      signing.catch(() => {}); // awaited only once the broker has committed
      const r = await this.broker.commit(bootId, commitToken, n, stateDigest);
      this.metrics.inc('vouchsafe_commits_total');
      return {
        committedCounter: r.committedCounter,
        leaseExpiresAt: r.leaseExpiresAt,
        signature: await signing,
      };
    } catch (e) {
      this.refused('commit', e);
      throw e;
    }
  }

  /**
   * Renews the boot's lease. With the guest's `nonce` (16..64 bytes; the aproxy 0.2.0 Heartbeat sends one)
   * the acknowledgement is signed over the nonce, the boot id and the new expiry (docs/protocol.md "Broker
   * signature"), so a pinned guest knows the broker, not the proxy, renewed it. Throws InvalidArgument
   * `api.nonce`, and the broker's refusals (`broker.boot_unknown`: the guest must halt).
   */
  async heartbeat(
    bootId: string,
    commitToken: Uint8Array,
    nonce?: Uint8Array,
  ): Promise<{ leaseExpiresAt: number; signature?: Uint8Array }> {
    try {
      checkNonce(nonce);
      const { leaseExpiresAt } = await this.broker.heartbeat(bootId, commitToken);
      this.metrics.inc('vouchsafe_lease_events_total', { event: 'renewed' });
      if (!nonce) return { leaseExpiresAt };
      return {
        leaseExpiresAt,
        signature: await this.signLease({ op: 'heartbeat', nonce, bootId, leaseExpiresAt }),
      };
    } catch (e) {
      this.refused('heartbeat', e);
      throw e;
    }
  }

  /** Ends the boot; with a `nonce`, the acknowledgement is signed as for {@link heartbeat}. */
  async end(
    bootId: string,
    commitToken: Uint8Array,
    nonce?: Uint8Array,
  ): Promise<{ signature?: Uint8Array }> {
    try {
      checkNonce(nonce);
      await this.broker.end(bootId, commitToken);
      this.metrics.inc('vouchsafe_lease_events_total', { event: 'ended' });
      return nonce
        ? { signature: await this.signLease({ op: 'end', nonce, bootId, leaseExpiresAt: null }) }
        : {};
    } catch (e) {
      this.refused('end', e);
      throw e;
    }
  }

  /**
   * True for a refusal the broker did not audit because the request named no real instance or boot (an
   * unknown boot id or challenge, evidence that never named an instance); the HTTP layer rate-limits on it.
   */
  isUnattributedRefusal(e: unknown): boolean {
    return this.broker.isUnattributedRefusal(e);
  }

  /** Counts a request turned away by the refusal limiter (HTTP 429). */
  countRateLimited(operation: string): void {
    this.metrics.inc('vouchsafe_refusals_total', {
      operation,
      code: 'ERR_REFUSED',
      reason: 'api.rate_limited',
    });
  }

  /** ECDSA P-384 / SHA-384, IEEE P1363 (r || s), as every other broker signature (src/native/broker-signature.ts). */
  private signLease(f: Parameters<typeof encodeLeaseSignedContent>[0]): Promise<Uint8Array> {
    return signBytesAsync(this.signingKey, encodeLeaseSignedContent(f));
  }

  /** Counts a refusal by code and reason; a policy refusal counts once per failed check. */
  private refused(operation: string, e: unknown): void {
    const code = isAttestationError(e) ? e.code : 'ERR_INTERNAL';
    const reasons =
      e instanceof PolicyRejected
        ? e.failures.map((f) => f.code)
        : [isAttestationError(e) ? e.reason : 'api.internal'];
    for (const reason of reasons) this.metrics.inc('vouchsafe_refusals_total', { operation, code, reason });
  }
}

function checkStateKeyVersion(
  version: ProtocolVersion,
  v: number | null | undefined,
): number | null | undefined {
  if (v === undefined) return undefined;
  if (version === '0.1.0') {
    throw new InvalidArgument('api.state_key_version', '0.1.0 requests carry no stateKeyVersion');
  }
  if (v !== null && !(Number.isInteger(v) && v >= 1 && v <= 0xffff_ffff)) {
    throw new InvalidArgument('api.state_key_version', 'stateKeyVersion must be 1..2^32-1 or null');
  }
  return v;
}

function checkStateDigest(
  version: ProtocolVersion,
  counter: bigint | null,
  d: Uint8Array | null | undefined,
): Uint8Array | null {
  if (version === '0.1.0') {
    if (d !== undefined) throw new InvalidArgument('api.state_digest', '0.1.0 requests carry no stateDigest');
    return null;
  }
  if (counter === null) {
    if (d !== undefined && d !== null) {
      throw new InvalidArgument('api.state_digest', 'stateDigest is null when stateCounter is');
    }
    return null;
  }
  if (!(d instanceof Uint8Array) || d.length !== STATE_DIGEST_SIZE) {
    throw new InvalidArgument(
      'api.state_digest',
      `a stated counter needs its ${STATE_DIGEST_SIZE}-byte stateDigest`,
    );
  }
  return d;
}

function checkNonce(nonce: Uint8Array | undefined): void {
  if (nonce !== undefined && (nonce.length < LIMITS.nonce[0] || nonce.length > LIMITS.nonce[1])) {
    throw new InvalidArgument('api.nonce', `nonce must be ${LIMITS.nonce[0]}..${LIMITS.nonce[1]} bytes`);
  }
}

function checkStateCounter(version: ProtocolVersion, c: bigint | null | undefined): bigint | null {
  if (version === '0.1.0') {
    if (c !== undefined) {
      throw new InvalidArgument('api.state_counter', '0.1.0 requests carry no stateCounter');
    }
    return null;
  }
  if (c === undefined) {
    throw new InvalidArgument('api.state_counter', '0.2.0 requests state the counter (or null for no state)');
  }
  if (c !== null) safeCounter(c, 'stateCounter');
  return c;
}

/** The broker counts in JavaScript numbers: counters above 2^53-1 are refused, never rounded. */
function safeCounter(c: bigint, field: string): number {
  if (c < 0n || c > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgument('api.state_counter', `${field} must be 0..2^53-1`);
  }
  return Number(c);
}

function zeroizeRelease(r: ReleaseResult): void {
  zeroize(r.key, r.stateKey?.key, r.commitToken);
}

/** Zeroizes the Z of an agreement that was started, when it arrives, whether or not it was used. */
function discard(agreement: Promise<Agreement> | undefined): void {
  agreement?.then(
    (a) => zeroize(a.z),
    () => {},
  );
}
