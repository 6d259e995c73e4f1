/**
 * The Trustee KBS (RCAR) as the product serves it: full exchanges per second against a broker from
 * startBroker (SQLite in a temp dir, the simulator's root trusted, certificates in the report), each one
 * auth -> attest (a fresh P-256 tee key, Trustee's JCS/SHA-384 binding, a simulator report) -> resource
 * fetch -> JWE decrypt on the client side, over HTTP on 127.0.0.1. The floor, measured in the same run, is
 * the raw node:crypto one exchange cannot avoid, on both sides (the simulator's signature included, since
 * it runs in this process too); see FLOOR_NAME for exactly what it contains. A second figure adds to that
 * floor the fsyncs the exchange's store commits cannot avoid.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  diffieHellman,
  generateKeyPair,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startBroker } from '../src/api/index.js';
import { SIGNED_LENGTH } from '../src/formats/snp/index.js';
import { trusteeReportData } from '../src/kbs/index.js';
import { aesKeyUnwrap, aesKeyWrap, concatKdfSha256 } from '../src/native/jwe-ecdh-es.js';
import {
  SIM_DEFAULT_MEASUREMENT,
  SIM_DEFAULT_POLICY,
  SimSnpFirmware,
  sharedSimChain,
} from '../src/sim/snp/index.js';
import { fromHex, toHex } from '../src/util/bytes.js';
import { compare, type Figure } from './harness.js';

const FLOOR_NAME =
  'node:crypto per exchange: 2 P-256 keygens (tee key, JWE ephemeral) + ECDSA-P384 sign (simulated firmware) ' +
  '+ ECDSA-P384 verify (report) + ES256 sign + ES256 verify (token) + 2 ECDH-P256 + 2 Concat KDF + ' +
  'AES-256-KW wrap + unwrap + AES-256-GCM seal + open (32-byte resource) + AES-256-GCM open (KEK-wrapped sealing key)';

const keyPair = (namedCurve: string) =>
  new Promise<{ publicKey: KeyObject; privateKey: KeyObject }>((resolve, reject) =>
    generateKeyPair('ec', { namedCurve }, (e, publicKey, privateKey) =>
      e ? reject(e) : resolve({ publicKey, privateKey }),
    ),
  );

/** x, y of a P-256 public key from its SPKI DER (the uncompressed point ends it). */
function p256Jwk(pub: KeyObject): { kty: 'EC'; crv: 'P-256'; alg: 'ECDH-ES+A256KW'; x: string; y: string } {
  const der = pub.export({ type: 'spki', format: 'der' });
  const pt = der.subarray(der.length - 65);
  return {
    kty: 'EC',
    crv: 'P-256',
    alg: 'ECDH-ES+A256KW',
    x: pt.subarray(1, 33).toString('base64url'),
    y: pt.subarray(33).toString('base64url'),
  };
}

/** Opens the resource JWE (ECDH-ES+A256KW, A256GCM) with node:crypto, as any client must. */
function openJwe(jwe: Record<string, string>, privateKey: KeyObject): Buffer {
  const header = JSON.parse(Buffer.from(jwe.protected!, 'base64url').toString('utf8'));
  const epk = createPublicKey({ key: header.epk, format: 'jwk' });
  const kek = concatKdfSha256(diffieHellman({ privateKey, publicKey: epk }), 'ECDH-ES+A256KW', 256);
  const cek = aesKeyUnwrap(kek, Buffer.from(jwe.encrypted_key!, 'base64url'));
  const d = createDecipheriv('aes-256-gcm', cek, Buffer.from(jwe.iv!, 'base64url'));
  d.setAAD(Buffer.from(jwe.protected!, 'ascii'));
  d.setAuthTag(Buffer.from(jwe.tag!, 'base64url'));
  return Buffer.concat([d.update(Buffer.from(jwe.ciphertext!, 'base64url')), d.final()]);
}

export async function benchKbs(): Promise<Figure[]> {
  const chain = await sharedSimChain('Milan');
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-bench-kbs-'));
  const b = await startBroker({
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'data'),
    trustedRoots: [{ product: 'Milan', sha256: chain.rootSha256 }],
    kds: 'none',
    crl: 'none',
    logger: pino({ level: 'silent' }),
    // Every KBS attest starts a boot lease; a 1 ms lease lets the next exchange of the same instance in
    // (as an expired boot being replaced) instead of being refused as a clone.
    leaseMs: 1,
    kbs: { maxSessions: 1_000_000 },
    // One instance attests as fast as it can: the per-instance and per-source rate limits would be measured.
    rateLimits: false,
  });
  try {
    const reg = await fetch(`${b.url}/v1/admin/instances`, {
      method: 'POST',
      headers: { authorization: `Bearer ${b.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        project: 'bench',
        zone: 'z',
        instanceId: '1',
        instanceName: 'bench',
        policy: { measurements: [toHex(SIM_DEFAULT_MEASUREMENT)] },
      }),
    });
    if (reg.status !== 201) throw new Error(`register: ${reg.status}`);
    const inst = (await reg.json()) as { hostData: string };
    const fw = new SimSnpFirmware(chain, {
      measurement: SIM_DEFAULT_MEASUREMENT,
      policy: SIM_DEFAULT_POLICY,
      hostData: fromHex(inst.hostData)!,
    });

    const exchange = async () => {
      const auth = await fetch(`${b.url}/kbs/v0/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"version":"0.4.0","tee":"snp","extra-params":""}',
      });
      const cookie = /^kbs-session-id=[0-9a-f]{64}/.exec(auth.headers.getSetCookie()[0] ?? '')?.[0];
      const { nonce } = (await auth.json()) as { nonce: string };
      const tee = await keyPair('prime256v1');
      const jwk = p256Jwk(tee.publicKey);
      const rd = trusteeReportData({ 'tee-pubkey': jwk, nonce, 'additional-evidence': '' });
      const ev = fw.getReport(rd);
      const att = await fetch(`${b.url}/kbs/v0/attest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: cookie! },
        body: JSON.stringify({
          'runtime-data': { nonce, 'tee-pubkey': jwk },
          'tee-evidence': {
            primary_evidence: {
              'snp-report': Buffer.from(ev.report).toString('base64'),
              'certs-buf': Buffer.from(ev.certTable).toString('base64'),
            },
            additional_evidence: '',
          },
        }),
      });
      if (att.status !== 200) throw new Error(`attest: ${att.status} ${await att.text()}`);
      await att.arrayBuffer();
      const res = await fetch(`${b.url}/kbs/v0/resource/vouchsafe/sealing-key/current`, {
        headers: { cookie: cookie! },
      });
      if (res.status !== 200) throw new Error(`resource: ${res.status} ${await res.text()}`);
      const key = openJwe((await res.json()) as Record<string, string>, tee.privateKey);
      if (key.length !== 32) throw new Error('resource');
    };
    await exchange();

    // The floor's fixed inputs: a report to sign and verify, token and KEK keys, a wrapped sealing key.
    const reportKey = await keyPair('secp384r1');
    const tokenKey = await keyPair('prime256v1');
    const signed = fw.getReport(new Uint8Array(64)).report.subarray(0, SIGNED_LENGTH);
    const claims = Buffer.alloc(3000, 0x61); // an EAR with SNP claims is ~3 KiB
    const kekKey = randomBytes(32);
    const kekIv = randomBytes(12);
    const kc = createCipheriv('aes-256-gcm', kekKey, kekIv);
    const wrappedSealing = Buffer.concat([kc.update(randomBytes(32)), kc.final()]);
    const wrappedTag = kc.getAuthTag();
    const floor = async () => {
      const tee = await keyPair('prime256v1');
      const sig = sign('sha384', signed, { key: reportKey.privateKey, dsaEncoding: 'ieee-p1363' });
      if (!verify('sha384', signed, { key: reportKey.publicKey, dsaEncoding: 'ieee-p1363' }, sig))
        throw new Error('floor');
      const jws = sign('sha256', claims, { key: tokenKey.privateKey, dsaEncoding: 'ieee-p1363' });
      if (!verify('sha256', claims, { key: tokenKey.publicKey, dsaEncoding: 'ieee-p1363' }, jws))
        throw new Error('floor');
      const kd = createDecipheriv('aes-256-gcm', kekKey, kekIv);
      kd.setAuthTag(wrappedTag);
      const sealing = Buffer.concat([kd.update(wrappedSealing), kd.final()]);
      // Server: wrap to the tee key.
      const eph = await keyPair('prime256v1');
      const kek = concatKdfSha256(
        diffieHellman({ privateKey: eph.privateKey, publicKey: tee.publicKey }),
        'ECDH-ES+A256KW',
      );
      const cek = randomBytes(32);
      const wrapped = aesKeyWrap(kek, cek);
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', cek, iv);
      c.setAAD(Buffer.alloc(200, 0x65));
      const ct = Buffer.concat([c.update(sealing), c.final()]);
      const tag = c.getAuthTag();
      // Client: unwrap and open.
      const kek2 = concatKdfSha256(
        diffieHellman({ privateKey: tee.privateKey, publicKey: eph.publicKey }),
        'ECDH-ES+A256KW',
      );
      const d = createDecipheriv('aes-256-gcm', aesKeyUnwrap(kek2, wrapped), iv);
      d.setAAD(Buffer.alloc(200, 0x65));
      d.setAuthTag(tag);
      if (Buffer.concat([d.update(ct), d.final()]).length !== 32) throw new Error('floor');
    };

    // The store is durable (SQLite WAL, synchronous=FULL): each commit waits for an fsync. One exchange
    // commits three times (challenge issued, challenge consumed, release with its audit entry), so the
    // second figure's floor adds three fsyncs of a file in the data directory to the crypto.
    const syncFd = openSync(join(dir, 'data', 'bench-fsync'), 'w', 0o600);
    const durableFloor = async () => {
      await floor();
      for (let i = 0; i < 3; i++) {
        writeSync(syncFd, 'x');
        fsyncSync(syncFd);
      }
    };
    const extra = {
      transport:
        'HTTP/1.1 keep-alive on 127.0.0.1, SQLite store (WAL, synchronous=FULL), one instance (lease 1 ms)',
    };
    try {
      const crypto = await compare({
        name: 'kbs.rcar.exchange',
        subject: exchange,
        floorName: FLOOR_NAME,
        floor,
      });
      const durable = await compare({
        name: 'kbs.rcar.exchange.durable',
        subject: exchange,
        floorName: `${FLOOR_NAME} + 3 fsyncs in the data directory (the exchange's 3 store commits)`,
        floor: durableFloor,
      });
      return [crypto, durable].map((f) => ({
        ...f,
        extra: { ...extra, msPerExchange: Number((1000 / f.value).toFixed(2)) },
      }));
    } finally {
      closeSync(syncFd);
    }
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
