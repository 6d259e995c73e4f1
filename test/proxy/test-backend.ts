/**
 * An in-test ProxyBackend: a miniature broker that really verifies the REPORT_DATA binding (against a fake
 * report that carries REPORT_DATA at the SNP offset 0x50), really wraps the secret to the guest's key,
 * signs 0.2.0 responses, and keeps a committed counter for rollback/clone checks. It is not the broker (that
 * lives in src/broker); it exists so the proxy and guest can be tested end to end without it.
 */
import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { signAttestationResponse, signCommit } from '../../src/crypto/broker-signature.js';
import { wrapSecret } from '../../src/crypto/jwe-ecdh-es.js';
import { BindingMismatch, MalformedEvidence, PolicyRejected } from '../../src/errors.js';
import { computeReportData } from '../../src/formats/aproxy/report-data.js';
import { encodeSecretPayload } from '../../src/formats/aproxy/secret-payload.js';
import type { InstanceIdentity, NegotiationParam } from '../../src/formats/aproxy/types.js';
import type {
  AttestationResult,
  AttestInput,
  BackendContext,
  CommitInput,
  CommitResult,
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
  readonly identity?: InstanceIdentity | null;
  /** Injected faults. */
  readonly fail?: Partial<Record<'negotiate' | 'attest' | 'commit', 'throw' | 'hang' | 'refuse'>>;
  /** Params to ask for, per version (default: KBS order, plus StateCounter in 0.2.0). */
  readonly params?: Partial<Record<'0.1.0' | '0.2.0', NegotiationParam[]>>;
}

interface Pending {
  readonly instance: string;
  readonly token: Uint8Array;
  readonly stated: bigint | null;
  readonly committedAtAttest: bigint | null;
}

export class TestBroker implements ProxyBackend {
  readonly secret: Uint8Array;
  /** The last counter each instance (keyed by HOST_DATA hex) committed. */
  readonly committed = new Map<string, bigint>();
  readonly calls = { negotiate: 0, attest: 0, commit: 0 };
  private readonly challenges = new Map<string, NegotiationParam[]>();
  private readonly pending = new Map<string, Pending>();

  constructor(readonly opts: TestBrokerOptions = {}) {
    this.secret = opts.secret ?? new Uint8Array(randomBytes(32));
  }

  private async fault(step: 'negotiate' | 'attest' | 'commit', signal: AbortSignal): Promise<void> {
    const f = this.opts.fail?.[step];
    if (f === 'throw') throw new Error('backend exploded (ECONNREFUSED 10.0.0.1:8443)');
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
        : (['EcPublicKeyBytes', 'Challenge', 'StateCounter'] as NegotiationParam[]));
    this.challenges.set(toHex(challenge), params);
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
      ...(req.version === '0.2.0' ? { stateCounter: req.stateCounter ?? null } : {}),
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
    const bootId = `boot-${toHex(randomBytes(8))}`;
    const token = new Uint8Array(randomBytes(32));
    this.pending.set(bootId, { instance, token, stated, committedAtAttest: committed });
    const sealed = await wrapSecret(
      req.key,
      encodeSecretPayload({ secret: this.secret, bootId, commitToken: token }),
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
        })
      : null;
    return { outcome: 'committed', signature };
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
