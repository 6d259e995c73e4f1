/**
 * An in-test ProxyBackend: a miniature broker that really verifies the REPORT_DATA binding (against a fake
 * report that carries REPORT_DATA at the SNP offset 0x50), really wraps the secret to the guest's key,
 * signs 0.2.0 responses, and keeps a committed counter for rollback/clone checks. It is not the broker (that
 * lives in src/broker); it exists so the proxy and guest can be tested end to end without it.
 */
import { createHash, type KeyObject, randomBytes, sign } from 'node:crypto';
import {
  AttestationError,
  BindingMismatch,
  ErrorCode,
  MalformedEvidence,
  PolicyRejected,
  Unavailable,
} from '../../src/errors.js';
import { computeReportData, PARAMS_0_2_0 } from '../../src/formats/aproxy/report-data.js';
import { encodeSecretPayload } from '../../src/formats/aproxy/secret-payload.js';
import { encodeLeaseSignedContent } from '../../src/formats/aproxy/signed-content.js';
import type { NegotiationParam } from '../../src/formats/aproxy/types.js';
import type { PlatformIdentity } from '../../src/formats/platform-identity.js';
import { signAttestationResponse, signCommit } from '../../src/native/broker-signature.js';
import { wrapSecret } from '../../src/native/jwe-ecdh-es.js';
import type {
  AttestationResult,
  AttestInput,
  BackendContext,
  CommitInput,
  CommitResult,
  EndResult,
  HeartbeatResult,
  LeaseInput,
  NegotiateInput,
  NegotiateResult,
  ProxyBackend,
} from '../../src/proxy/backend.js';
import { ctEqual, toHex } from '../../src/util/bytes.js';

export const REPORT_SIZE = 0x4a0;
export const REPORT_DATA_OFFSET = 0x50;
/** SNP HOST_DATA (32 bytes at 0xC0): the fake provider puts an instance tag there; the broker keys state by it. */
export const HOST_DATA_OFFSET = 0xc0;

export interface TestBrokerOptions {
  readonly secret?: Uint8Array;
  /** Signs 0.2.0 responses and commits with this P-384 key. */
  readonly signingKey?: KeyObject;
  readonly identity?: PlatformIdentity | null;
  /** Injected faults ('unavailable': throws a typed Unavailable, as the native backend does). */
  readonly fail?: Partial<Record<Step, 'throw' | 'hang' | 'refuse' | 'unavailable'>>;
  /** Lease length for heartbeats (default 300 000 ms). */
  readonly leaseMs?: number;
  /** Params to ask for, per version (default: KBS order, plus StateCounter in 0.2.0). */
  readonly params?: Partial<Record<'0.1.0' | '0.2.0', NegotiationParam[]>>;
}

type Step = 'negotiate' | 'attest' | 'commit' | 'heartbeat' | 'end';

interface Boot {
  readonly instance: string;
  readonly token: Uint8Array;
}

interface Pending {
  readonly instance: string;
  readonly token: Uint8Array;
  readonly stated: bigint | null;
  readonly committedAtAttest: bigint | null;
}

export class TestBroker implements ProxyBackend {
  /** Sealing secrets by version (index 0 is version 1); rotate() adds one. */
  readonly secrets: Uint8Array[];
  /** The last counter each instance (keyed by HOST_DATA hex) committed. */
  readonly committed = new Map<string, bigint>();
  /** Each instance's active boot (a newer boot replaces it; end removes it). */
  readonly active = new Map<string, string>();
  readonly calls = { negotiate: 0, attest: 0, commit: 0, heartbeat: 0, end: 0 };
  /** What each 0.2.0 attestation stated as its key version (undefined: the field was absent). */
  readonly statedKeyVersions: (number | null | undefined)[] = [];
  /** The challenge of the latest negotiation. */
  lastChallenge: Uint8Array | undefined;
  private readonly challenges = new Map<string, NegotiationParam[]>();
  private readonly pending = new Map<string, Pending>();
  private readonly boots = new Map<string, Boot>();

  constructor(readonly opts: TestBrokerOptions = {}) {
    this.secrets = [opts.secret ?? new Uint8Array(randomBytes(32))];
  }

  /** The newest secret. */
  get secret(): Uint8Array {
    return this.secrets[this.secrets.length - 1]!;
  }

  /** Adds a new key version (as `vouchsafe instance rotate-key` does); returns it. */
  rotate(): number {
    this.secrets.push(new Uint8Array(randomBytes(32)));
    return this.secrets.length;
  }

  private async fault(step: Step, signal: AbortSignal): Promise<void> {
    const f = this.opts.fail?.[step];
    if (f === 'throw') throw new Error('backend exploded (ECONNREFUSED 10.0.0.1:8443)');
    if (f === 'unavailable') throw new Unavailable('native.broker_unreachable', 'cannot reach the broker');
    if (f === 'hang') {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      throw new Error('aborted');
    }
  }

  async negotiate(req: NegotiateInput, ctx: BackendContext): Promise<NegotiateResult> {
    this.calls.negotiate++;
    await this.fault('negotiate', ctx.signal);
    const challenge = new Uint8Array(randomBytes(32));
    const params =
      this.opts.params?.[req.version] ??
      (req.version === '0.1.0'
        ? (['EcPublicKeyBytes', 'Challenge'] as NegotiationParam[])
        : [...PARAMS_0_2_0]);
    this.challenges.set(toHex(challenge), params);
    this.lastChallenge = challenge;
    return { challenge, params };
  }

  async attest(req: AttestInput, ctx: BackendContext): Promise<AttestationResult> {
    this.calls.attest++;
    await this.fault('attest', ctx.signal);
    if (this.opts.fail?.attest === 'refuse') {
      return {
        outcome: 'refused',
        error: new PolicyRejected([
          { code: 'snp.measurement', message: 'measurement not in the allow list' },
        ]),
      };
    }
    const params = this.challenges.get(toHex(req.challenge));
    this.challenges.delete(toHex(req.challenge)); // single use
    if (!params)
      return { outcome: 'refused', error: new BindingMismatch('broker.challenge', 'unknown challenge') };
    if (req.evidence.report.length !== REPORT_SIZE) {
      return { outcome: 'refused', error: new MalformedEvidence('snp.report.size', 'report size') };
    }
    const expected = computeReportData(params, {
      challenge: req.challenge,
      key: req.key,
      ...(req.version === '0.2.0'
        ? { stateCounter: req.stateCounter ?? null, stateDigest: req.stateDigest ?? null }
        : {}),
    });
    const got = req.evidence.report.subarray(REPORT_DATA_OFFSET, REPORT_DATA_OFFSET + 64);
    if (!ctEqual(expected, got)) {
      return {
        outcome: 'refused',
        error: new BindingMismatch('snp.report_data', 'REPORT_DATA does not bind the request'),
      };
    }
    if (req.version === '0.1.0') {
      const sealed = await wrapSecret(req.key, this.secret);
      return {
        outcome: 'released',
        ciphertext: sealed.ciphertext,
        decryption: sealed.decryption,
        token: null,
      };
    }
    const stated = req.stateCounter ?? null;
    const instance = toHex(req.evidence.report.subarray(HOST_DATA_OFFSET, HOST_DATA_OFFSET + 32));
    const committed = this.committed.get(instance) ?? null;
    if (committed !== null && (stated === null || stated < committed)) {
      return {
        outcome: 'refused',
        error: new PolicyRejected([
          { code: 'broker.rollback', message: 'stated counter is behind the committed one' },
        ]),
      };
    }
    this.statedKeyVersions.push(req.stateKeyVersion);
    const current = this.secrets.length;
    let stateKey: { key: Uint8Array; keyVersion: number } | undefined;
    if (typeof req.stateKeyVersion === 'number' && req.stateKeyVersion !== current) {
      const older = this.secrets[req.stateKeyVersion - 1];
      if (!older) {
        return {
          outcome: 'refused',
          error: new AttestationError(ErrorCode.Refused, 'broker.key_version_unknown', 'no such key version'),
        };
      }
      stateKey = { key: older, keyVersion: req.stateKeyVersion };
    }
    const bootId = `boot-${toHex(randomBytes(8))}`;
    const token = new Uint8Array(randomBytes(32));
    this.pending.set(bootId, { instance, token, stated, committedAtAttest: committed });
    this.boots.set(bootId, { instance, token });
    this.active.set(instance, bootId);
    const sealed = await wrapSecret(
      req.key,
      encodeSecretPayload({
        secret: this.secret,
        bootId,
        commitToken: token,
        // Format 2 only for a guest that stated a key version (even null), as the real broker does.
        ...(req.stateKeyVersion === undefined
          ? {}
          : { keyVersion: current, ...(stateKey ? { stateKey } : {}) }),
      }),
    );
    const identity = this.opts.identity ?? null;
    const signature = this.opts.signingKey
      ? signAttestationResponse(this.opts.signingKey, {
          challenge: req.challenge,
          key: req.key,
          decryption: sealed.decryption,
          ciphertext: sealed.ciphertext,
          identity,
          stateCounter: stated,
          stateDigest: req.stateDigest ?? null,
        })
      : null;
    return {
      outcome: 'released',
      ciphertext: sealed.ciphertext,
      decryption: sealed.decryption,
      token: { kind: 'Jwt', value: 'e30.e30.' },
      identity,
      signature,
    };
  }

  async commit(req: CommitInput, ctx: BackendContext): Promise<CommitResult> {
    this.calls.commit++;
    await this.fault('commit', ctx.signal);
    const p = this.pending.get(req.bootId);
    this.pending.delete(req.bootId);
    if (!p || !ctEqual(p.token, req.commitToken)) {
      return {
        outcome: 'refused',
        error: new BindingMismatch('broker.commit_token', 'unknown boot or token'),
      };
    }
    if (req.counter !== (p.stated ?? 0n) + 1n) {
      return {
        outcome: 'refused',
        error: new BindingMismatch('broker.commit_counter', 'counter is not stated + 1'),
      };
    }
    if ((this.committed.get(p.instance) ?? null) !== p.committedAtAttest) {
      // Another boot committed since this one attested: two instances run from one state (a clone).
      return {
        outcome: 'refused',
        error: new PolicyRejected([{ code: 'broker.clone', message: 'state advanced by another boot' }]),
      };
    }
    this.committed.set(p.instance, req.counter);
    const signature = this.opts.signingKey
      ? signCommit(this.opts.signingKey, {
          challenge: req.challenge,
          bootId: req.bootId,
          counter: req.counter,
          stateDigest: req.stateDigest,
        })
      : null;
    return { outcome: 'committed', signature };
  }

  /** The boot if it is still its instance's active boot and the token matches; else the refusal. */
  private checkBoot(req: LeaseInput): Boot | { refused: AttestationError } {
    const boot = this.boots.get(req.bootId);
    if (!boot || this.active.get(boot.instance) !== req.bootId) {
      return {
        refused: new AttestationError(ErrorCode.Refused, 'broker.boot_unknown', 'not the active boot'),
      };
    }
    if (!ctEqual(boot.token, req.commitToken)) {
      return { refused: new AttestationError(ErrorCode.Refused, 'broker.commit_token', 'wrong token') };
    }
    return boot;
  }

  private signLease(op: 'heartbeat' | 'end', req: LeaseInput, leaseExpiresAt: number | null) {
    return this.opts.signingKey
      ? new Uint8Array(
          sign(
            'sha384',
            encodeLeaseSignedContent({ op, nonce: req.nonce, bootId: req.bootId, leaseExpiresAt }),
            { key: this.opts.signingKey, dsaEncoding: 'ieee-p1363' },
          ),
        )
      : null;
  }

  async heartbeat(req: LeaseInput, ctx: BackendContext): Promise<HeartbeatResult> {
    this.calls.heartbeat++;
    await this.fault('heartbeat', ctx.signal);
    const b = this.checkBoot(req);
    if ('refused' in b) return { outcome: 'refused', error: b.refused };
    const leaseExpiresAt = Date.now() + (this.opts.leaseMs ?? 300_000);
    return {
      outcome: 'renewed',
      leaseExpiresAt,
      signature: this.signLease('heartbeat', req, leaseExpiresAt),
    };
  }

  async end(req: LeaseInput, ctx: BackendContext): Promise<EndResult> {
    this.calls.end++;
    await this.fault('end', ctx.signal);
    const b = this.checkBoot(req);
    if ('refused' in b) return { outcome: 'refused', error: b.refused };
    this.active.delete(b.instance);
    return { outcome: 'ended', signature: this.signLease('end', req, null) };
  }
}

/**
 * A report provider that records each REPORT_DATA and returns a 0x4A0-byte fake report carrying it at 0x50,
 * and SHA-256(instance) as HOST_DATA at 0xC0.
 */
export class RecordingProvider {
  readonly seen: Uint8Array[] = [];
  constructor(readonly instance = 'vm-0') {}
  async getReport(reportData: Uint8Array): Promise<{ report: Uint8Array }> {
    this.seen.push(Uint8Array.from(reportData));
    const report = new Uint8Array(REPORT_SIZE);
    report.fill(0xa5);
    report.set(reportData, REPORT_DATA_OFFSET);
    report.set(instanceTag(this.instance), HOST_DATA_OFFSET);
    return { report };
  }
}

export function instanceTag(instance: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(instance).digest());
}
