/**
 * The Trustee KBS (RCAR) as the product serves it, under load: full exchanges per second against a broker
 * in its own process (test/crash/spawn-broker.ts: SQLite, the simulator's root trusted, certificates in the
 * report), 64 instances, 8 exchanges in flight, each one auth -> attest (a fresh P-256 tee key, Trustee's
 * JCS/SHA-384 binding, a simulator report) -> resource fetch -> JWE decrypt on the client side, over HTTP/1.1
 * keep-alive on 127.0.0.1. Measured as bench/broker.ts measures a release (closed-loop peak, half-peak
 * p50/p99, the broker's CPU per exchange apart from the load generator's).
 *
 * The floor, measured in the same run on this thread, is the raw node:crypto one exchange cannot avoid, on
 * both sides (the client's and the simulated firmware's too: for P-256 the client's share is as large as the
 * server's); FLOOR_NAME says exactly what it contains. Not in it: HTTP, JSON and JCS, the store's session,
 * decision and audit writes and their grouped WAL flush.
 */
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  diffieHellman,
  type ECDH,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIGNED_LENGTH } from '../src/formats/snp/index.js';
import { trusteeReportData } from '../src/kbs/index.js';
import { aesKeyUnwrap, aesKeyWrap, concatKdfSha256 } from '../src/native/jwe-ecdh-es.js';
import { sharedSimChain } from '../src/sim/snp/index.js';
import { type BrokerProcess, spawnBroker } from '../test/crash/spawn-broker.js';
import { type Instance, knobs, measure, refusals, registerInstances } from './broker.js';
import { httpJson, ItemPool, inThisThread, type LoadOp } from './broker-load.js';
import type { Figure } from './harness.js';

const FLOOR_NAME =
  'node:crypto per exchange: 2 P-256 keygens (tee key, JWE ephemeral) + ECDSA-P384 sign (simulated firmware) ' +
  '+ ECDSA-P384 verify (report) + ES256 sign + ES256 verify (token) + 2 ECDH-P256 + 2 Concat KDF + ' +
  'AES-256-KW wrap + unwrap + AES-256-GCM seal + open (32-byte resource) + AES-256-GCM open (KEK-wrapped sealing key)';

const p1363 = { dsaEncoding: 'ieee-p1363' as const };

/**
 * The tee key as Trustee's attester sends it: x, y of the P-256 point. node's ECDH gives the point raw, so
 * the client pays no KeyObject export or import that the floor does not count (the load generator shares
 * the two cores with the broker).
 */
function p256Jwk(tee: ECDH): { kty: 'EC'; crv: 'P-256'; alg: 'ECDH-ES+A256KW'; x: string; y: string } {
  const pt = tee.getPublicKey();
  return {
    kty: 'EC',
    crv: 'P-256',
    alg: 'ECDH-ES+A256KW',
    x: pt.subarray(1, 33).toString('base64url'),
    y: pt.subarray(33).toString('base64url'),
  };
}

/** Opens the resource JWE (ECDH-ES+A256KW, A256GCM) with node:crypto, as any client must. */
function openJwe(jwe: Record<string, string>, tee: ECDH): Buffer {
  const header = JSON.parse(Buffer.from(jwe.protected!, 'base64url').toString('utf8'));
  // computeSecret refuses an epk that is not on the curve.
  const epk = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(header.epk.x, 'base64url'),
    Buffer.from(header.epk.y, 'base64url'),
  ]);
  const kek = concatKdfSha256(tee.computeSecret(epk), 'ECDH-ES+A256KW', 256);
  const cek = aesKeyUnwrap(kek, Buffer.from(jwe.encrypted_key!, 'base64url'));
  const d = createDecipheriv('aes-256-gcm', cek, Buffer.from(jwe.iv!, 'base64url'));
  d.setAAD(Buffer.from(jwe.protected!, 'ascii'));
  d.setAuthTag(Buffer.from(jwe.tag!, 'base64url'));
  return Buffer.concat([d.update(Buffer.from(jwe.ciphertext!, 'base64url')), d.final()]);
}

/** One RCAR exchange by instance `inst`'s attester, checked to its end (the 32-byte sealing key). */
function exchangeOp(b: BrokerProcess, pool: ItemPool<Instance>): LoadOp {
  return () =>
    pool.use(async (inst) => {
      const auth = await httpJson(`${b.url}/kbs/v0/auth`, {
        version: '0.4.0',
        tee: 'snp',
        'extra-params': '',
      });
      const setCookie = auth.headers['set-cookie']?.[0] ?? '';
      const cookie = /^kbs-session-id=[0-9a-f]{64}/.exec(setCookie)?.[0];
      if (auth.status !== 200 || !cookie)
        throw new Error(`auth: ${auth.status} ${JSON.stringify(auth.body)}`);
      const nonce = auth.body.nonce as string;
      const tee = createECDH('prime256v1');
      tee.generateKeys();
      const jwk = p256Jwk(tee);
      const ev = inst.fw.getReport(
        trusteeReportData({ 'tee-pubkey': jwk, nonce, 'additional-evidence': '' }),
      );
      const att = await httpJson(
        `${b.url}/kbs/v0/attest`,
        {
          'runtime-data': { nonce, 'tee-pubkey': jwk },
          'tee-evidence': {
            primary_evidence: {
              'snp-report': Buffer.from(ev.report).toString('base64'),
              'certs-buf': Buffer.from(ev.certTable).toString('base64'),
            },
            additional_evidence: '',
          },
        },
        { cookie },
      );
      if (att.status !== 200) throw new Error(`attest: ${att.status} ${JSON.stringify(att.body)}`);
      const res = await httpJson(`${b.url}/kbs/v0/resource/vouchsafe/sealing-key/current`, undefined, {
        cookie,
      });
      if (res.status !== 200) throw new Error(`resource: ${res.status} ${JSON.stringify(res.body)}`);
      if (openJwe(res.body, tee).length !== 32) throw new Error('resource: not a 32-byte key');
    });
}

/** The exchange's unavoidable crypto on both sides, synchronous on this thread (FLOOR_NAME). */
function exchangeFloor(signed: Uint8Array): () => void {
  const reportKey = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const tokenKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const claims = Buffer.alloc(3000, 0x61); // an EAR with SNP claims is ~3 KiB
  const kekKey = randomBytes(32);
  const kekIv = randomBytes(12);
  const kc = createCipheriv('aes-256-gcm', kekKey, kekIv);
  const wrappedSealing = Buffer.concat([kc.update(randomBytes(32)), kc.final()]);
  const wrappedTag = kc.getAuthTag();
  const aad = Buffer.alloc(200, 0x65);
  return () => {
    const tee = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const sig = sign('sha384', signed, { key: reportKey.privateKey, ...p1363 });
    if (!verify('sha384', signed, { key: reportKey.publicKey, ...p1363 }, sig)) throw new Error('floor');
    const jws = sign('sha256', claims, { key: tokenKey.privateKey, ...p1363 });
    if (!verify('sha256', claims, { key: tokenKey.publicKey, ...p1363 }, jws)) throw new Error('floor');
    const kd = createDecipheriv('aes-256-gcm', kekKey, kekIv);
    kd.setAuthTag(wrappedTag);
    const sealing = Buffer.concat([kd.update(wrappedSealing), kd.final()]);
    // Server: wrap to the tee key.
    const eph = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const kek = concatKdfSha256(
      diffieHellman({ privateKey: eph.privateKey, publicKey: tee.publicKey }),
      'ECDH-ES+A256KW',
    );
    const cek = randomBytes(32);
    const wrapped = aesKeyWrap(kek, cek);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', cek, iv);
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(sealing), c.final()]);
    const tag = c.getAuthTag();
    // Client: unwrap and open.
    const kek2 = concatKdfSha256(
      diffieHellman({ privateKey: tee.privateKey, publicKey: eph.publicKey }),
      'ECDH-ES+A256KW',
    );
    const d = createDecipheriv('aes-256-gcm', aesKeyUnwrap(kek2, wrapped), iv);
    d.setAAD(aad);
    d.setAuthTag(tag);
    if (Buffer.concat([d.update(ct), d.final()]).length !== 32) throw new Error('floor');
  };
}

/** `kbs.rcar.exchange`: knobs as bench/broker.ts (BENCH_BROKER_ROUNDS, BENCH_BROKER_CONCURRENCY, ...). */
export async function benchKbs(): Promise<Figure[]> {
  const k = knobs();
  const chain = await sharedSimChain('Milan');
  const dir = mkdtempSync(join(tmpdir(), 'vouchsafe-bench-kbs-'));
  let b: BrokerProcess | undefined;
  try {
    // Every KBS attest starts a boot lease; a 1 ms lease lets the instance's next exchange in (an expired
    // boot replaced) instead of being refused as a clone.
    b = await spawnBroker({ dataDir: join(dir, 'data'), rootSha256: chain.rootSha256, leaseMs: 1 });
    const instances = await registerInstances(b, chain, k.instances, 'kbs', join(dir, 'unused'));
    const signed = instances[0]!.fw.getReport(new Uint8Array(64)).report.subarray(0, SIGNED_LENGTH);
    const fig = await measure({
      name: 'kbs.rcar.exchange',
      brokerPid: b.pid,
      load: inThisThread(exchangeOp(b, new ItemPool(instances))),
      floor: { name: FLOOR_NAME, op: exchangeFloor(signed) },
      k,
      extra: {
        engine: 'sqlite',
        leaseMs: 1,
        instances: k.instances,
        path: 'POST /kbs/v0/auth + /kbs/v0/attest + GET /kbs/v0/resource, client opens the JWE',
      },
    });
    const refused = await refusals(b);
    if (refused.length > 0) throw new Error(`the broker refused exchanges:\n${refused.join('\n')}`);
    return [fig];
  } finally {
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
