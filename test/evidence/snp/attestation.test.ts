/**
 * verifySnpAttestation, the one SEV-SNP pipeline (broker, KBS, CA and CLI): certificates given -> table ->
 * getter, the CRL through the getter with checkRevocations, then the pure verifier. The getter here is a
 * test double shaped like KdsClient that serves the simulator's Milan chain and a CRL.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CrlResult } from '../../../src/collateral/kds-client.js';
import { type SnpCollateralGetter, verifySnpAttestation } from '../../../src/evidence/snp/index.js';
import { createCrl, SIM_DEFAULT_POLICY, SimSnpFirmware, sharedSimChain } from '../../../src/sim/snp/index.js';

async function setup(revokedSerials: readonly bigint[] = []) {
  const chain = await sharedSimChain('Milan');
  const fw = new SimSnpFirmware(chain, {
    measurement: new Uint8Array(48),
    policy: SIM_DEFAULT_POLICY,
    hostData: new Uint8Array(32),
  });
  const { report, certTable } = fw.getReport(new Uint8Array(64));
  const crl = await createCrl(chain, { revokedSerials });
  const calls: string[] = [];
  const getter: SnpCollateralGetter = {
    async getVcekForReport() {
      calls.push('vcek');
      return chain.vcek.der;
    },
    async getCertChain(_p, signer) {
      calls.push(`chain:${signer}`);
      return { intermediate: chain.ask.der, ark: chain.ark.der } as Awaited<
        ReturnType<SnpCollateralGetter['getCertChain']>
      >;
    },
    async getCrl(product, signer) {
      calls.push(`crl:${product}:${signer}`);
      return { der: crl } as CrlResult;
    },
  };
  const options = {
    now: new Date(),
    trustedRoots: [{ product: 'Milan' as const, sha256: chain.rootSha256 }],
  };
  return { chain, report, certTable, getter, calls, options };
}

const rejects = (p: Promise<unknown>, code: string, reason: string) =>
  assert.rejects(p, (e: { code?: string; reason?: string }) => {
    assert.equal(e.code, code);
    assert.equal(e.reason, reason);
    return true;
  });

describe('verifySnpAttestation: the one SEV-SNP pipeline', () => {
  it('uses the certificate table and does not touch the getter when the table is complete', async () => {
    const s = await setup();
    const a = await verifySnpAttestation(
      { report: s.report, certTable: s.certTable },
      { ...s.options, getter: s.getter },
    );
    assert.deepEqual(a.sources, { leaf: 'cert-table', intermediate: 'cert-table', root: 'cert-table' });
    assert.deepEqual(s.calls, []);
    assert.equal(a.verified.crlChecked, false);
  });

  it('fetches what the host did not send through the getter (the real SVSM sends no table)', async () => {
    const s = await setup();
    const a = await verifySnpAttestation({ report: s.report }, { ...s.options, getter: s.getter });
    assert.deepEqual(a.sources, { leaf: 'kds', intermediate: 'kds', root: 'kds' });
    assert.deepEqual(s.calls, ['vcek', 'chain:vcek']);
  });

  it('snp.certs_missing: no table and no getter', async () => {
    const s = await setup();
    await rejects(
      verifySnpAttestation({ report: s.report }, s.options),
      'ERR_COLLATERAL_UNAVAILABLE',
      'snp.certs_missing',
    );
  });

  it('checkRevocations: the CRL comes through the getter and is checked', async () => {
    const s = await setup();
    const a = await verifySnpAttestation(
      { report: s.report, certTable: s.certTable },
      { ...s.options, getter: s.getter, checkRevocations: true },
    );
    assert.equal(a.verified.crlChecked, true);
    assert.deepEqual(s.calls, ['crl:Milan:vcek']);
  });

  it('snp.intermediate_revoked: an ASK the getter CRL lists is refused', async () => {
    const s = await setup([0x10001n]);
    await rejects(
      verifySnpAttestation(
        { report: s.report, certTable: s.certTable },
        { ...s.options, getter: s.getter, checkRevocations: true },
      ),
      'ERR_CHAIN_INVALID',
      'snp.intermediate_revoked',
    );
  });

  it('a CRL given with the input is checked without a getter', async () => {
    const s = await setup([0x10001n]);
    const crl = (await s.getter.getCrl('Milan', 'vcek')).der;
    await rejects(
      verifySnpAttestation({ report: s.report, certTable: s.certTable, crl }, s.options),
      'ERR_CHAIN_INVALID',
      'snp.intermediate_revoked',
    );
  });

  it('snp.options.getter: checkRevocations without a getter is a configuration error, not "unchecked"', async () => {
    const s = await setup();
    await rejects(
      verifySnpAttestation(
        { report: s.report, certTable: s.certTable },
        { ...s.options, checkRevocations: true },
      ),
      'ERR_INVALID_ARGUMENT',
      'snp.options.getter',
    );
  });

  it('certificates given explicitly win over the table', async () => {
    const s = await setup();
    const a = await verifySnpAttestation(
      { report: s.report, certTable: s.certTable, certs: { leaf: s.chain.vcek.der } },
      s.options,
    );
    assert.deepEqual(a.sources, { leaf: 'given', intermediate: 'cert-table', root: 'cert-table' });
  });
});
