/**
 * The commands of the platform CA's path (docs/pvchannel.md §7.2, docs/ca.md "The CA as a service"):
 * `serve --ca-dir`, `vmm-device --features certify-ek,certify-ak --ca-url --ca-token-file --identity`, and a
 * guest (this process, playing the VMM's page forwarding too) asking CERTIFY_EK and CERTIFY_AK through the
 * device socket; a device whose --identity lies is refused with the CA's code; `demo --platform` runs.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { signC509Csr } from '../../src/formats/c509/index.js';
import { specialTextFromString } from '../../src/formats/c509/name.js';
import { PvFeature } from '../../src/formats/pvchannel/constants.js';
import { parseCertificate } from '../../src/formats/x509/certificate.js';
import { readInstanceIdentity } from '../../src/formats/x509/instance-identity.js';
import { certifyAk, certifyEk } from '../../src/guest/certify.js';
import { pvChannelOverVmmSocket } from '../../src/guest/pv-key-release.js';
import { simulatorReportProvider } from '../../src/guest/report-provider.js';
import { SIM_DEFAULT_MEASUREMENT, SIM_DEFAULT_POLICY, SimSnpFirmware } from '../../src/sim/snp/index.js';
import { loadSimChain } from '../../src/sim/snp/persist.js';
import { fromHex, toHex } from '../../src/util/bytes.js';
import { servicesManifest, softAk, softEk } from '../ca/fixtures.js';
import { errorWith } from '../helpers/assert-error.js';
import { cliScratch, freePort, registerInstance, runCli, simInit } from './run-cli.js';

const { tmp, daemon } = cliScratch('vs-vmmdev-ca-cli-');

it('vmm-device --help names the CA options; a CERTIFY feature without a CA is a usage error', async () => {
  const h = await runCli(['vmm-device', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /--ca-url <url>/);
  assert.match(h.stdout, /--ca-token-file <file>/);
  const missing = await runCli(['vmm-device', '--socket', join(tmp, 'x.sock'), '--features', 'certify-ek']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--ca-url/);
});

it('serve --ca-dir + vmm-device relay CERTIFY_EK and CERTIFY_AK; a lying --identity is ca.identity_mismatch', async () => {
  const sim = join(tmp, 'sim');
  const pin = await simInit(sim);
  const chain = loadSimChain(sim);
  const caDir = join(tmp, 'ca');
  const init = await runCli(['ca', 'init', '--dir', caDir]);
  assert.equal(init.code, 0, init.stderr);
  // The CA trusts the simulator's root (ca.json `snp.trustedRoots`) and pins the SVSM image.
  const cfgPath = join(caDir, 'ca.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  const [simProduct, simRoot] = pin.split(':') as [string, string];
  cfg.snp = {
    trustedRoots: [{ product: simProduct, sha256: simRoot }],
    policy: { measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] },
  };
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const data = join(tmp, 'data');
  const port = await freePort();
  await daemon(
    [
      'serve',
      '--listen',
      `127.0.0.1:${port}`,
      '--data',
      data,
      '--trust-sim-root',
      pin,
      '--no-kds',
      '--ca-dir',
      caDir,
    ],
    /broker listening/,
  );
  const broker = `http://127.0.0.1:${port}`;
  const token = join(data, 'admin-token');
  const policy = join(tmp, 'policy.json');
  writeFileSync(policy, JSON.stringify({ measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] }));
  const instance: { hostData: string } = await registerInstance(['--broker', broker, '--token-file', token], {
    instanceId: '4343',
    name: 'vm43',
    policy,
  });
  const truth = join(tmp, 'identity.json');
  writeFileSync(truth, JSON.stringify({ project: 'p', zone: 'z', instanceId: '4343', instanceName: 'vm43' }));
  const lie = join(tmp, 'lie.json');
  writeFileSync(
    lie,
    JSON.stringify({ project: 'p', zone: 'z', instanceId: '4343', instanceName: 'not-vm43' }),
  );
  const device = async (name: string, identity: string) => {
    const sock = join(tmp, `${name}.sock`);
    await daemon(
      [
        'vmm-device',
        '--socket',
        sock,
        '--features',
        'platform-identity,certify-ek,certify-ak',
        '--ca-url',
        broker,
        '--ca-token-file',
        token,
        '--identity',
        identity,
      ],
      /vmm-device listening/,
    );
    return pvChannelOverVmmSocket(
      sock,
      PvFeature.PlatformIdentity | PvFeature.CertifyEk | PvFeature.CertifyAk,
    );
  };

  const fw = new SimSnpFirmware(chain, {
    measurement: SIM_DEFAULT_MEASUREMENT,
    policy: SIM_DEFAULT_POLICY,
    hostData: fromHex(instance.hostData)!,
  });
  const ek = softEk();
  const ak = softAk();
  const manifest = servicesManifest(ek.pub, ak.pub);
  const reports = simulatorReportProvider(fw);

  const good = await device('good', truth);
  try {
    const ekc = await certifyEk(good.client, { manifest, reports });
    const id = readInstanceIdentity(parseCertificate(ekc.certificate))!;
    assert.equal(id.instanceName, 'vm43');
    assert.equal(id.instanceId, 4343n);
    const csr = signC509Csr({ subject: specialTextFromString('ak'), attributes: [] }, ak.privateKey);
    const akc = await certifyAk(good.client, { manifest, reports, csr });
    assert.equal(akc.format, 'x509');
    assert.equal(
      toHex(akc.chain[0]!),
      toHex(parseCertificatePem(readFileSync(join(caDir, 'ca-cert.pem'), 'utf8'))),
    );
  } finally {
    good.close();
  }
  const liar = await device('liar', lie);
  try {
    await assert.rejects(
      certifyEk(liar.client, { manifest, reports }),
      errorWith('ERR_REFUSED', 'ca.identity_mismatch'),
    );
  } finally {
    liar.close();
  }
});

function parseCertificatePem(pem: string): Uint8Array {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

it('demo --platform: every step as expected (exit 0), the refusals printed with their codes', async () => {
  const r = await runCli(['demo', '--platform']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /UNEXPECTED/);
  for (const reason of [
    'broker.clone',
    'broker.rollback',
    'ca.csr_key_mismatch',
    'ca.ek_other_instance',
    'ca.identity_mismatch',
  ]) {
    assert.match(r.stdout, new RegExp(`REFUSED .*${reason.replace('.', '\\.')}`));
  }
  assert.match(r.stdout, /relying party: quote verified/);
});
