import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { AttestationError, InvalidArgument, NotSupported, PolicyRejected } from '../errors.js';
import type { EvidenceClaims } from '../evidence/types.js';
import { assertSupportedTee, registryIdentityOf } from '../policy/tees.js';
import { type AuditVerification, verifyAuditChain } from '../store/audit-verify.js';
import type {
  AuditDetailValue,
  AuditEntry,
  BootState,
  InstanceWithState,
  JsonValue,
  LockedInstance,
  LockOptions,
  NewLaunchPolicy,
  RegistryTee,
  Store,
  StoreTx,
} from '../store/types.js';
import { NEW_LAUNCH_POLICIES, REGISTRY_TEES } from '../store/types.js';
import { ctEqual, toHex } from '../util/bytes.js';
import { pooledRandomFill } from '../util/random.js';
import { currentActor } from './actor.js';
import { type BootRefusalReason, type BootStart, decideBoot } from './boot-rules.js';
import { BrokerRefused } from './errors.js';
import type { KekSource } from './kek.js';
import { createSealingKey, openSealingKey } from './sealing-key.js';
import type {
  Appraise,
  BrokerOptions,
  InstanceView,
  IssuedChallenge,
  RegisteredInstance,
  RegisterInstanceRequest,
  ReleaseRequest,
  ReleaseResult,
  VerifyEvidence,
} from './types.js';

const TOKEN_BYTES = 32;
const REPORT_DATA_BYTES = 64;
const MIN_CHALLENGE_BYTES = 32;
const MAX_CHALLENGE_BYTES = 1024;
/**
 * Identity fields: 1..256 UTF-8 bytes each, what the 0.2.0 AttestationResponse can carry (docs/protocol.md
 * §6.3). Counted in bytes, not UTF-16 units: 255 characters can be 765 bytes, which the proxy could not
 * encode, and every release of such an instance would fail after the broker decided it.
 */
const IDENTITY_MAX_BYTES = 256;
const STATE_DIGEST_BYTES = 32;
/** Decisions a guest (through an untrusted host) can ask for; refusals that name nothing are not audited. */
const GUEST_KINDS: ReadonlySet<string> = new Set(['release', 'commit', 'heartbeat', 'end']);
const NOTE_MAX = 200;
/** Expired challenges are purged only this long after expiry, so a late guest still hears "expired". */
const PURGE_GRACE_MS = 60 * 60 * 1000;
const PURGE_EVERY = 256;

const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

/** What a decision's audit entry knows so far; filled in as the request is processed. */
interface AuditContext {
  instance: string | null;
  evidenceDigest: string | null;
  details: Record<string, AuditDetailValue>;
}

const newContext = (details: Record<string, AuditDetailValue> = {}): AuditContext => ({
  instance: null,
  evidenceDigest: null,
  details,
});

/**
 * The key broker: issues challenges, keeps the instance registry, decides key releases, and keeps the
 * rollback/clone state and the audit log. Verification and appraisal are injected; the store does the
 * atomic parts. Every decision, acceptance or refusal, is written to the hash-chained audit log; a
 * refusal leaves keys and boot state unchanged.
 *
 * Errors: BrokerRefused (`ERR_REFUSED`, reasons in errors.ts), PolicyRejected (from the appraiser),
 * whatever AttestationError the verifier throws, InvalidArgument for malformed calls and KEK problems
 * (`broker.kek.*`).
 */
export class Broker {
  private readonly store: Store;
  private readonly kek: KekSource;
  private readonly verifyEvidence: VerifyEvidence;
  private readonly appraise: Appraise;
  private readonly now: () => number;
  private readonly challengeTtlMs: number;
  private readonly challengeBytes: number;
  private readonly leaseMs: number;
  private readonly onAuditFailure: (err: unknown) => void;
  private readonly onUnattributedRefusal: (kind: string, err: unknown) => void;
  private readonly admitInstance: (instanceId: string) => void;
  /** Errors this broker threw for guest requests that named no instance or boot (so were not audited). */
  private readonly unattributed = new WeakSet<object>();
  private issued = 0;

  constructor(opts: BrokerOptions) {
    this.store = opts.store;
    this.kek = opts.kek;
    this.verifyEvidence = opts.verifyEvidence;
    this.appraise = opts.appraise;
    this.now = opts.now ?? Date.now;
    this.challengeTtlMs = positiveInt(opts.challengeTtlMs ?? 60_000, 'challengeTtlMs');
    this.challengeBytes = positiveInt(opts.challengeBytes ?? MIN_CHALLENGE_BYTES, 'challengeBytes');
    if (this.challengeBytes < MIN_CHALLENGE_BYTES || this.challengeBytes > MAX_CHALLENGE_BYTES) {
      throw new InvalidArgument(
        'broker.config',
        `challengeBytes must be ${MIN_CHALLENGE_BYTES}..${MAX_CHALLENGE_BYTES}`,
      );
    }
    this.leaseMs = positiveInt(opts.leaseMs ?? 300_000, 'leaseMs');
    this.onAuditFailure = opts.onAuditFailure ?? (() => {});
    this.onUnattributedRefusal = opts.onUnattributedRefusal ?? (() => {});
    this.admitInstance = opts.admitInstance ?? (() => {});
  }

  /**
   * True when `err` is a refusal this broker threw for a guest request that named no real instance or boot
   * (not audited). The HTTP layer rate-limits its source on these.
   */
  isUnattributedRefusal(err: unknown): boolean {
    return typeof err === 'object' && err !== null && this.unattributed.has(err);
  }

  // ---- challenges ----------------------------------------------------------------------------------

  /** A fresh random challenge, valid once, for `challengeTtlMs`. Only its SHA-256 is stored. */
  async issueChallenge(): Promise<IssuedChallenge> {
    const challenge = pooledRandomFill(new Uint8Array(this.challengeBytes));
    const expiresAt = this.now() + this.challengeTtlMs;
    await this.store.insertChallenge(sha256(challenge), expiresAt);
    if (++this.issued % PURGE_EVERY === 0) await this.purgeExpiredChallenges();
    return { challenge, expiresAt };
  }

  /** Deletes challenges that expired more than an hour ago; returns how many. */
  purgeExpiredChallenges(): Promise<number> {
    return this.store.purgeChallenges(this.now() - PURGE_GRACE_MS);
  }

  // ---- instance registry (control plane) -----------------------------------------------------------

  /**
   * Registers an instance for its TEE (`req.tee`: `snp`, the default, or `tdx`) and issues the identity
   * value the VMM must set at launch — SEV-SNP HOST_DATA (32 random bytes), TDX MRCONFIGID (48) — unique,
   * or takes `req.hostData` (that TEE's length, not all zero: the value of a TEE whose identity field the
   * host cannot set, e.g. an Azure VM's, or one the control plane chose). The value only names the
   * instance; see docs/broker.md for what the decision rests on. Throws InvalidArgument `broker.identity`,
   * `broker.policy`, `broker.instance_exists`, `broker.tee` (not a registry TEE), `broker.host_data` (a
   * given value of the wrong length or all zero), `broker.host_data_exists` (a given value already
   * registered).
   */
  registerInstance(req: RegisterInstanceRequest): Promise<InstanceView> {
    const ctx = newContext();
    return this.decide('register', ctx, async () => {
      const identity = checkIdentity(req);
      Object.assign(ctx.details, identity);
      const policy = checkPolicy(req.policy);
      const newLaunch = checkNewLaunch(req.newLaunch ?? 'takeover');
      ctx.details.newLaunch = newLaunch;
      const tee = checkRegistryTee(req.tee ?? 'snp');
      ctx.details.tee = tee;
      const given = checkGivenIdentityValue(tee, req.hostData);
      for (let attempt = 0; ; attempt++) {
        const id = randomUUID();
        const hostData = given ?? new Uint8Array(randomBytes(REGISTRY_IDENTITY[tee].bytes));
        const createdAt = this.now();
        const rec = { id, ...identity, hostData, tee, policy, createdAt, newLaunch };
        const outcome = await this.store.transaction(async (tx) => {
          const r = await tx.insertInstance(rec);
          if (r === 'inserted') {
            ctx.instance = id;
            await tx.appendAudit(
              this.entry('register', ctx, 'accept', ['broker.registered'], { hostData: toHex(hostData) }),
            );
          }
          return r;
        });
        if (outcome === 'inserted') return view({ ...rec, committedCounter: null, activeBoot: null });
        if (outcome === 'duplicate_identity') {
          throw new InvalidArgument(
            'broker.instance_exists',
            'an instance with this project/zone/instanceId exists',
          );
        }
        // A chosen value names one instance only: two registrations of one Azure VM would share its key.
        if (given) {
          throw new InvalidArgument(
            'broker.host_data_exists',
            `another instance has this ${REGISTRY_IDENTITY[tee].field}`,
          );
        }
        // A 256-bit collision means a broken RNG; do not loop forever on one.
        if (attempt >= 2) throw new Error('HOST_DATA collided three times: the random source is broken');
      }
    });
  }

  async getInstance(id: string): Promise<InstanceView | undefined> {
    const r = await this.store.getInstance(id);
    return r && view(r);
  }

  async listInstances(): Promise<InstanceView[]> {
    return (await this.store.listInstances()).map(view);
  }

  /** The instance's sealing-key versions (no key material), oldest first. */
  async keyVersions(instanceId: string): Promise<{ version: number; createdAt: number; kekId: string }[]> {
    return (await this.store.listKeys(instanceId)).map((k) => ({
      version: k.version,
      createdAt: k.createdAt,
      kekId: k.kekId,
    }));
  }

  /** Replaces an instance's policy (control plane). Throws InvalidArgument `broker.instance_not_found`, `broker.policy`. */
  setInstancePolicy(id: string, policy: JsonValue): Promise<void> {
    const ctx = newContext();
    return this.decide('policy', ctx, async () => {
      const p = checkPolicy(policy);
      await this.store.transaction(async (tx) => {
        await this.lockKnown(tx, id, ctx);
        await tx.setPolicy(id, p);
        const digest = createHash('sha256').update(JSON.stringify(p)).digest('hex');
        await tx.appendAudit(
          this.entry('policy', ctx, 'accept', ['broker.policy_set'], { policyDigest: digest }),
        );
      });
    });
  }

  /**
   * Sets what a new launch of the instance does while another launch holds a live lease (docs/broker.md
   * "Leases"). Throws InvalidArgument `broker.instance_not_found`, `broker.new_launch`.
   */
  setNewLaunch(id: string, newLaunch: NewLaunchPolicy): Promise<void> {
    const ctx = newContext();
    return this.decide('new_launch', ctx, async () => {
      const p = checkNewLaunch(newLaunch);
      await this.store.transaction(async (tx) => {
        await this.lockKnown(tx, id, ctx);
        await tx.setNewLaunch(id, p);
        await tx.appendAudit(
          this.entry('new_launch', ctx, 'accept', ['broker.new_launch_set'], { newLaunch: p }),
        );
      });
    });
  }

  /**
   * Creates the next sealing-key version; older versions are kept (a key once released is never lost).
   * Throws InvalidArgument `broker.instance_not_found`.
   */
  rotateKey(instanceId: string): Promise<{ keyVersion: number }> {
    const ctx = newContext();
    return this.decide('rotate', ctx, () =>
      this.store.transaction(async (tx) => {
        await this.lockKnown(tx, instanceId, ctx);
        const latest = await tx.latestKey(instanceId);
        const version = (latest?.version ?? 0) + 1;
        const fresh = await createSealingKey(this.kek, instanceId, version, this.now());
        fresh.key.fill(0);
        if (!(await tx.insertKeyIfAbsent(fresh.record))) {
          throw new Error(`sealing key ${instanceId} v${version} appeared while the instance was locked`);
        }
        await tx.appendAudit(
          this.entry('rotate', ctx, 'accept', ['broker.key_rotated'], { keyVersion: version }),
        );
        return { keyVersion: version };
      }),
    );
  }

  /**
   * Ends the instance's active boot, if any: the host's VMM backend calls this (admin API, its admin
   * credential, never the guest path) when the VM stops, so that under the `refuse` new-launch policy the
   * next launch need not wait for the lease to run out (docs/broker.md "Leases"). `note` (at most 200 characters kept) goes into the audit
   * entry. Throws InvalidArgument `broker.instance_not_found`.
   */
  resetBoot(instanceId: string, note?: string): Promise<{ hadActiveBoot: boolean }> {
    const ctx = newContext(note === undefined ? {} : { note: String(note).slice(0, NOTE_MAX) });
    return this.decide('reset', ctx, () =>
      this.store.transaction(async (tx) => {
        const st = await this.lockKnown(tx, instanceId, ctx);
        const had = st.activeBoot !== null;
        ctx.details.bootId = st.activeBoot?.bootId ?? null;
        const state: BootState = {
          committedCounter: st.committedCounter,
          committedDigest: st.committedDigest ?? null,
          activeBoot: null,
        };
        await tx.appendAudit(
          this.entry('reset', ctx, 'accept', ['broker.boot_reset'], { hadActiveBoot: had }),
          { bootState: { instanceId, state } },
        );
        return { hadActiveBoot: had };
      }),
    );
  }

  // ---- release ---------------------------------------------------------------------------------------

  /**
   * Decides a key release, in this order: consume the challenge; verify the evidence (injected); check
   * its report data (SEV-SNP REPORT_DATA) against `expectedReportData`; find the instance by the
   * evidence's identity-bearing field (SEV-SNP HOST_DATA) and lock it; appraise (injected); apply the
   * rollback/clone rules; get or create the sealing key; start the boot; audit. The last six happen in one
   * store transaction with the instance locked, so concurrent first boots create one key and the policy
   * appraised is the one in force when the decision commits.
   */
  async release(req: ReleaseRequest): Promise<ReleaseResult> {
    const ctx = newContext();
    // Every key unwrapped on the way: zeroed if the release fails, even after the transaction body
    // finished (a failed COMMIT must not leave key bytes behind).
    const keys: Uint8Array[] = [];
    try {
      return await this.decide('release', ctx, () => this.releaseSteps(req, ctx, keys));
    } catch (e) {
      for (const k of keys) k.fill(0);
      throw e;
    }
  }

  private async releaseSteps(
    req: ReleaseRequest,
    ctx: AuditContext,
    keys: Uint8Array[],
  ): Promise<ReleaseResult> {
    checkReleaseRequest(req);
    ctx.evidenceDigest = toHex(sha256(req.report));
    ctx.details.statedCounter = req.stateCounter;
    if (req.stateDigest) ctx.details.statedDigest = toHex(req.stateDigest);

    // Step 1: the challenge is ours, unused and fresh. Consumed whatever happens next.
    const found = await this.store.consumeChallenge(sha256(req.challenge));
    if (!found) throw new BrokerRefused('broker.challenge_unknown');
    if (found.expiresAt <= this.now()) throw new BrokerRefused('broker.challenge_expired');

    // Step 2: the evidence is signed by a genuine TEE (injected verifier; TEE-independent claims out).
    const evidence = await this.verifyEvidence(req.tee, req.report, req.certTable);
    const claims = evidence.claims;
    if (claims.tee !== req.tee) throw new NotSupported('broker.tee', 'the verifier answered for another TEE');

    // Step 3: the report data binds our challenge, the guest's fresh key and its stated counter.
    if (!(claims.reportData instanceof Uint8Array) || !ctEqual(claims.reportData, req.expectedReportData))
      throw new BrokerRefused('broker.report_data_mismatch');
    req.onBound?.();

    // Step 4: the identity-bearing field (SEV-SNP HOST_DATA, TDX MRCONFIGID) names an instance registered
    // for that TEE (naming only; the host chose it). Looked up by (registry TEE, value): a value registered
    // for another TEE never matches, whatever its length. Evidence without one cannot name an instance.
    const how = registryIdentityOf(claims.tee);
    const named = claims.identityField;
    if (
      !how ||
      named?.name !== how.field ||
      !(named.value instanceof Uint8Array) ||
      named.value.length !== how.bytes
    )
      throw new BrokerRefused('broker.unknown_instance');
    // Found, locked and read in the decision's transaction (one store round trip with the newest key): the
    // policy appraised and the boot state judged are the ones no other decision can change before this one
    // commits (a policy set while this release was being verified applies to it).
    const released = await this.store.transaction(async (tx) => {
      const locked = await tx.lockInstanceByIdentityWithLatestKey(how.registryTee, named.value);
      if (!locked) throw new BrokerRefused('broker.unknown_instance');
      // Before the instance is named in ctx: a turned-away release is not audited (nor appraised).
      this.admitInstance(locked.instance.id);
      ctx.instance = locked.instance.id;

      // Step 5: the instance's policy accepts the evidence (injected appraiser; every failure listed).
      const failures = await this.appraise(evidence, locked.instance.policy);
      if (failures.length > 0) throw new PolicyRejected(failures);
      return this.startBoot(tx, locked, req, claims, ctx, keys);
    });
    return { ...released, evidence: claims };
  }

  /** Steps 6-8, inside the transaction with the instance row locked. */
  private async startBoot(
    tx: StoreTx,
    locked: LockedInstance,
    req: ReleaseRequest,
    claims: EvidenceClaims,
    ctx: AuditContext,
    keys: Uint8Array[],
  ): Promise<Omit<ReleaseResult, 'evidence'>> {
    const st = locked.instance;
    const instanceId = st.id;
    // Read the clock only once the lock is held: a transaction that waited for the lock must judge the
    // lease the previous holder just wrote against the time after that write, not before it.
    const now = this.now();

    // Step 6: rollback rules, then the lease rules (same launch, expired lease, new-launch policy).
    const launchId = launchIdOf(claims);
    if (launchId) ctx.details.launchId = toHex(launchId);
    const decision = decideBoot(
      st,
      st.newLaunch ?? 'takeover',
      { counter: req.stateCounter, digest: req.stateDigest ?? null },
      launchId,
      now,
    );
    if (!decision.ok)
      throw new BrokerRefused(decision.reason, undefined, bootRefusalDetails(decision.reason, st));
    // The answer must be deliverable before the release is decided: an identity the 0.2.0 wire cannot
    // carry (registered before byte lengths were checked) would make the proxy fail after the audit log
    // said "released", and every retry a clone.
    if (!identityFits(st)) throw new BrokerRefused('broker.identity_unencodable');

    // Step 7: the sealing key, created at the first accepted boot (insert-if-absent under the lock).
    const reasons = ['broker.released', ...START_REASONS[decision.start]];
    {
      let latest = locked.latestKey;
      let key: Uint8Array;
      if (latest) {
        key = await openSealingKey(this.kek, latest);
      } else {
        const fresh = await createSealingKey(this.kek, instanceId, 1, now);
        if (await tx.insertKeyIfAbsent(fresh.record)) {
          latest = fresh.record;
          key = fresh.key;
          reasons.push('broker.key_created');
        } else {
          fresh.key.fill(0);
          latest = (await tx.latestKey(instanceId))!;
          key = await openSealingKey(this.kek, latest);
        }
      }
      keys.push(key);
      let stateKey: ReleaseResult['stateKey'];
      if (req.stateKeyVersion !== undefined && req.stateKeyVersion !== latest.version) {
        const rec = await tx.getKey(instanceId, req.stateKeyVersion);
        if (!rec) throw new BrokerRefused('broker.key_version_unknown');
        const older = await openSealingKey(this.kek, rec);
        keys.push(older);
        stateKey = { key: older, keyVersion: rec.version };
      }

      // Step 8: start (or continue) the boot and record the decision, in the same transaction. The same
      // launch keeps its boot id with a fresh token; `allow` leaves the live boot alone and records none.
      const prior = st.activeBoot;
      const sameLaunch = decision.start === 'same_launch' && prior !== null;
      const bootId = sameLaunch ? prior.bootId : randomUUID();
      const commitToken = pooledRandomFill(new Uint8Array(TOKEN_BYTES));
      const leaseExpiresAt = decision.start === 'unleased' ? now : now + this.leaseMs;
      const bootState: BootState = {
        committedCounter: st.committedCounter,
        committedDigest: st.committedDigest ?? null,
        activeBoot: {
          bootId,
          startedAt: sameLaunch ? prior.startedAt : now,
          leaseExpiresAt,
          tokenHash: sha256(commitToken),
          launchId,
        },
      };
      await tx.appendAudit(
        this.entry('release', ctx, 'accept', reasons, {
          bootId,
          keyVersion: latest.version,
          stateKeyVersion: stateKey?.keyVersion ?? null,
          committedCounter: st.committedCounter,
          ...(prior && !sameLaunch ? { previousBootId: prior.bootId } : {}),
        }),
        decision.start === 'unleased' ? {} : { bootState: { instanceId, state: bootState } },
      );
      return {
        key,
        keyVersion: latest.version,
        ...(stateKey ? { stateKey } : {}),
        instance: identityOf(st),
        policy: st.policy,
        bootId,
        commitToken,
        committedCounter: st.committedCounter,
        leaseExpiresAt,
      };
    }
  }

  // ---- boot lifecycle (guest, through the wire layer) -------------------------------------------------

  /**
   * Commits the guest's next state version: its counter and the SHA-256 of the sealed file (`stateDigest`),
   * so that only that file can later state this counter. Must come from the active boot with its token, and
   * the counter must move forward (above the committed one; it may skip: a guest that recovered from
   * `broker.state_ahead` skips the counter of the version it abandoned). Also renews the lease. Throws
   * BrokerRefused `broker.boot_unknown`, `broker.commit_token`, `broker.counter_mismatch`; InvalidArgument
   * `broker.state_counter`, `broker.state_digest`.
   */
  commit(
    bootId: string,
    commitToken: Uint8Array,
    newCounter: number,
    stateDigest: Uint8Array,
  ): Promise<{ committedCounter: number; leaseExpiresAt: number }> {
    const ctx = newContext({
      bootId: String(bootId).slice(0, 64),
      newCounter: Number.isFinite(newCounter) ? newCounter : null,
    });
    return this.decide('commit', ctx, async () => {
      checkBootArgs(bootId, commitToken);
      if (!Number.isSafeInteger(newCounter) || newCounter < 1) {
        throw new InvalidArgument('broker.state_counter', 'counter must be a positive integer');
      }
      checkStateDigest(stateDigest);
      ctx.details.stateDigest = toHex(stateDigest);
      return this.store.transaction(async (tx) => {
        const st = await this.lockBoot(tx, bootId, commitToken, ctx, { auditHead: true });
        if (newCounter <= (st.committedCounter ?? 0)) throw new BrokerRefused('broker.counter_mismatch');
        const leaseExpiresAt = this.now() + this.leaseMs;
        const state: BootState = {
          committedCounter: newCounter,
          committedDigest: Uint8Array.from(stateDigest),
          activeBoot: { ...st.activeBoot!, leaseExpiresAt },
        };
        await tx.appendAudit(this.entry('commit', ctx, 'accept', ['broker.committed'], {}), {
          bootState: { instanceId: st.id, state },
        });
        return { committedCounter: newCounter, leaseExpiresAt };
      });
    });
  }

  /**
   * Renews the active boot's lease. Successful heartbeats are not audited (they decide nothing); refusals
   * are. Throws BrokerRefused `broker.boot_unknown` (superseded, ended or reset: the guest must stop),
   * `broker.commit_token`.
   */
  heartbeat(bootId: string, commitToken: Uint8Array): Promise<{ leaseExpiresAt: number }> {
    const ctx = newContext({ bootId: String(bootId).slice(0, 64) });
    return this.decide('heartbeat', ctx, async () => {
      checkBootArgs(bootId, commitToken);
      return this.store.transaction(async (tx) => {
        const st = await this.lockBoot(tx, bootId, commitToken, ctx, {});
        const leaseExpiresAt = this.now() + this.leaseMs;
        await tx.setBootState(st.id, {
          committedCounter: st.committedCounter,
          committedDigest: st.committedDigest ?? null,
          activeBoot: { ...st.activeBoot!, leaseExpiresAt },
        });
        return { leaseExpiresAt };
      });
    });
  }

  /** Ends the active boot (clean shutdown). Throws BrokerRefused `broker.boot_unknown`, `broker.commit_token`. */
  end(bootId: string, commitToken: Uint8Array): Promise<void> {
    const ctx = newContext({ bootId: String(bootId).slice(0, 64) });
    return this.decide('end', ctx, async () => {
      checkBootArgs(bootId, commitToken);
      await this.store.transaction(async (tx) => {
        const st = await this.lockBoot(tx, bootId, commitToken, ctx, { auditHead: true });
        const state: BootState = {
          committedCounter: st.committedCounter,
          committedDigest: st.committedDigest ?? null,
          activeBoot: null,
        };
        await tx.appendAudit(this.entry('end', ctx, 'accept', ['broker.boot_ended'], {}), {
          bootState: { instanceId: st.id, state },
        });
      });
    });
  }

  // ---- audit -----------------------------------------------------------------------------------------

  readAudit(afterSeq = 0, limit = 1000): Promise<AuditEntry[]> {
    return this.store.readAudit(afterSeq, limit);
  }

  /** Recomputes the whole hash chain; see store/audit-verify.ts for what it detects. */
  verifyAuditChain(): Promise<AuditVerification> {
    return verifyAuditChain(this.store);
  }

  // ---- internals -------------------------------------------------------------------------------------

  /**
   * Runs one decision; a refusal (any throw) is written to the audit log, then rethrown unchanged. A guest
   * refusal that never named a real instance or boot is not audited (anyone can send those, as often as
   * they like): it goes to `onUnattributedRefusal` instead.
   */
  private async decide<T>(kind: string, ctx: AuditContext, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (ctx.instance === null && GUEST_KINDS.has(kind)) {
        if (typeof e === 'object' && e !== null) this.unattributed.add(e);
        this.onUnattributedRefusal(kind, e);
        throw e;
      }
      try {
        await this.store.transaction((tx) =>
          tx.appendAudit(this.entry(kind, ctx, 'refuse', refusalReasons(e), refusalDetails(e))),
        );
      } catch (auditErr) {
        this.onAuditFailure(auditErr);
      }
      throw e;
    }
  }

  private entry(
    kind: string,
    ctx: AuditContext,
    decision: 'accept' | 'refuse',
    reasons: readonly string[],
    details: Record<string, AuditDetailValue>,
  ) {
    // An admin action names the credential it was done with (src/broker/actor.ts; docs/access.md).
    const actor = currentActor();
    if (actor) actor.audited = true;
    return {
      time: this.now(),
      kind,
      instance: ctx.instance,
      decision,
      reasons,
      evidenceDigest: ctx.evidenceDigest,
      details: { ...ctx.details, ...details, ...(actor ? { actor: actor.actor } : {}) },
    };
  }

  private async lockKnown(tx: StoreTx, id: string, ctx: AuditContext): Promise<InstanceWithState> {
    if (typeof id !== 'string')
      throw new InvalidArgument('broker.instance_not_found', 'instance id must be a string');
    const st = await tx.lockInstance(id);
    if (!st) throw new InvalidArgument('broker.instance_not_found', `no instance ${id}`);
    ctx.instance = id;
    return st;
  }

  /**
   * Locks the instance whose active boot is `bootId` and checks the token (constant time, by hash). `o`:
   * whether the caller appends an audit entry on success (store LockOptions).
   */
  private async lockBoot(
    tx: StoreTx,
    bootId: string,
    token: Uint8Array,
    ctx: AuditContext,
    o: LockOptions,
  ): Promise<InstanceWithState> {
    const st = await tx.lockInstanceByBoot(bootId, o);
    if (!st?.activeBoot) throw new BrokerRefused('broker.boot_unknown');
    ctx.instance = st.id;
    if (!ctEqual(sha256(token), st.activeBoot.tokenHash)) throw new BrokerRefused('broker.commit_token');
    return st;
  }
}

/** Acceptance reasons beside `broker.released`, by how the boot started. */
const START_REASONS: Readonly<Record<BootStart, readonly string[]>> = {
  new: [],
  expired: ['broker.expired_boot_replaced'],
  same_launch: ['broker.same_launch'],
  takeover: ['broker.boot_superseded'],
  unleased: ['broker.concurrent_launch'],
};

/**
 * The launch id of verified evidence, when it has a usable one: 1..64 bytes, not all zero (firmware draws
 * REPORT_ID at random; all zeros would make every launch "the same", so it counts as none).
 */
function launchIdOf(c: EvidenceClaims): Uint8Array | null {
  const v = c.launchId?.value;
  if (!(v instanceof Uint8Array) || v.length === 0 || v.length > 64 || v.every((b) => b === 0)) return null;
  return Uint8Array.from(v);
}

/** What the audit entry of a rollback/state-ahead/clone refusal records: the stored side of the comparison. */
function bootRefusalDetails(
  reason: BootRefusalReason,
  st: InstanceWithState,
): Record<string, AuditDetailValue> {
  if (reason === 'broker.clone') {
    const b = st.activeBoot!;
    return {
      activeBootId: b.bootId,
      activeLeaseExpiresAt: b.leaseExpiresAt,
      activeLaunchId: b.launchId ? toHex(b.launchId) : null,
      newLaunch: st.newLaunch ?? 'takeover',
    };
  }
  return {
    committedCounter: st.committedCounter,
    committedDigest: st.committedDigest ? toHex(st.committedDigest) : null,
  };
}

/** Each registry TEE's identity field: its name in the claims and its length. */
const REGISTRY_IDENTITY: Readonly<Record<RegistryTee, { readonly field: string; readonly bytes: number }>> = {
  snp: { field: 'HOST_DATA', bytes: 32 },
  tdx: { field: 'MRCONFIGID', bytes: 48 },
};

function checkRegistryTee(v: unknown): RegistryTee {
  if (typeof v === 'string' && (REGISTRY_TEES as readonly string[]).includes(v)) return v as RegistryTee;
  throw new InvalidArgument('broker.tee', `tee must be one of ${REGISTRY_TEES.join(', ')}`);
}

/**
 * A given identity value: exactly the TEE's field length, and not all zero (an all-zero MRCONFIGID or
 * HOST_DATA is what a VMM sets when told nothing, so it would name every unconfigured launch).
 */
function checkGivenIdentityValue(tee: RegistryTee, v: unknown): Uint8Array | undefined {
  if (v === undefined) return undefined;
  const { field, bytes } = REGISTRY_IDENTITY[tee];
  if (!(v instanceof Uint8Array) || v.length !== bytes || v.every((b) => b === 0)) {
    throw new InvalidArgument('broker.host_data', `${field} must be ${bytes} bytes, not all zero`);
  }
  return Uint8Array.from(v);
}

function checkNewLaunch(v: unknown): NewLaunchPolicy {
  if (typeof v === 'string' && (NEW_LAUNCH_POLICIES as readonly string[]).includes(v))
    return v as NewLaunchPolicy;
  throw new InvalidArgument(
    'broker.new_launch',
    `newLaunch must be one of ${NEW_LAUNCH_POLICIES.join(', ')}`,
  );
}

function refusalReasons(e: unknown): string[] {
  if (e instanceof PolicyRejected) return e.failures.map((f) => f.code);
  if (e instanceof AttestationError) return [e.reason];
  return ['broker.internal'];
}

/**
 * A policy refusal's expected and actual values, one detail per failed check (`failure.<code>`, at most 512
 * characters): the HTTP answer leaves them out (src/api/http-errors.ts), the audit entry keeps them for
 * the operator.
 */
function refusalDetails(e: unknown): Record<string, AuditDetailValue> {
  const out: Record<string, AuditDetailValue> = {};
  if (e instanceof BrokerRefused) return { ...e.details };
  if (!(e instanceof PolicyRejected)) return out;
  for (const f of e.failures) {
    if (f.expected === undefined && f.actual === undefined) continue;
    const key = `failure.${f.code}`;
    const text = `expected ${f.expected ?? '-'}; actual ${f.actual ?? '-'}`;
    const prior = out[key];
    out[key] = (typeof prior === 'string' ? `${prior} | ${text}` : text).slice(0, 512);
  }
  return out;
}

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v <= 0)
    throw new InvalidArgument('broker.config', `${name} must be a positive integer`);
  return v;
}

function identityOf(r: InstanceWithState): RegisteredInstance {
  return {
    id: r.id,
    project: r.project,
    zone: r.zone,
    instanceId: r.instanceId,
    instanceName: r.instanceName,
  };
}

function view(r: InstanceWithState): InstanceView {
  const b = r.activeBoot;
  return {
    ...identityOf(r),
    tee: r.tee ?? 'snp',
    identityField: REGISTRY_IDENTITY[r.tee ?? 'snp'].field,
    hostData: r.hostData,
    policy: r.policy,
    createdAt: r.createdAt,
    newLaunch: r.newLaunch ?? 'takeover',
    committedCounter: r.committedCounter,
    activeBoot: b && {
      bootId: b.bootId,
      startedAt: b.startedAt,
      leaseExpiresAt: b.leaseExpiresAt,
      launchId: b.launchId ? toHex(b.launchId) : null,
    },
  };
}

function checkIdentity(req: RegisterInstanceRequest) {
  const out = {
    project: req?.project,
    zone: req?.zone,
    instanceId: req?.instanceId,
    instanceName: req?.instanceName,
  };
  for (const [k, v] of Object.entries(out)) {
    if (!identityFieldFits(v)) {
      throw new InvalidArgument(
        'broker.identity',
        `${k} must be a non-empty printable string of at most ${IDENTITY_MAX_BYTES} UTF-8 bytes`,
      );
    }
  }
  return out as { project: string; zone: string; instanceId: string; instanceName: string };
}

/**
 * 1..256 UTF-8 bytes, well-formed UTF-16 (a lone surrogate would be sent as U+FFFD, not as registered),
 * no control characters.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function identityFieldFits(v: unknown): v is string {
  return (
    typeof v === 'string' &&
    v.length > 0 &&
    !LONE_SURROGATE.test(v) &&
    Buffer.byteLength(v, 'utf8') <= IDENTITY_MAX_BYTES &&
    !/[\u0000-\u001f\u007f]/.test(v)
  );
}

function identityFits(r: InstanceWithState): boolean {
  return [r.project, r.zone, r.instanceId, r.instanceName].every(identityFieldFits);
}

function checkStateDigest(d: unknown): void {
  if (!(d instanceof Uint8Array) || d.length !== STATE_DIGEST_BYTES) {
    throw new InvalidArgument('broker.state_digest', `stateDigest must be ${STATE_DIGEST_BYTES} bytes`);
  }
}

/** The policy as it will be stored: JSON round-tripped, so what the appraiser sees is what was stored. */
function checkPolicy(policy: unknown): JsonValue {
  let text: string | undefined;
  try {
    text = JSON.stringify(policy);
  } catch {
    text = undefined;
  }
  if (text === undefined || policy === undefined) {
    throw new InvalidArgument('broker.policy', 'policy must be a JSON value');
  }
  return JSON.parse(text) as JsonValue;
}

function checkReleaseRequest(req: ReleaseRequest): void {
  assertSupportedTee(req?.tee, 'broker.tee');
  if (!(req.report instanceof Uint8Array)) throw new InvalidArgument('broker.report', 'report must be bytes');
  if (req.certTable !== undefined && !(req.certTable instanceof Uint8Array)) {
    throw new InvalidArgument('broker.cert_table', 'certTable must be bytes');
  }
  if (!(req.challenge instanceof Uint8Array) || req.challenge.length < MIN_CHALLENGE_BYTES) {
    throw new InvalidArgument('broker.challenge', `challenge must be at least ${MIN_CHALLENGE_BYTES} bytes`);
  }
  if (
    !(req.expectedReportData instanceof Uint8Array) ||
    req.expectedReportData.length !== REPORT_DATA_BYTES
  ) {
    throw new InvalidArgument('broker.expected_report_data', 'expectedReportData must be 64 bytes');
  }
  if (req.stateCounter !== null && !(Number.isSafeInteger(req.stateCounter) && req.stateCounter >= 0)) {
    throw new InvalidArgument('broker.state_counter', 'stateCounter must be null or a non-negative integer');
  }
  // A stated counter comes with the digest of its file; no state, no digest.
  if (req.stateCounter === null) {
    if (req.stateDigest !== undefined && req.stateDigest !== null) {
      throw new InvalidArgument('broker.state_digest', 'stateDigest without a stateCounter');
    }
  } else checkStateDigest(req.stateDigest);
  if (
    req.stateKeyVersion !== undefined &&
    !(Number.isSafeInteger(req.stateKeyVersion) && req.stateKeyVersion >= 1)
  ) {
    throw new InvalidArgument('broker.key_version', 'stateKeyVersion must be a positive integer');
  }
}

function checkBootArgs(bootId: string, token: Uint8Array): void {
  if (typeof bootId !== 'string' || bootId.length === 0 || bootId.length > 64) {
    throw new InvalidArgument('broker.boot_id', 'bootId must be a boot id string');
  }
  if (!(token instanceof Uint8Array) || token.length !== TOKEN_BYTES) {
    throw new InvalidArgument('broker.commit_token_format', `commit token must be ${TOKEN_BYTES} bytes`);
  }
}
