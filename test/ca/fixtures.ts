import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type InitCaOptions, PlatformCa } from '../../src/ca/index.js';
import { encodeServicesManifest } from '../../src/formats/svsm/manifest.js';
import {
  encodeVtpmManifestV0,
  encodeVtpmManifestV1,
  VTPM_SERVICE_GUID,
} from '../../src/formats/svsm/vtpm.js';
import {
  encodePublic,
  type ParsedPublic,
  parsePublic,
  parseTpm2bPublic,
  publicFromKeyObject,
  TPM_ALG,
  type TpmtPublic,
} from '../../src/formats/tpm/index.js';
import type { GceInstanceIdentity } from '../../src/formats/x509/instance-identity.js';
import {
  SIM_DEFAULT_POLICY,
  type SimChain,
  SimSnpFirmware,
  sharedSimChain,
} from '../../src/sim/snp/index.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { requireSwtpm, type Swtpm, startSwtpm } from '../helpers/swtpm.js';

/**
 * Shared pieces for the CA tests: temporary CAs that trust the SNP simulator's root, instance identities,
 * software EKs and AKs (for tests that need no TPM), the simulated SVSM (an SNP firmware whose reports
 * cover a services manifest), and real vTPMs (swtpm driven by tpm2-tools).
 */

export const LOW_RANGE_POLICY = Buffer.from(
  '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa',
  'hex',
);
/** tpm2_createak's AK attributes: restricted|sign|fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth. */
export const AK_ATTRIBUTES = 0x00050072;
/** TCG low-range EK template attributes. */
export const EK_ATTRIBUTES = 0x000300b2;

export function identity(n = 1): GceInstanceIdentity {
  return {
    zone: 'europe-west4-a',
    projectNumber: 123456789012n,
    projectId: 'vouchsafe-test',
    instanceId: 7000000000000000000n + BigInt(n),
    instanceName: `vm-${n}`,
  };
}

export interface TestCa {
  readonly ca: PlatformCa;
  readonly dir: string;
  readonly chain: SimChain;
  /** A mutable clock: tests move `clock.now` forward. */
  readonly clock: { now: Date };
  cleanup(): Promise<void>;
}

/** A fresh CA in a temporary directory trusting the simulator's Milan root. */
export async function testCa(opts: Partial<InitCaOptions> = {}): Promise<TestCa> {
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-ca-test-'));
  const chain = await sharedSimChain('Milan');
  const clock = { now: new Date() };
  const ca = await PlatformCa.init({
    dir,
    now: () => clock.now,
    ...opts,
    config: {
      snp: { trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }], policy: {} },
      ...(opts.config ?? {}),
    },
  });
  return {
    ca,
    dir,
    chain,
    clock,
    async cleanup() {
      await ca.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const aes = (bits: number) => ({ algorithm: TPM_ALG.AES, keyBits: bits, mode: TPM_ALG.CFB });

/** A software EK shaped like the TCG low-range template (RSA-2048 or P-256). */
export function softEk(kind: 'rsa' | 'ecc' = 'rsa'): {
  pub: TpmtPublic;
  parsed: ParsedPublic;
  privateKey: KeyObject;
} {
  const kp =
    kind === 'rsa'
      ? newKeyPairSync('rsa', { modulusLength: 2048 })
      : newKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicFromKeyObject(kp.publicKey, {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: EK_ATTRIBUTES,
    authPolicy: new Uint8Array(LOW_RANGE_POLICY),
    symmetric: aes(128),
  });
  return { pub, parsed: parsePublic(encodePublic(pub)), privateKey: kp.privateKey };
}

/** A software key with AK attributes (or others), e.g. for CSR tests that need the private key. */
export function softAk(attributes = AK_ATTRIBUTES): {
  pub: TpmtPublic;
  parsed: ParsedPublic;
  privateKey: KeyObject;
} {
  const kp = newKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicFromKeyObject(kp.publicKey, {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attributes,
    scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
  });
  return { pub, parsed: parsePublic(encodePublic(pub)), privateKey: kp.privateKey };
}

/** The simulated SVSM of one guest: an SNP firmware at VMPL0 with a fixed launch. */
export function simGuest(
  chain: SimChain,
  launch: { vmpl?: number; measurement?: Uint8Array } = {},
): SimSnpFirmware {
  return new SimSnpFirmware(chain, {
    measurement: launch.measurement ?? new Uint8Array(48).fill(0x5a),
    policy: SIM_DEFAULT_POLICY,
    hostData: new Uint8Array(32).fill(0x11),
    ...(launch.vmpl !== undefined ? { vmpl: launch.vmpl } : {}),
  });
}

/** A services manifest holding the vTPM entry (v0: EK only; v1: EK and AK) after a UEFI MM entry. */
export function servicesManifest(ek: TpmtPublic | ParsedPublic, ak?: TpmtPublic | ParsedPublic): Uint8Array {
  const uefiMm = { guid: 'a4453a59-9e1b-4787-a033-1986d6adbe55', payload: new Uint8Array(8) };
  const vtpm = {
    guid: VTPM_SERVICE_GUID,
    payload: ak ? encodeVtpmManifestV1(ek, ak) : encodeVtpmManifestV0(ek),
  };
  return encodeServicesManifest([uefiMm, vtpm]);
}

/** Asserts an AttestationError's code and reason (never its message). */
export function rejects(code: string, reason: string) {
  return (e: unknown) => {
    const err = e as { code?: string; reason?: string };
    assert.equal(err.code, code, `code (reason ${err.reason}, ${String(e)})`);
    assert.equal(err.reason, reason);
    return true;
  };
}

export const refused = (reason: string) => rejects('ERR_REFUSED', reason);

// ---- real vTPMs -------------------------------------------------------------------------------------

export interface VtpmKeys {
  readonly t: Swtpm;
  /** TPM2B_PUBLIC as tpm2_createek wrote it. */
  readonly ekFile: Uint8Array;
  readonly ek: ParsedPublic;
  readonly akFile: Uint8Array;
  readonly ak: ParsedPublic;
  readonly akName: Uint8Array;
}

const started: Swtpm[] = [];

/** Stops every swtpm this file started (call from after()). */
export async function stopAllTpms(): Promise<void> {
  await Promise.all(started.splice(0).map((t) => t.stop()));
}

/**
 * A fresh swtpm with an EK (tpm2_createek, low range, persisted at 0x81010001) and an AK (tpm2_createak:
 * restricted signing, fixedTPM, fixedParent) whose context is ak.ctx. Fails, naming the Debian packages,
 * when swtpm or tpm2-tools are missing.
 */
export async function vtpmWithKeys(
  ekType: 'rsa' | 'ecc' = 'rsa',
  akType: 'ecc' | 'rsa' = 'ecc',
): Promise<VtpmKeys> {
  requireSwtpm();
  const t = await startSwtpm();
  started.push(t);
  t.tool('tpm2_createek', ['-c', '0x81010001', '-G', ekType, '-u', 'ek.pub']);
  t.tool('tpm2_flushcontext', ['-t']);
  const akArgs = akType === 'ecc' ? ['-G', 'ecc', '-s', 'ecdsa'] : ['-G', 'rsa', '-s', 'rsassa'];
  t.tool('tpm2_createak', [
    '-C',
    '0x81010001',
    '-c',
    'ak.ctx',
    ...akArgs,
    '-g',
    'sha256',
    '-u',
    'ak.pub',
    '-n',
    'ak.name',
    '-r',
    'ak.priv',
  ]);
  t.tool('tpm2_flushcontext', ['-t']);
  const read = (f: string) => new Uint8Array(readFileSync(join(t.dir, f)));
  const ekFile = read('ek.pub');
  const akFile = read('ak.pub');
  return {
    t,
    ekFile,
    ek: parseTpm2bPublic(ekFile),
    akFile,
    ak: parseTpm2bPublic(akFile),
    akName: read('ak.name'),
  };
}

/**
 * TPM2_ActivateCredential on the vTPM with the low-range EK's PolicySecret(endorsement) session; returns
 * the recovered secret, or throws (with tpm2_activatecredential's stderr) when the TPM refuses.
 */
export function activateOnTpm(v: VtpmKeys, credentialFile: Uint8Array, akCtx = 'ak.ctx'): Uint8Array {
  const { t } = v;
  const fs = { cred: join(t.dir, 'cred.out'), out: join(t.dir, 'secret.bin') };
  rmSync(fs.out, { force: true });
  writeFileSync(fs.cred, credentialFile);
  t.tool('tpm2_flushcontext', ['-t']);
  t.tool('tpm2_startauthsession', ['--policy-session', '-S', 's.ctx']);
  try {
    t.tool('tpm2_policysecret', ['-S', 's.ctx', '-c', 'e']);
    t.tool('tpm2_activatecredential', [
      '-c',
      akCtx,
      '-C',
      '0x81010001',
      '-i',
      'cred.out',
      '-o',
      'secret.bin',
      '-P',
      'session:s.ctx',
    ]);
  } finally {
    t.tool('tpm2_flushcontext', ['s.ctx']);
    t.tool('tpm2_flushcontext', ['-t']);
  }
  return new Uint8Array(readFileSync(fs.out));
}

/**
 * Runs openssl (an independent reader of what the CA writes); fails, naming the Debian package, when it is
 * missing. stderr is captured so that "verify OK" chatter stays out of the test output.
 */
export function openssl(args: readonly string[]): string {
  if (spawnSync('sh', ['-c', 'command -v openssl']).status !== 0) {
    throw new Error('openssl is missing: install the Debian package openssl');
  }
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
