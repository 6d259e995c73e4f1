import { createHash, randomBytes } from 'node:crypto';
import { Broker } from '../../src/broker/broker.js';
import { AesGcmKek, type KekSource } from '../../src/broker/kek.js';
import type { Appraise, BrokerOptions, InstanceView, ReleaseRequest } from '../../src/broker/types.js';
import type { PolicyFailure } from '../../src/errors.js';
import {
  encodeGuestPolicy,
  encodeReport,
  type ReportFields,
  type SnpReport,
} from '../../src/formats/snp/index.js';
import type { Store } from '../../src/store/types.js';
import { toHex } from '../../src/util/bytes.js';
import { unverifiedTestVerifier } from './unverified-test-verifier.js';

export const MEASUREMENT = new Uint8Array(48).fill(0xa5);

/** An unsigned report (the test verifier does not check signatures) with the given binding fields. */
export function makeReport(f: {
  hostData: Uint8Array;
  reportData: Uint8Array;
  measurement?: Uint8Array;
  /** REPORT_ID, the launch (default: random, a new launch as on real firmware). */
  reportId?: Uint8Array;
}): Uint8Array {
  const zeros = (n: number) => new Uint8Array(n);
  const fields: ReportFields = {
    version: 3,
    guestSvn: 1,
    policy: encodeGuestPolicy({ smt: true, abiMajor: 1 }),
    familyId: zeros(16),
    imageId: zeros(16),
    vmpl: 0,
    signatureAlgo: 1,
    currentTcb: 0n,
    platformInfo: 0n,
    signerInfo: 0,
    reportData: f.reportData,
    measurement: f.measurement ?? MEASUREMENT,
    hostData: f.hostData,
    idKeyDigest: zeros(48),
    authorKeyDigest: zeros(48),
    reportId: f.reportId ?? new Uint8Array(randomBytes(32)),
    reportIdMa: new Uint8Array(32).fill(0xff),
    reportedTcb: 0n,
    cpuid: { family: 0x19, model: 0x01, stepping: 1 },
    chipId: zeros(64),
    committedTcb: 0n,
    currentBuild: 0,
    currentMinor: 0,
    currentMajor: 1,
    committedBuild: 0,
    committedMinor: 0,
    committedMajor: 1,
    launchTcb: 0n,
  };
  return encodeReport(fields);
}

/**
 * TEST ONLY appraiser over a tiny policy shape: {measurement: hex, minGuestSvn?: number}. Returns every
 * failure, like the real one will.
 */
export const testAppraiser: Appraise = (evidence, policy) => {
  const report = evidence.native as SnpReport;
  const p = policy as { measurement?: string; minGuestSvn?: number };
  const failures: PolicyFailure[] = [];
  if (toHex(report.measurement) !== p.measurement) {
    failures.push({
      code: 'snp.measurement',
      message: 'measurement not allowed',
      expected: String(p.measurement),
      actual: toHex(report.measurement),
    });
  }
  if (p.minGuestSvn !== undefined && report.guestSvn < p.minGuestSvn) {
    failures.push({ code: 'snp.guest_svn', message: 'guest SVN too low' });
  }
  return failures;
};

export const goodPolicy = { measurement: toHex(MEASUREMENT) };

/** A test clock: ms since the epoch, moved by hand. */
export class Clock {
  t = 1_750_000_000_000;
  readonly now = () => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

export function testKek(): KekSource {
  const raw = randomBytes(32);
  const kek = new AesGcmKek(raw);
  raw.fill(0);
  return kek;
}

export function makeBroker(
  store: Store,
  over: Partial<BrokerOptions> = {},
): { broker: Broker; clock: Clock } {
  const clock = new Clock();
  const broker = new Broker({
    store,
    kek: testKek(),
    verifyEvidence: unverifiedTestVerifier,
    appraise: testAppraiser,
    now: clock.now,
    ...over,
  });
  return { broker, clock };
}

/**
 * What the wire layer would compute: here simply SHA-512 over challenge || key || counter, standing in for
 * the real binding (which the protocol engineer owns). The broker only compares bytes.
 */
export function reportDataFor(
  challenge: Uint8Array,
  counter: number | null,
  guestKey = 'guest-key',
): Uint8Array {
  return new Uint8Array(
    createHash('sha512')
      .update(challenge)
      .update(guestKey)
      .update(counter === null ? 'null' : String(counter))
      .digest(),
  );
}

/** A well-formed release request for `inst`, with a fresh challenge from `broker`. */
export async function releaseRequest(
  broker: Broker,
  inst: Pick<InstanceView, 'hostData'>,
  stateCounter: number | null,
  over: Partial<ReleaseRequest> & { measurement?: Uint8Array; launch?: Uint8Array } = {},
): Promise<ReleaseRequest> {
  const { challenge } = await broker.issueChallenge();
  const reportData = reportDataFor(challenge, stateCounter);
  const { measurement, launch, ...rest } = over;
  return {
    tee: 'snp',
    report: makeReport({
      hostData: inst.hostData,
      reportData,
      ...(measurement ? { measurement } : {}),
      ...(launch ? { reportId: launch } : {}),
    }),
    challenge,
    expectedReportData: reportData,
    stateCounter,
    ...(stateCounter === null ? {} : { stateDigest: stateDigestFor(stateCounter) }),
    ...rest,
  };
}

/**
 * The digest of "the" state file with this counter in these tests (what a guest would state and commit):
 * the same counter always names the same file, unless a test forks it on purpose.
 */
export function stateDigestFor(counter: number, fork = ''): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`state ${counter}${fork}`).digest());
}

let seq = 0;
export function identity(name = `vm-${++seq}`) {
  return {
    project: 'proj-a',
    zone: 'us-central1-a',
    instanceId: String(1_000_000 + ++seq),
    instanceName: name,
  };
}
