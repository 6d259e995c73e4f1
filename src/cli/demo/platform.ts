import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { httpCaClient, httpCertifyRelay } from '../../admin/ca-client.js';
import { httpCredentials } from '../../admin/credentials.js';
import { type RunningBroker, startBroker } from '../../api/index.js';
import { PlatformCa } from '../../ca/platform-ca.js';
import { AttestationError, ErrorCode, PolicyRejected } from '../../errors.js';
import { createTrustStore } from '../../evidence/tpm/cert-path.js';
import type { PcrBank } from '../../evidence/tpm/claims.js';
import { verifyQuote } from '../../evidence/tpm/verify-quote.js';
import type { PlatformIdentity } from '../../formats/platform-identity.js';
import { PvCall, PvFeature } from '../../formats/pvchannel/constants.js';
import { EfiVariable, nameFromString } from '../../formats/pvchannel/uefi.js';
import { encodeServicesManifest } from '../../formats/svsm/manifest.js';
import { encodeVtpmManifestV1, VTPM_SERVICE_GUID } from '../../formats/svsm/vtpm.js';
import { publicToKeyObject } from '../../formats/tpm/key.js';
import { parseTpm2bPublic } from '../../formats/tpm/public.js';
import { parseCertificate } from '../../formats/x509/certificate.js';
import { readInstanceIdentity } from '../../formats/x509/instance-identity.js';
import { c509AkRequest } from '../../guest/ak-request.js';
import { type CertifiedKey, certifyAk, certifyEk } from '../../guest/certify.js';
import { simulatorReportProvider } from '../../guest/index.js';
import { bootWithUefiVariables } from '../../guest/uefi-boot.js';
import { VOUCHSAFE_GUID } from '../../guest/uefi-vars.js';
import { createNativeBackend } from '../../proxy/backends/native/index.js';
import { startProxy } from '../../proxy/index.js';
import type { CertifyRelay } from '../../pvchannel/certify-handlers.js';
import { certifyAkHandler, certifyEkHandler } from '../../pvchannel/certify-handlers.js';
import { PvClient } from '../../pvchannel/client.js';
import { PvDevice } from '../../pvchannel/device.js';
import { InProcessPage, inProcessPageTransport } from '../../pvchannel/page-transport.js';
import { platformIdentityHandler } from '../../pvchannel/platform-identity.js';
import { UefiHostStore, uefiHandlers } from '../../pvchannel/uefi-host.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  SimSnpFirmware,
  sharedSimChain,
} from '../../sim/snp/index.js';
import { ctEqual, toHex } from '../../util/bytes.js';
import { newKeyPairSync } from '../../util/key-pair.js';
import type { DemoEvent } from './scenario.js';
import { requireVtpmTools, startVtpm, type Vtpm, vtpmStateDigest, vtpmStateKey } from './vtpm.js';

/** What the platform flow leaves for a test to check beyond its timeline. */
export interface PlatformRun {
  readonly events: DemoEvent[];
  /** EK and AK certificates of each boot (X.509 DER), and the AK certificates' serials. */
  readonly boots: { ekCert: Uint8Array; akCert: Uint8Array; ekPublic: Uint8Array }[];
  /** The CA's log after the run: every issued and refused certificate. */
  readonly caLog: { kind: string; decision: string; reasons: readonly string[] }[];
  /** The broker's audit entries after the run. */
  readonly brokerAudit: { kind: string; decision: string; reasons: readonly string[] }[];
  readonly identity: PlatformIdentity;
}

const FEATURES =
  PvFeature.PlatformIdentity |
  PvFeature.CertifyEk |
  PvFeature.CertifyAk |
  PvFeature.UefiVariables |
  PvFeature.C509;
const NV_BS_RT = EfiVariable.NonVolatile | EfiVariable.BootserviceAccess | EfiVariable.RuntimeAccess;
/** EFI_GLOBAL_VARIABLE (UEFI 2.10 §3.3), the GUID of BootOrder. */
const EFI_GLOBAL = Uint8Array.from(Buffer.from('8be4df6193ca11d2aa0d00e098032b8c', 'hex'));
const BOOT_ORDER = { guid: EFI_GLOBAL, name: nameFromString('BootOrder') };
/** The vTPM NV files' digest at the last shutdown, in Vouchsafe's own variable namespace. */
const VTPM_DIGEST = { guid: VOUCHSAFE_GUID, name: nameFromString('VtpmStateDigest') };

/**
 * The whole platform-identity flow (issue 11; docs/pvchannel.md §7.2, docs/ca.md "The CA as a service"),
 * every part real except the AMD firmware (the SNP simulator): a broker on SQLite serving the platform CA,
 * the host proxy, a VMM device relaying CERTIFY_EK / CERTIFY_AK to the CA over HTTP, and a simulated SVSM
 * with a swtpm vTPM whose state is encrypted under a key only the broker's released sealing key unlocks.
 *
 * Boot: key release → vTPM started on its encrypted state → negotiate → CERTIFY_EK → AK created in the
 * vTPM → CERTIFY_AK with a C509 request the AK signed → TPM quote → a relying party verifies the quote with
 * the AK certificate chain up to the platform CA and reads the identity from the EK certificate. Reboot: the
 * same EK, a new AK and AK certificate. Then every refusal, each with its stable code and its audit entry.
 */
export async function runPlatformFlow(onEvent: (e: DemoEvent) => void): Promise<PlatformRun> {
  requireVtpmTools();
  const events: DemoEvent[] = [];
  const emit = (e: DemoEvent) => {
    events.push(e);
    onEvent(e);
  };
  const info = (step: string, detail: string, ok = true) =>
    emit({ step, outcome: 'info', detail, expected: ok });
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-platform-'));
  const chain = await sharedSimChain('Milan');
  const measurement = toHex(SIM_DEFAULT_MEASUREMENT);
  // The platform CA: trusts the simulator's root and pins the SVSM image (docs/ca.md "pin the measurement").
  const caDir = join(dir, 'ca');
  await (
    await PlatformCa.init({
      dir: caDir,
      config: {
        snp: {
          trustedRoots: [{ product: chain.product, sha256: chain.rootSha256 }],
          policy: { measurements: [measurement] },
        },
      },
    })
  ).close();
  let broker: RunningBroker | undefined;
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  const running: Vtpm[] = [];
  const clients: { close(): void }[] = [];
  try {
    broker = await startBroker({
      listen: '127.0.0.1:0',
      dataDir: join(dir, 'broker'),
      trustedRoots: [{ product: chain.product, sha256: chain.rootSha256 }],
      kds: 'none',
      logger: pino({ level: 'silent' }),
      ca: { dir: caDir },
    });
    const b = broker;
    proxy = await startProxy({
      listen: `unix:${join(dir, 'aproxy.sock')}`,
      backend: createNativeBackend({ brokerUrl: b.url, timeoutMs: 10_000 }),
      logger: pino({ level: 'silent' }),
    });
    const px = proxy;
    info('start', `broker ${b.url} with the platform CA at ${b.url}/v1/ca (SQLite), proxy ${px.address}`);

    const register = (n: number, name: string) =>
      b.broker.registerInstance({
        project: 'demo-project',
        zone: 'europe-west4-a',
        instanceId: String(7_000_000 + n),
        instanceName: name,
        policy: { measurements: [measurement] },
        newLaunch: 'refuse',
      });
    const a = await register(1, 'vm-a');
    const other = await register(2, 'vm-b');
    const identity: PlatformIdentity = {
      project: a.project,
      zone: a.zone,
      instanceId: a.instanceId,
      instanceName: a.instanceName,
    };
    const identityB: PlatformIdentity = {
      project: other.project,
      zone: other.zone,
      instanceId: other.instanceId,
      instanceName: other.instanceName,
    };
    for (const i of [a, other]) {
      info(
        'register',
        `${i.instanceName} (${i.project}/${i.zone}/${i.instanceId}): HOST_DATA ${toHex(i.hostData)}`,
      );
    }

    // The VMM host relays with a credential of its own (docs/access.md): role host, for the projects of the
    // VMs it runs. It may relay and end boots; it may not register instances or read keys.
    const admin = httpCredentials({ url: b.url, token: b.adminToken });
    const host = await admin
      .create({ name: 'demo vmm host', role: 'host', projects: [...new Set([a.project, other.project])] })
      .finally(() => admin.close());
    info('credential', `the VMM host relays with host credential ${host.credential.id} (role host)`);

    /** The VMM's device for one VM: relays to the CA with the host's credential, claims `claim`. */
    const vmm = (claim: PlatformIdentity, wrap?: (r: CertifyRelay) => CertifyRelay, vars?: UefiHostStore) => {
      const client = httpCaClient({ url: b.url, token: host.token });
      clients.push(client);
      const relay0 = httpCertifyRelay(client, () => claim);
      const relay = wrap ? wrap(relay0) : relay0;
      const device = new PvDevice({
        offer: { minVersion: 1, maxVersion: 1, features: FEATURES },
        handlers: {
          [PvCall.GetPlatformIdentity]: platformIdentityHandler(() => claim),
          [PvCall.CertifyEk]: certifyEkHandler(relay),
          [PvCall.CertifyAk]: certifyAkHandler(relay),
          // UEFI variables (§7.3): stored by the host per instance, sealed by the guest.
          ...(vars ? uefiHandlers(vars) : {}),
        },
      });
      const page = new InProcessPage(device);
      return new PvClient({ transport: inProcessPageTransport(page), want: FEATURES });
    };
    const launch = (hostData: Uint8Array) =>
      new SimSnpFirmware(chain, {
        measurement: SIM_DEFAULT_MEASUREMENT,
        policy: SIM_DEFAULT_POLICY,
        hostData,
      });

    const statePath = join(dir, 'vm-a.state');
    const varsPath = join(dir, 'vm-a.vars');
    const tpmState = join(dir, 'vm-a.vtpm');
    mkdirSync(tpmState, { mode: 0o700 });
    const work = join(dir, 'work');
    mkdirSync(work);
    const read = (f: string) => new Uint8Array(readFileSync(join(work, f)));
    const boots: PlatformRun['boots'] = [];

    /** One boot of vm-a: key release, vTPM, CERTIFY_EK, AK, CERTIFY_AK, quote, relying party. */
    const bootA = async (step: string) => {
      const fw = launch(a.hostData);
      // One device for this boot: identity, CERTIFY_EK/AK relayed to the CA, UEFI variables on the host file.
      const pv = vmm(identity, undefined, await UefiHostStore.open(varsPath));
      const u = await bootWithUefiVariables(
        {
          connect: px.address,
          provider: simulatorReportProvider(fw),
          statePath,
          brokerPublicKey: b.publicKey,
        },
        pv,
      );
      const r = u.boot;
      emit({
        step: `${step}: key release`,
        outcome: 'released',
        detail: `${r.firstBoot ? 'first boot: state created and sealed' : 'state unsealed'} (version ${r.counter}); broker signature ${r.brokerVerified ? 'verified' : 'not checked'}`,
        expected: true,
      });
      // The vTPM's NV files are the host's to keep, so the guest binds them: their digest at the last
      // shutdown is a sealed UEFI variable, committed with the state (rollback-protected by the broker).
      const recorded = await u.store.get(VTPM_DIGEST);
      if (recorded && !ctEqual(recorded.data, vtpmStateDigest(tpmState))) {
        await u.latest().session?.end();
        throw new AttestationError(
          ErrorCode.BindingMismatch,
          'guest.vtpm_state_rollback',
          'the vTPM NV state is not the one committed at the last shutdown',
        );
      }
      const key = vtpmStateKey(r.state);
      const tpm = await startVtpm(tpmState, key, work);
      running.push(tpm);
      info(
        `${step}: vTPM`,
        `swtpm started on ${tpmState}, its state encrypted (AES-256-CBC) under a key derived from the released state (passed through a pipe, never written)`,
      );
      if (r.firstBoot) {
        tpm.tool('tpm2_createek', ['-c', '0x81010001', '-G', 'rsa', '-u', 'ek.pub']);
      } else {
        tpm.tool('tpm2_readpublic', ['-c', '0x81010001', '-o', 'ek.pub']);
      }
      tpm.tool('tpm2_flushcontext', ['-t']);
      tpm.tool('tpm2_createak', [
        '-C',
        '0x81010001',
        '-c',
        'ak.ctx',
        '-G',
        'ecc',
        '-s',
        'ecdsa',
        '-g',
        'sha256',
        '-u',
        'ak.pub',
        '-n',
        'ak.name',
        '-r',
        'ak.priv',
      ]);
      tpm.tool('tpm2_flushcontext', ['-t']);
      const ekFile = read('ek.pub');
      const ek = parseTpm2bPublic(ekFile);
      const ak = parseTpm2bPublic(read('ak.pub'));
      info(
        `${step}: vTPM keys`,
        `EK ${r.firstBoot ? 'created and persisted at 0x81010001' : 'read back from the encrypted NV state'} (SHA-256 ${sha(ek.raw)}…); new AK (SHA-256 ${sha(ak.raw)}…)`,
      );
      const manifest = encodeServicesManifest([
        { guid: VTPM_SERVICE_GUID, payload: encodeVtpmManifestV1(ek, ak) },
      ]);
      const neg = await pv.negotiate();
      info(
        `${step}: negotiate`,
        `features offered 0x${neg.offered.toString(16)}, selected 0x${neg.accepted.toString(16)} (identity, CERTIFY_EK, CERTIFY_AK, UEFI variables, C509), epoch ${neg.epoch}`,
      );
      const claimed = await pv.getPlatformIdentity();
      info(
        `${step}: GET_PLATFORM_IDENTITY`,
        `the VMM says ${claimed.project}/${claimed.zone}/${claimed.instanceId}/${claimed.instanceName} (informative, not proof)`,
      );
      const reports = simulatorReportProvider(fw);
      const ekc = await certifyEk(pv, { manifest, reports });
      const ekId = readInstanceIdentity(parseCertificate(ekc.certificate))!;
      emit({
        step: `${step}: CERTIFY_EK`,
        outcome: 'released',
        detail: `EK certificate serial ${serial(ekc)} for ${ekId.projectId}/${ekId.zone}/${ekId.instanceId}/${ekId.instanceName} (from the registry by HOST_DATA)`,
        expected: true,
      });
      const csr = await c509AkRequest(publicToKeyObject(ak), `${a.instanceName} AK`, (tbs) => {
        writeFileSync(join(work, 'tbs.bin'), tbs);
        tpm.tool('tpm2_sign', ['-c', 'ak.ctx', '-g', 'sha256', '-f', 'plain', '-o', 'tbs.sig', 'tbs.bin']);
        tpm.tool('tpm2_flushcontext', ['-t']);
        return read('tbs.sig');
      });
      const akc = await certifyAk(pv, { manifest, reports, csr });
      emit({
        step: `${step}: CERTIFY_AK`,
        outcome: 'released',
        detail: `AK certificate serial ${serial(akc)} from a C509 request (${csr.length} bytes) the vTPM AK signed`,
        expected: true,
      });
      boots.push({ ekCert: ekc.certificate, akCert: akc.certificate, ekPublic: ek.raw });

      // A relying party: a quote over its nonce, verified with the AK certificate chain up to the platform CA.
      const nonce = new Uint8Array(randomBytes(32));
      tpm.tool('tpm2_quote', [
        '-c',
        'ak.ctx',
        '-l',
        'sha256:0,1,2,3,7',
        '-q',
        toHex(nonce),
        '-m',
        'q.attest',
        '-s',
        'q.sig',
        '-g',
        'sha256',
        '--scheme',
        'ecdsa',
      ]);
      tpm.tool('tpm2_flushcontext', ['-t']);
      tpm.tool('tpm2_pcrread', ['sha256:0,1,2,3,7', '-o', 'pcrs.bin']);
      const raw = read('pcrs.bin');
      const pcrs: PcrBank[] = [
        {
          hashAlg: 0x000b,
          values: new Map([0, 1, 2, 3, 7].map((i, k) => [i, raw.slice(k * 32, k * 32 + 32)])),
        },
      ];
      const claims = verifyQuote(
        {
          quote: read('q.attest'),
          signature: read('q.sig'),
          pcrs,
          akCert: akc.certificate,
          akPublic: ak.raw,
        },
        { now: new Date(), roots: createTrustStore([b.ca!.certificate]), nonce },
      );
      const who = readInstanceIdentity(parseCertificate(ekc.certificate))!;
      const same =
        who.projectId === identity.project &&
        who.zone === identity.zone &&
        who.instanceId.toString() === identity.instanceId &&
        who.instanceName === identity.instanceName;
      info(
        `${step}: relying party`,
        `quote verified (nonce, PCRs 0-3,7, AK chain ${claims.chain.length} certificates up to the platform CA); EK certificate says project ${who.projectId}, zone ${who.zone}, instance id ${who.instanceId}, name ${who.instanceName}`,
        same && claims.identity?.instanceName === identity.instanceName,
      );
      await tpm.stop();
      running.splice(running.indexOf(tpm), 1);
      await u.store.set(VTPM_DIGEST, NV_BS_RT, vtpmStateDigest(tpmState));
      // A sealed UEFI variable: the host keeps it, cannot read, forge or roll it back (§7.3).
      const before = await u.store.get(BOOT_ORDER);
      const value = Uint8Array.of(r.firstBoot ? 1 : 2, 0);
      await u.store.set(BOOT_ORDER, NV_BS_RT, value);
      info(
        `${step}: UEFI variables`,
        `BootOrder was ${before ? toHex(before.data) : 'unset'}, set to ${toHex(value)}; the vTPM NV digest ${recorded ? 'matched and ' : ''}recorded at shutdown: sealed by the guest, the store root committed with the state to the broker`,
      );
      return { r, ek, ak, manifest, session: () => u.latest().session };
    };

    const first = await bootA('boot vm-a');
    await first.session()?.end();
    const v1 = join(dir, 'vm-a.state.v1');
    copyFileSync(statePath, v1);
    const vars1 = join(dir, 'vm-a.vars.v1');
    copyFileSync(varsPath, vars1);
    const tpm1 = join(dir, 'vm-a.vtpm.v1');
    cpSync(tpmState, tpm1, { recursive: true });
    const second = await bootA('reboot vm-a');
    const [b1, b2] = boots;
    info(
      'reboot check',
      `same EK: ${toHex(b1!.ekPublic) === toHex(b2!.ekPublic)}, same EK certificate: ${toHex(b1!.ekCert) === toHex(b2!.ekCert)}, new AK certificate: ${toHex(b1!.akCert) !== toHex(b2!.akCert)}`,
      toHex(b1!.ekPublic) === toHex(b2!.ekPublic) && toHex(b1!.akCert) !== toHex(b2!.akCert),
    );
    try {
      const copy = join(dir, 'vtpm-copy');
      cpSync(tpmState, copy, { recursive: true });
      const wrong = await startVtpm(copy, randomBytes(32), work);
      running.push(wrong);
      wrong.tool('tpm2_readpublic', ['-c', '0x81010001', '-o', 'ek-wrong.pub']);
      info('vTPM state without the released key', 'swtpm read the state with a wrong key', false);
    } catch (e) {
      info(
        'vTPM state without the released key',
        `refused: ${e instanceof AttestationError ? e.reason : 'error'} (the NV state cannot be decrypted)`,
      );
    }

    // ---- refusals -----------------------------------------------------------------------------------
    const refusal = async (step: string, where: 'ca' | 'broker' | 'guest', fn: () => Promise<unknown>) => {
      const beforeCa = (await b.ca!.readLog(0, 100_000)).length;
      const beforeBroker = (await b.store.auditHead()).seq;
      try {
        await fn();
        emit({ step, outcome: 'released', detail: 'NOT refused', expected: false });
      } catch (e) {
        if (!(e instanceof AttestationError)) throw e;
        const entries =
          where === 'ca'
            ? (await b.ca!.readLog(beforeCa, 100)).filter((x) => x.decision === 'refuse')
            : (await b.store.readAudit(beforeBroker, 100)).filter((x) => x.decision === 'refuse');
        // A refusal the guest makes itself (its own data on the host rolled back) has no broker entry to find.
        const logged = where === 'guest' || entries.some((x) => x.reasons.includes(e.reason));
        const where_ =
          where === 'guest'
            ? 'refused by the guest (the broker released: the rest of the state is current)'
            : logged
              ? `audit entry in the ${where === 'ca' ? "CA's issuance log" : "broker's audit log"}`
              : 'NO audit entry';
        emit({
          step,
          outcome: 'refused',
          detail: `${e.message}; ${where_}`,
          code: e.code,
          reason: e.reason,
          ...(e instanceof PolicyRejected ? { failures: e.failures.map((f) => f.code) } : {}),
          expected: logged,
        });
      }
    };
    const manifest = second.manifest;
    const reportsA = () => simulatorReportProvider(launch(a.hostData));

    // A clone: a copy of everything the host holds for vm-a (state file and variable store), launched again.
    // vm-a booted from copies (under `name`) of a state file and a variable store the host holds.
    const bootCopyOf = async (name: string, state: string, vars: string) => {
      copyFileSync(state, join(dir, `${name}.state`));
      copyFileSync(vars, join(dir, `${name}.vars`));
      return bootWithUefiVariables(
        {
          connect: px.address,
          provider: reportsA(),
          statePath: join(dir, `${name}.state`),
          brokerPublicKey: b.publicKey,
        },
        vmm(identity, undefined, await UefiHostStore.open(join(dir, `${name}.vars`))),
      );
    };
    await refusal('a clone of vm-a boots while vm-a runs', 'broker', () =>
      bootCopyOf('clone', statePath, varsPath),
    );
    await second.session()?.end();
    // Only the vTPM's NV files rolled back (to after boot 1); the sealed state and variables are current.
    rmSync(tpmState, { recursive: true, force: true });
    cpSync(tpm1, tpmState, { recursive: true });
    await refusal('vm-a with only its vTPM NV files rolled back (to after boot 1)', 'guest', () =>
      bootA('vm-a, vTPM NV rolled back'),
    );
    // The host keeps an old copy of everything (state file and variables, as after boot 1) and boots it.
    await refusal('vm-a with everything the host holds rolled back (state version 1)', 'broker', () =>
      bootCopyOf('rollback', v1, vars1),
    );
    await refusal(
      'vm-a with its UEFI variable store rolled back (the host file of boot 1)',
      'broker',
      async () => {
        copyFileSync(vars1, varsPath);
        return bootWithUefiVariables(
          { connect: px.address, provider: reportsA(), statePath, brokerPublicKey: b.publicKey },
          vmm(identity, undefined, await UefiHostStore.open(varsPath)),
        );
      },
    );
    const forge = (r: CertifyRelay): CertifyRelay => ({
      ...r,
      certifyEk: (x) => {
        const report = Uint8Array.from(x.report);
        report[0x0c0]! ^= 1; // HOST_DATA: as if launched as another instance
        return r.certifyEk({ ...x, report });
      },
    });
    await refusal('a VMM that forges the report (changes HOST_DATA on the way)', 'ca', () =>
      certifyEk(vmm(identity, forge), { manifest, reports: reportsA() }),
    );
    await refusal('an AK that is not in the manifest', 'ca', async () => {
      const { privateKey, publicKey } = newKeyPairSync('ec', { namedCurve: 'P-256' });
      const { sign } = await import('node:crypto');
      const csr = await c509AkRequest(
        publicKey,
        'not the vTPM AK',
        (tbs) => new Uint8Array(sign('sha256', tbs, privateKey)),
      );
      return certifyAk(vmm(identity), { manifest, reports: reportsA(), csr });
    });
    await refusal("vm-a's EK presented by vm-b's launch", 'ca', () =>
      certifyEk(vmm(identityB), { manifest, reports: simulatorReportProvider(launch(other.hostData)) }),
    );
    await refusal('a VMM that lies about the identity (claims vm-b for vm-a)', 'ca', () =>
      certifyEk(vmm(identityB), { manifest, reports: reportsA() }),
    );

    const audit = await b.broker.verifyAuditChain();
    const caAudit = await b.ca!.verifyLog();
    info(
      'audit',
      `broker audit chain ${audit.ok ? `verifies (${audit.entries} entries)` : 'BROKEN'}; CA issuance log ${caAudit.ok ? `verifies (${caAudit.entries} entries)` : 'BROKEN'}`,
      audit.ok && caAudit.ok,
    );
    const caLog = (await b.ca!.readLog(0, 100_000)).map((e) => ({
      kind: e.kind,
      decision: e.decision,
      reasons: e.reasons,
    }));
    const brokerAudit = (await b.store.readAudit(0, 100_000)).map((e) => ({
      kind: e.kind,
      decision: e.decision,
      reasons: e.reasons,
    }));
    return { events, boots, caLog, brokerAudit, identity };
  } finally {
    for (const c of clients) c.close();
    for (const t of running) await t.stop();
    await proxy?.close();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 12);
}

function serial(c: CertifiedKey): string {
  return c.format === 'x509'
    ? Buffer.from(parseCertificate(c.certificate).serialNumber).toString('hex')
    : '(c509)';
}
