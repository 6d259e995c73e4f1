/**
 * Runs the evidence contract (contract.ts) against every EvidenceType: SEV-SNP on the simulator's Milan
 * chain, a TPM 2.0 quote by a generated AK. Every TEE of the release table (src/policy/tees.ts) must have a
 * case here: a TEE enters the table only with its contract run.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type AzSnpVtpmInput,
  azSnpVtpmEvidence,
  azureVmIdentity,
} from '../../src/evidence/az-snp-vtpm/index.js';
import { type SnpAttestationInput, snpEvidence } from '../../src/evidence/snp/index.js';
import { type TdxEvidenceInput, TdxVerifier, tdxEvidence } from '../../src/evidence/tdx/index.js';
import { createTrustStore, tpmEvidence, type VerifyQuoteInput } from '../../src/evidence/tpm/index.js';
import { TPM_ALG } from '../../src/formats/tpm/index.js';
import { TEE_NAMES } from '../../src/policy/tees.js';
import { SimAzureVm } from '../../src/sim/azure/index.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { SimTdxPlatform } from '../../src/sim/tdx/index.js';
import { toHex } from '../../src/util/bytes.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { type EvidenceCase, runEvidenceContract } from './contract.js';
import { makeQuote, randomPcrs } from './tpm/quote-fixtures.js';
import { issueCa, issueLeaf, makeRoot, T0 } from './tpm/test-ca.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const snpCase: EvidenceCase<
  SnpAttestationInput,
  ReturnType<typeof snpEvidence.parse>,
  Awaited<ReturnType<typeof snpEvidence.verify>>,
  Parameters<typeof snpEvidence.verify>[1]
> = {
  type: snpEvidence,
  async fixture() {
    const chain = await sharedSimChain('Milan');
    const measurement = new Uint8Array(48).fill(0x3c);
    const hostData = new Uint8Array(32).fill(0x7e);
    const reportData = new Uint8Array(64).fill(0x11);
    const fw = new SimSnpFirmware(chain, { measurement, policy: SIM_DEFAULT_POLICY, hostData });
    const { report, certTable } = fw.getReport(reportData);
    const now = new Date();
    const options = { now, trustedRoots: [{ product: 'Milan' as const, sha256: chain.rootSha256 }] };
    const tampered = Uint8Array.from(report);
    tampered[0x90]! ^= 0x01; // MEASUREMENT, inside the signed range
    return {
      input: { report, certTable },
      options,
      expected: {
        measurements: { measurement: toHex(measurement) },
        identityField: { name: 'HOST_DATA', value: toHex(hostData) },
        reportData: toHex(reportData),
        debug: false,
        evidenceDigest: sha256(report),
      },
      tampered: { report: tampered, certTable },
      // AMD's pinned roots only: the simulator's ARK is not one of them.
      untrusted: { now },
      expired: { ...options, now: new Date('2300-01-01T00:00:00Z') },
      malformed: [
        { report: report.subarray(0, 100) },
        { report: new Uint8Array([...report, 0]) },
        { report: new Uint8Array(0) },
      ],
      scribble(input) {
        if (input.report instanceof Uint8Array) input.report.fill(0xff);
        input.certTable?.fill(0xff);
      },
    };
  },
};

const tpmCase: EvidenceCase<
  VerifyQuoteInput,
  VerifyQuoteInput,
  Awaited<ReturnType<typeof tpmEvidence.verify>>,
  Parameters<typeof tpmEvidence.verify>[1]
> = {
  type: tpmEvidence,
  async fixture() {
    const root = await makeRoot();
    const inter = await issueCa(root, { subject: 'CN=AK CA', ca: { pathLength: 0 } });
    const ak = newKeyPairSync('ec', { namedCurve: 'P-256' });
    const akCert = await issueLeaf(inter, { subject: 'CN=ak' }, ak.publicKey);
    const nonce = new Uint8Array(32).fill(0x5a);
    const bank = randomPcrs(TPM_ALG.SHA256, [0, 7]);
    const q = makeQuote({
      key: ak.privateKey,
      sigAlg: TPM_ALG.ECDSA,
      hashAlg: TPM_ALG.SHA256,
      banks: [bank],
      nonce,
    });
    const input: VerifyQuoteInput = { ...q, pcrs: [bank], akCert, intermediates: [inter.der] };
    const options = { now: T0, roots: createTrustStore([root.der]), nonce };
    const other = await makeRoot('CN=Another TPM Root');
    const tampered = Uint8Array.from(q.quote);
    tampered[50]! ^= 0x01; // inside the clock info: parses, signature breaks
    return {
      input,
      options,
      expected: {
        measurements: {
          'pcr0:sha256': toHex(bank.values.get(0)!),
          'pcr7:sha256': toHex(bank.values.get(7)!),
        },
        identityField: null,
        reportData: toHex(nonce),
        debug: null,
        evidenceDigest: sha256(q.quote),
      },
      tampered: { ...input, quote: tampered },
      untrusted: { ...options, roots: createTrustStore([other.der]) },
      expired: { ...options, now: new Date('2100-01-01T00:00:00Z') },
      malformed: [
        { ...input, quote: q.quote.subarray(0, 20) },
        { ...input, signature: q.signature.subarray(0, 3) },
        { ...input, quote: new Uint8Array(0) },
      ],
      scribble(i) {
        i.quote.fill(0xff);
        i.signature.fill(0xff);
        i.akCert.fill(0xff);
        for (const b of i.pcrs) for (const v of b.values.values()) v.fill(0xff);
      },
    };
  },
};

const tdxCase: EvidenceCase<
  TdxEvidenceInput,
  ReturnType<typeof tdxEvidence.parse>,
  Awaited<ReturnType<typeof tdxEvidence.verify>>,
  Parameters<typeof tdxEvidence.verify>[1]
> = {
  type: tdxEvidence,
  async fixture() {
    const platform = new SimTdxPlatform();
    const reportData = new Uint8Array(64).fill(0x22);
    const mrTd = new Uint8Array(48).fill(0x4d);
    const mrConfigId = new Uint8Array(48).fill(0xc0);
    const rtmr = (b: number) => new Uint8Array(48).fill(b);
    const quote = platform.quote(reportData, {
      body: { mrTd, mrConfigId, rtmrs: [rtmr(1), rtmr(2), rtmr(3), rtmr(4)] },
    });
    const now = new Date();
    // A fresh verifier per fixture: no cache shared with other cases.
    const options = {
      collateral: platform.collateral(),
      now,
      trustedRoots: [platform.rootSha256],
      verifier: new TdxVerifier(),
    };
    const tampered = Uint8Array.from(quote);
    tampered[0x30 + 16 + 48 + 48 + 24]! ^= 0x01; // MRTD, inside the signed header and body
    return {
      input: { quote },
      options,
      expected: {
        measurements: {
          mrTd: toHex(mrTd),
          rtmr0: toHex(rtmr(1)),
          rtmr1: toHex(rtmr(2)),
          rtmr2: toHex(rtmr(3)),
          rtmr3: toHex(rtmr(4)),
        },
        identityField: { name: 'MRCONFIGID', value: toHex(mrConfigId) },
        reportData: toHex(reportData),
        debug: false,
        evidenceDigest: sha256(quote.subarray(0, 0x30 + 584)),
      },
      tampered: { quote: tampered },
      // Intel's pinned root only: the simulator's root is not it.
      untrusted: { ...options, trustedRoots: [] },
      expired: { ...options, now: new Date('2300-01-01T00:00:00Z') },
      malformed: [
        { quote: quote.subarray(0, 100) },
        { quote: new Uint8Array(0) },
        { quote: Uint8Array.of(3, 0, ...quote.subarray(2)) },
      ],
      scribble(input) {
        input.quote.fill(0xff);
      },
    };
  },
};

const azCase: EvidenceCase<
  AzSnpVtpmInput,
  ReturnType<typeof azSnpVtpmEvidence.parse>,
  Awaited<ReturnType<typeof azSnpVtpmEvidence.verify>>,
  Parameters<typeof azSnpVtpmEvidence.verify>[1]
> = {
  type: azSnpVtpmEvidence,
  async fixture() {
    const chain = await sharedSimChain('Milan');
    const vmUniqueId = '6C3D5E1F-0000-4000-8000-00000000C0DE';
    const vm = new SimAzureVm(chain, { vmConfiguration: { 'tpm-enabled': true, vmUniqueId } });
    const nonce = new Uint8Array(48).fill(0x33);
    const json = vm.evidence(nonce, 1) as { hcl_report: string; [k: string]: unknown };
    const bytes = (j: unknown) => new TextEncoder().encode(JSON.stringify(j));
    const input = bytes(json);
    const hcl = Buffer.from(json.hcl_report, 'base64url');
    hcl[0x20 + 0x90]! ^= 0x01; // the HCL's SNP report: MEASUREMENT, inside the signed range
    const b64 = hcl.toString('base64url') + '='.repeat((3 - (hcl.length % 3)) % 3);
    const now = new Date();
    const options = { now, trustedRoots: [{ product: 'Milan' as const, sha256: chain.rootSha256 }] };
    // The VCEK comes with the evidence; ASK and ARK are given as a deployment would read them from KDS.
    const withChain = { ...options, amdChain: { intermediate: chain.ask.der, root: chain.ark.der } };
    const pcrs = Object.fromEntries(vm.pcrs.map((p, i) => [`pcr${i}:sha256`, toHex(p)]));
    const reportData = new Uint8Array(64);
    reportData.set(nonce);
    return {
      input,
      options: withChain,
      expected: {
        measurements: { measurement: toHex(SIM_DEFAULT_MEASUREMENT), ...pcrs },
        identityField: { name: 'azure.vmUniqueId.sha256', value: toHex(azureVmIdentity(vmUniqueId)!) },
        reportData: toHex(reportData),
        debug: false,
        evidenceDigest: sha256(Buffer.from(json.hcl_report, 'base64url').subarray(0x20, 0x20 + 0x4a0)),
      },
      tampered: bytes({ ...json, hcl_report: b64 }),
      // AMD's pinned roots only: the simulator's ARK is not one of them.
      untrusted: { now, amdChain: withChain.amdChain },
      expired: { ...withChain, now: new Date('2300-01-01T00:00:00Z') },
      malformed: [input.subarray(0, 100), bytes({ ...json, tpm_quote: 1 }), new Uint8Array(0)],
      scribble(i) {
        if (i instanceof Uint8Array) i.fill(0x20);
      },
    };
  },
};

runEvidenceContract(snpCase);
runEvidenceContract(tpmCase);
runEvidenceContract(tdxCase);
runEvidenceContract(azCase);
const covered = new Set([snpCase.type.tee, tpmCase.type.tee, tdxCase.type.tee, azCase.type.tee]);

describe('evidence contract: coverage', () => {
  it('every TEE of the release table has a contract case', () => {
    for (const tee of TEE_NAMES) assert.ok(covered.has(tee), `no contract case for ${tee}`);
  });
});
