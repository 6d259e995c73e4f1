import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Broker } from '../../src/broker/broker.js';
import type { EvidenceClaims, VerifyEvidence } from '../../src/broker/types.js';
import {
  type BrokerKbsAdapter,
  createBrokerKbsAdapter,
  SEALING_KEY_PATH,
  snpPolicyChecksMeasurement,
} from '../../src/kbs/broker-adapter.js';
import { evaluateResourcePolicy, parseResourcePolicy } from '../../src/kbs/resource-policy.js';
import { MemorySecretStore } from '../../src/kbs/secrets.js';
import type { SnpEarSubject } from '../../src/kbs/tokens/index.js';
import { describeSnpPolicy, type SnpPolicy } from '../../src/policy/snp/index.js';
import { createTeeVerifier } from '../../src/policy/tees.js';
import { SIM_DEFAULT_POLICY, SimSnpFirmware, sharedSimChain } from '../../src/sim/snp/index.js';
import type { JsonValue } from '../../src/store/types.js';
import { toHex } from '../../src/util/bytes.js';
import { rejectsCode, throwsCode } from '../helpers/assert-error.js';

const MEAS = 'ab'.repeat(48);
const subject = (over: Partial<SnpEarSubject> = {}): SnpEarSubject => ({
  jti: 'j',
  status: 'affirming',
  identity: {
    brokerInstanceId: 'i-1',
    project: 'p',
    zone: 'z',
    instanceId: '1',
    instanceName: 'vm',
    source: 'registry',
  },
  measurement: MEAS,
  teePubkey: {},
  ...over,
});

describe('resource policy', () => {
  it('every constraint must be explicit; "any" is how to leave one open', () => {
    throwsCode(() => parseResourcePolicy({ projects: ['p'] }), 'ERR_INVALID_ARGUMENT', 'kbs.resource_policy');
    throwsCode(
      () => parseResourcePolicy({ instances: 'any', projects: [], measurements: 'any' }),
      'ERR_INVALID_ARGUMENT',
      'kbs.resource_policy',
    );
    throwsCode(
      () => parseResourcePolicy({ instances: 'any', projects: 'any', measurements: ['00'] }),
      'ERR_INVALID_ARGUMENT',
      'kbs.resource_policy',
    );
    throwsCode(
      () => parseResourcePolicy({ instances: 'any', projects: 'any', measurements: 'any', extra: 1 }),
      'ERR_INVALID_ARGUMENT',
      'kbs.resource_policy',
    );
    throwsCode(
      () =>
        parseResourcePolicy({ instances: 'any', projects: 'any', measurements: 'any', statuses: ['great'] }),
      'ERR_INVALID_ARGUMENT',
      'kbs.resource_policy',
    );
    const p = parseResourcePolicy({ instances: 'any', projects: 'any', measurements: [MEAS.toUpperCase()] });
    assert.deepEqual(p.statuses, ['affirming'], 'default: affirming results only');
    assert.deepEqual(p.measurements, [MEAS]);
  });

  it('reports every failed constraint', () => {
    const p = parseResourcePolicy({ instances: ['i-2'], projects: ['q'], measurements: ['cd'.repeat(48)] });
    assert.deepEqual(
      evaluateResourcePolicy(p, subject({ status: 'warning' })).map((f) => f.code),
      ['kbs.resource.instance', 'kbs.resource.project', 'kbs.resource.measurement', 'kbs.resource.status'],
    );
    const ok = parseResourcePolicy({ instances: ['i-1'], projects: ['p'], measurements: [MEAS] });
    assert.deepEqual(evaluateResourcePolicy(ok, subject()), []);
    const warn = parseResourcePolicy({
      instances: 'any',
      projects: 'any',
      measurements: 'any',
      statuses: ['warning'],
    });
    assert.deepEqual(evaluateResourcePolicy(warn, subject({ status: 'warning' })), []);
  });

  it('measurement rule detection follows the SNP policy', () => {
    assert.equal(snpPolicyChecksMeasurement({ measurements: [MEAS] }), true);
    assert.equal(snpPolicyChecksMeasurement({ measurements: 'any' }), false);
    assert.equal(snpPolicyChecksMeasurement({}), false);
    assert.equal(snpPolicyChecksMeasurement({ bogus: 1 }), false);
    // Agrees with what describeSnpPolicy (the CLI's account of a policy) says of the rule.
    const policies: JsonValue[] = [
      { measurements: [MEAS, 'cd'.repeat(48)] },
      { measurements: 'any' },
      { allowDebug: true },
      {},
    ];
    for (const p of policies) {
      const rule = describeSnpPolicy(p as unknown as SnpPolicy).find((r) => r.rule === 'measurements');
      assert.equal(snpPolicyChecksMeasurement(p), rule?.enforced, JSON.stringify(p));
    }
  });
});

/**
 * TEST DOUBLE of the Broker's release (the real Broker is exercised in rcar.test.ts): like the real one it
 * verifies the report with its verifier and returns the claims of that verification with the release.
 */
/** A Broker that answers `release` only (the adapter asks it nothing else), with `policy` as appraised. */
function fakeBroker(
  key: Uint8Array,
  commitToken: Uint8Array,
  verifyEvidence: VerifyEvidence,
  policy: JsonValue = null,
) {
  return {
    issueChallenge: async () => ({ challenge: new Uint8Array(32), expiresAt: 0 }),
    release: async (req: { report: Uint8Array; certTable?: Uint8Array }) => {
      const { claims } = await verifyEvidence('snp', req.report, req.certTable);
      return releaseResult(key, commitToken, claims, policy);
    },
  } as unknown as Pick<Broker, 'issueChallenge' | 'release'>;
}

function releaseResult(
  key: Uint8Array,
  commitToken: Uint8Array,
  evidence: EvidenceClaims,
  policy: JsonValue,
) {
  return {
    key,
    keyVersion: 1,
    instance: { id: 'i-1', project: 'p', zone: 'z', instanceId: '1', instanceName: 'vm' },
    policy,
    bootId: 'b',
    commitToken,
    committedCounter: null,
    leaseExpiresAt: 0,
    evidence,
  };
}

/** An SNP attestation through the adapter, with the all-zero challenge and REPORT_DATA the fakes expect. */
const attestSnp = (a: BrokerKbsAdapter, report: Uint8Array, certTable?: Uint8Array) =>
  a.attest({
    tee: 'snp',
    report,
    ...(certTable ? { certTable } : {}),
    challenge: new Uint8Array(32),
    expectedReportData: new Uint8Array(64),
  });

/** The TEE table's verifier over the simulator's Milan chain, as startBroker wires it. */
function simVerifier(rootSha256: string): VerifyEvidence {
  return createTeeVerifier({
    now: Date.now,
    snp: { trustedRoots: [{ product: 'Milan', sha256: rootSha256 }] },
  }).verifyEvidence;
}

describe('broker adapter: grants', () => {
  it('holds the released key for its grant only, until it expires; zeroes the commit token at once', async () => {
    const chain = await sharedSimChain('Milan');
    const fw = new SimSnpFirmware(chain, {
      measurement: new Uint8Array(48),
      policy: SIM_DEFAULT_POLICY,
      hostData: new Uint8Array(32),
    });
    const { report, certTable } = fw.getReport(new Uint8Array(64));
    let t = 0;
    const key = new Uint8Array(32).fill(9);
    const commitToken = new Uint8Array(32).fill(5);
    const secrets = new MemorySecretStore();
    const a = createBrokerKbsAdapter({
      broker: fakeBroker(key, commitToken, simVerifier(chain.rootSha256)),
      secrets,
      grantTtlMs: 1000,
      now: () => t,
    });
    const att = await attestSnp(a, report, certTable);
    assert.deepEqual(commitToken, new Uint8Array(32));
    assert.equal(att.appraisal.debugAllowed, false);
    assert.equal((att.claims as { measurement: string }).measurement, toHex(new Uint8Array(48)));
    const path = { repository: 'vouchsafe', type: 'sealing-key', tag: 'current' };
    assert.equal(`${path.repository}/${path.type}/${path.tag}`, SEALING_KEY_PATH);
    const got = await a.readResource({ path, subject: subject({ jti: att.grant }) });
    assert.deepEqual(got, new Uint8Array(32).fill(9));
    got.fill(0);
    assert.deepEqual(
      await a.readResource({ path, subject: subject({ jti: att.grant }) }),
      new Uint8Array(32).fill(9),
      'a copy each time',
    );
    await rejectsCode(
      a.readResource({ path, subject: subject({ jti: 'other' }) }),
      'ERR_INVALID_ARGUMENT',
      'kbs.resource.gone',
    );
    await rejectsCode(
      a.readResource({
        path,
        subject: subject({ jti: att.grant, identity: { ...subject().identity, brokerInstanceId: 'i-2' } }),
      }),
      'ERR_POLICY_REJECTED',
      'kbs.resource.instance',
    );
    await rejectsCode(
      a.readResource({ path: { repository: 'a', type: 'b', tag: 'c' }, subject: subject() }),
      'ERR_INVALID_ARGUMENT',
      'kbs.resource.not_found',
    );
    t = 1000;
    await rejectsCode(
      a.readResource({ path, subject: subject({ jti: att.grant }) }),
      'ERR_INVALID_ARGUMENT',
      'kbs.resource.gone',
    );
    assert.equal(a.heldGrants(), 1);
    a.close();
    assert.equal(a.heldGrants(), 0);
    assert.deepEqual(key, new Uint8Array(32), 'close() zeroes held keys');
  });
});

describe('one verification per attestation', () => {
  it("the token's claims are those of the Broker's own verification of the very report", async () => {
    const chain = await sharedSimChain('Milan');
    const verify = simVerifier(chain.rootSha256);
    let calls = 0;
    const counted: VerifyEvidence = (tee, r, t) => {
      calls++;
      return verify(tee, r, t);
    };
    const a = createBrokerKbsAdapter({
      broker: fakeBroker(new Uint8Array(32).fill(1), new Uint8Array(32), counted),
    });
    // Two attestations in flight at once with reports of different measurements: each gets its own claims.
    const reports = [3, 4].map((m) => {
      const fw = new SimSnpFirmware(chain, {
        measurement: new Uint8Array(48).fill(m),
        policy: SIM_DEFAULT_POLICY,
        hostData: new Uint8Array(32),
      });
      return fw.getReport(new Uint8Array(64));
    });
    const atts = await Promise.all(
      reports.map((r) =>
        a.attest({
          tee: 'snp',
          report: r.report,
          certTable: r.certTable,
          challenge: new Uint8Array(32),
          expectedReportData: new Uint8Array(64),
        }),
      ),
    );
    assert.equal(calls, 2, 'one verification per attestation');
    assert.deepEqual(
      atts.map((x) => (x.claims as { measurement: string }).measurement),
      [toHex(new Uint8Array(48).fill(3)), toHex(new Uint8Array(48).fill(4))],
    );
    a.close();
  });

  it('takes the claims and the debug state from the release result, nothing else', async () => {
    const details = { measurement: 'from-the-release' };
    const claims = (debug: boolean | null): EvidenceClaims => ({
      tee: 'snp',
      measurements: {},
      identityField: null,
      launchId: null,
      reportData: new Uint8Array(64),
      tcb: {},
      debug,
      evidenceDigest: '00'.repeat(32),
      details,
    });
    for (const [debug, debugAllowed] of [
      [false, false],
      [true, true],
      // Evidence that says nothing about debugging does not exclude it.
      [null, true],
    ] as const) {
      const a = createBrokerKbsAdapter({
        broker: fakeBroker(new Uint8Array(32), new Uint8Array(32), async () => ({
          claims: claims(debug),
          native: undefined,
        })),
      });
      const att = await attestSnp(a, new Uint8Array(1184));
      assert.equal(att.claims, details);
      assert.equal(att.appraisal.debugAllowed, debugAllowed);
      a.close();
    }
  });

  it('says the measurement was checked exactly when the policy the release was appraised against checks it', async () => {
    const chain = await sharedSimChain('Milan');
    const { report, certTable } = new SimSnpFirmware(chain, {
      measurement: new Uint8Array(48),
      policy: SIM_DEFAULT_POLICY,
      hostData: new Uint8Array(32),
    }).getReport(new Uint8Array(64));
    for (const [policy, checked] of [
      [{ measurements: [MEAS] }, true],
      [{ measurements: 'any' }, false],
      [null, false],
    ] as const) {
      const a = createBrokerKbsAdapter({
        broker: fakeBroker(new Uint8Array(32), new Uint8Array(32), simVerifier(chain.rootSha256), policy),
      });
      const att = await attestSnp(a, report, certTable);
      assert.equal(att.appraisal.measurementChecked, checked, JSON.stringify(policy));
      a.close();
    }
  });
});
