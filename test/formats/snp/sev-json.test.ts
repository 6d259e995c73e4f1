/**
 * Trustee's SEV-SNP evidence struct form (src/formats/snp/sev-json.ts) against the real `sev` crate's
 * output for the shared reports (../shared/vectors/kbs/trustee-snp-evidence, read in place): every file
 * rebuilds to exactly ../shared/vectors/snp/<case>/report.bin and verifies with the raw report's verdict;
 * a cert_chain becomes a certificate table the one SEV-SNP pipeline verifies from.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SnpAttestation, snpEvidence } from '../../../src/evidence/snp/index.js';
import { CertGuid, parseCertTable } from '../../../src/formats/snp/index.js';
import {
  decodeSevSnpEvidence,
  isJsonText,
  parseSevSnpEvidenceJson,
} from '../../../src/formats/snp/sev-json.js';
import { appraiseSnp } from '../../../src/policy/snp/index.js';
import { realCase } from '../../evidence/snp/verify-helpers.js';
import { needsVectors, readVector, vectorCases } from '../../helpers/vectors.js';
import { sevStructOf } from '../../kbs/sev-struct.js';

const FIXTURES = ['kbs', 'trustee-snp-evidence'] as const;
const fixtureBytes = (name: string) => readVector(...FIXTURES, name, 'report.bin.trustee-evidence.json');
const fixtureJson = (name: string) => JSON.parse(Buffer.from(fixtureBytes(name)).toString('utf8'));

/** The verdict of the one pipeline plus the default policy, as JSON: what the CLI and broker decide on. */
async function verdictOf(report: Uint8Array, certs: { certTable?: Uint8Array; certs?: object }, now: Date) {
  let a: SnpAttestation;
  try {
    a = await snpEvidence.verify(snpEvidence.parse({ report, ...certs }), { now });
  } catch (e) {
    return { error: (e as { code: string; reason: string }).code + (e as { reason: string }).reason };
  }
  const appraisal = appraiseSnp(a.verified.report, a.verified.product, {});
  return {
    claims: JSON.parse(JSON.stringify(snpEvidence.toClaims(a).details)),
    failures: appraisal.failures.map((f) => f.code),
  };
}

describe('sev crate struct form: the real crate output for the shared reports', needsVectors, () => {
  const cases = vectorCases(...FIXTURES);

  it('there is a file for every shared report the crate can parse (all but the masked-CHIP_ID v2 case)', () => {
    const missing = vectorCases('snp').filter((c) => !cases.includes(c));
    assert.deepEqual(missing, ['constellation-aws-milan-vlek-2023']);
    assert.equal(cases.length, 8);
  });

  for (const name of cases) {
    it(`${name}: rebuilds to exactly report.bin and verifies with the raw report's verdict`, async () => {
      const raw = readVector('snp', name, 'report.bin');
      const text = fixtureBytes(name);
      assert.equal(isJsonText(text), true);
      assert.equal(isJsonText(raw), false);
      const decoded = parseSevSnpEvidenceJson(text);
      assert.deepEqual(Buffer.from(decoded.report), Buffer.from(raw));
      assert.equal(decoded.certTable, undefined, 'cert_chain is null in every file');
      // The same through the object API (what the KBS gets after its body parser).
      assert.deepEqual(decodeSevSnpEvidence(fixtureJson(name)).report, decoded.report);

      const c = realCase(name);
      const viaRaw = await verdictOf(raw, { certs: c.certs }, c.now);
      const viaJson = await verdictOf(decoded.report, { certs: c.certs }, c.now);
      assert.ok('claims' in viaRaw, `${name} verifies: ${JSON.stringify(viaRaw)}`);
      assert.deepEqual(viaJson, viaRaw);
    });
  }

  it("the test's independent struct writer reproduces every crate file exactly (it is the property oracle)", () => {
    for (const name of cases) {
      const ours = JSON.stringify({
        attestation_report: sevStructOf(readVector('snp', name, 'report.bin')),
        cert_chain: null,
      });
      assert.equal(ours, Buffer.from(fixtureBytes(name)).toString('utf8').replace(/\n$/, ''), name);
    }
  });

  it('a cert_chain [{cert_type, data}] becomes a certificate table: the chain verifies from it alone', async () => {
    for (const name of ['microsoft-tav-turin', 'constellation-aws-milan-vlek-2024']) {
      const c = realCase(name);
      const leafType = c.signer === 'VLEK' ? 'VLEK' : 'VCEK';
      const json = fixtureJson(name);
      json.cert_chain = [
        { cert_type: leafType, data: Array.from(c.certs.leaf) },
        { cert_type: 'ASK', data: Array.from(c.certs.intermediate) },
        { cert_type: 'ARK', data: Array.from(c.certs.root) },
        { cert_type: { OTHER: '11111111-2222-3333-4444-555555555555' }, data: [1, 2, 3] },
      ];
      const d = decodeSevSnpEvidence(json);
      const entries = parseCertTable(d.certTable!);
      assert.deepEqual(
        entries.map((e) => e.guid),
        [CertGuid[leafType], CertGuid.ASK, CertGuid.ARK, '11111111-2222-3333-4444-555555555555'],
      );
      assert.deepEqual(Buffer.from(entries[0]!.data), Buffer.from(c.certs.leaf));
      const fromTable = await verdictOf(d.report, { certTable: d.certTable! }, c.now);
      const fromCerts = await verdictOf(readVector('snp', name, 'report.bin'), { certs: c.certs }, c.now);
      assert.ok('claims' in fromTable, JSON.stringify(fromTable));
      assert.deepEqual(fromTable, fromCerts);
    }
  });

  it('an empty or absent cert_chain means no table', () => {
    const json = fixtureJson('trustee-milan');
    assert.equal(decodeSevSnpEvidence({ ...json, cert_chain: [] }).certTable, undefined);
    const { cert_chain: _, ...absent } = json;
    assert.equal(decodeSevSnpEvidence(absent).certTable, undefined);
  });
});
