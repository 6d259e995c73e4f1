import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { computeReportData, PARAMS_0_2_0 } from '../../src/formats/aproxy/report-data.js';
import { type BootGuestOptions, bootGuest } from '../../src/guest/boot.js';
import { parseStateHeader, readStateFile } from '../../src/guest/state-file.js';
import { generateP521KeyPair, type P521KeyPair, p521PointOf } from '../../src/native/p521.js';
import type { AttestInput, BackendContext } from '../../src/proxy/backend.js';
import { type RunningProxy, startProxy } from '../../src/proxy/server.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { RecordingProvider, TestBroker } from '../proxy/test-backend.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vs-guest-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function proxyFor(broker: TestBroker): Promise<{ proxy: RunningProxy; dir: string }> {
  const dir = tempDir();
  const proxy = await startProxy({
    listen: `unix:${join(dir, 'aproxy.sock')}`,
    backend: broker,
    logger: silent,
    closeGraceMs: 100,
  });
  return { proxy, dir };
}

const brokerKeys = newKeyPairSync('ec', { namedCurve: 'P-384' });
const identity = {
  project: 'acme-prod',
  zone: 'europe-west4-a',
  instanceId: '7003417203914',
  instanceName: 'db-1',
};

describe('guest end to end: proxy on a unix socket, in-test broker, fake report provider', () => {
  let broker: TestBroker;
  let proxy: RunningProxy;
  let dir: string;
  before(async () => {
    broker = new TestBroker({ signingKey: brokerKeys.privateKey, identity });
    ({ proxy, dir } = await proxyFor(broker));
  });
  after(() => proxy.close());

  const opts = (name: string, extra: Partial<BootGuestOptions> = {}): BootGuestOptions => ({
    connect: proxy.address,
    provider: new RecordingProvider(name),
    statePath: join(dir, `${name}.state`),
    ...extra,
  });

  it('0.2.0: first boot creates the state, reboot unseals the same state, both committed and pinned', async () => {
    const provider = new RecordingProvider('vm-a');
    const o = opts('vm-a', {
      provider,
      brokerPublicKey: brokerKeys.publicKey,
      initialState: new Uint8Array([1, 2, 3]),
    });
    const first = await bootGuest(o);
    assert.equal(first.version, '0.2.0');
    assert.equal(first.firstBoot, true);
    assert.equal(first.statedCounter, null);
    assert.equal(first.counter, 1n);
    assert.equal(first.committed, true);
    assert.equal(first.brokerVerified, true);
    assert.deepEqual(first.identity, identity);
    assert.deepEqual(first.state, new Uint8Array([1, 2, 3]));
    assert.match(first.bootId ?? '', /^boot-/);
    // The provider was asked for exactly the REPORT_DATA the guest computed, and the broker's own
    // recomputation from (key, challenge, counter) matched it, or it would not have released.
    assert.equal(provider.seen.length, 1);
    assert.deepEqual(provider.seen[0], first.reportData);
    assert.equal(parseStateHeader((await readStateFile(o.statePath))!).counter, 1n);

    const second = await bootGuest(o);
    assert.equal(second.firstBoot, false);
    assert.equal(second.statedCounter, 1n);
    assert.equal(second.counter, 2n);
    assert.deepEqual(second.state, new Uint8Array([1, 2, 3]));
    assert.notEqual(second.bootId, first.bootId);
    assert.notDeepEqual(provider.seen[1], provider.seen[0]);
  });

  it('keyPair: the boot uses the key its source hands out (the broker sealed to it, the guest unwrapped)', async () => {
    const made: P521KeyPair[] = [];
    const keyPair = async () => {
      const kp = await generateP521KeyPair();
      made.push(kp);
      return kp;
    };
    const provider = new RecordingProvider('vm-k');
    const r = await bootGuest(opts('vm-k', { provider, keyPair, brokerPublicKey: brokerKeys.publicKey }));
    assert.equal(made.length, 1);
    assert.equal(r.committed, true);
    // REPORT_DATA hashes the source's public key: the key on the wire is the one handed out.
    const point = p521PointOf(made[0]!.publicKey);
    const expected = computeReportData(PARAMS_0_2_0, {
      challenge: broker.lastChallenge!,
      key: point,
      stateCounter: null,
      stateDigest: null,
    });
    assert.deepEqual(provider.seen[0], expected);
  });

  it('0.1.0: behaves as a COCONUT-SVSM (no counter, no commit) and still seals and unseals', async () => {
    const o = opts('vm-b', { version: '0.1.0' });
    const first = await bootGuest(o);
    assert.deepEqual(
      [first.firstBoot, first.counter, first.committed, first.bootId],
      [true, 1n, false, null],
    );
    assert.equal(first.identity, null);
    const second = await bootGuest(o);
    assert.deepEqual([second.firstBoot, second.counter], [false, 2n]);
    assert.deepEqual(second.state, first.state);
  });

  it('rollback: restoring an old copy of the state file is refused by the broker', async () => {
    const o = opts('vm-c');
    await bootGuest(o);
    const old = join(dir, 'vm-c.old');
    copyFileSync(o.statePath, old);
    await bootGuest(o); // counter 2 committed
    copyFileSync(old, o.statePath); // the host puts counter 1 back
    await rejectsCode(bootGuest(o), 'ERR_POLICY_REJECTED', 'broker.rollback');
  });

  it('clone: two guests booting from the same state; the second commit is refused', async () => {
    const o = opts('vm-d');
    await bootGuest(o);
    const cloneState = join(dir, 'vm-d-clone.state');
    copyFileSync(o.statePath, cloneState);
    const clone = { ...o, statePath: cloneState, provider: new RecordingProvider('vm-d') };
    const results = await Promise.allSettled([bootGuest(o), bootGuest(clone)]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.equal(ok.length, 1, 'exactly one of the two copies commits');
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.reason.reason, 'broker.clone');
  });

  it('a 0.1.0 guest cannot pin the broker key', async () => {
    await rejectsCode(
      bootGuest(opts('vm-e', { version: '0.1.0', brokerPublicKey: brokerKeys.publicKey })),
      'ERR_INVALID_ARGUMENT',
      'guest.pin_requires_0_2_0',
    );
  });
});

describe('guest: key rotation', () => {
  it('opens state sealed under the older key and reseals it under the newest, content unchanged', async () => {
    const broker = new TestBroker({ signingKey: brokerKeys.privateKey, identity });
    const { proxy, dir } = await proxyFor(broker);
    try {
      const o: BootGuestOptions = {
        connect: proxy.address,
        provider: new RecordingProvider('rot'),
        statePath: join(dir, 'rot.state'),
        brokerPublicKey: brokerKeys.publicKey,
        initialState: new Uint8Array([7, 7, 7]),
      };
      const first = await bootGuest(o);
      assert.deepEqual([first.keyVersion, first.previousKeyVersion], [1, null]);
      assert.equal(parseStateHeader((await readStateFile(o.statePath))!).keyVersion, 1);
      assert.equal(broker.rotate(), 2);
      const second = await bootGuest(o);
      assert.deepEqual([second.keyVersion, second.previousKeyVersion], [2, 1]);
      assert.deepEqual(second.state, new Uint8Array([7, 7, 7]));
      const h = parseStateHeader((await readStateFile(o.statePath))!);
      assert.deepEqual([h.keyVersion, h.counter], [2, 2n]);
      const third = await bootGuest(o);
      assert.deepEqual([third.keyVersion, third.previousKeyVersion], [2, null]);
      assert.deepEqual(third.state, new Uint8Array([7, 7, 7]));
      // What the guest stated: no state, then the version in its header each time.
      assert.deepEqual(broker.statedKeyVersions, [null, 1, 2]);
    } finally {
      await proxy.close();
    }
  });

  it('refuses a reply without the key its state is sealed under, and leaves the state untouched', async () => {
    const stateKeyVersions: (number | null | undefined)[] = [];
    class Forgetful extends TestBroker {
      override attest(req: AttestInput, ctx: BackendContext) {
        stateKeyVersions.push(req.stateKeyVersion);
        // Drops the stated version: the payload carries only the newest key.
        return super.attest(
          { ...req, ...(req.stateKeyVersion === undefined ? {} : { stateKeyVersion: null }) },
          ctx,
        );
      }
    }
    const broker = new Forgetful();
    const { proxy, dir } = await proxyFor(broker);
    try {
      const o = {
        connect: proxy.address,
        provider: new RecordingProvider('fg'),
        statePath: join(dir, 'fg.state'),
      };
      await bootGuest(o);
      broker.rotate();
      const before = readFileSync(o.statePath);
      await rejectsCode(bootGuest(o), 'ERR_MALFORMED', 'guest.state_key_missing');
      assert.deepEqual(readFileSync(o.statePath), before);
      assert.deepEqual(stateKeyVersions, [null, 1]);
    } finally {
      await proxy.close();
    }
  });

  it('a broker that sends payload format 1 (no key versions) still works; the version is recorded as unknown', async () => {
    class Old extends TestBroker {
      override attest(req: AttestInput, ctx: BackendContext) {
        const { stateKeyVersion: _, ...rest } = req;
        return super.attest(rest, ctx);
      }
    }
    const { proxy, dir } = await proxyFor(new Old());
    try {
      const o = {
        connect: proxy.address,
        provider: new RecordingProvider('old'),
        statePath: join(dir, 'old.state'),
      };
      const a = await bootGuest(o);
      const b = await bootGuest(o);
      assert.deepEqual([a.keyVersion, b.keyVersion, b.previousKeyVersion], [null, null, null]);
      assert.deepEqual(b.state, a.state);
      assert.equal(parseStateHeader((await readStateFile(o.statePath))!).keyVersion, 0);
    } finally {
      await proxy.close();
    }
  });
});

describe('guest: broker pinning and failures', () => {
  it('rejects a response signed by another key before decrypting, and leaves no state behind', async () => {
    const impostor = newKeyPairSync('ec', { namedCurve: 'P-384' });
    const { proxy, dir } = await proxyFor(new TestBroker({ signingKey: impostor.privateKey }));
    try {
      const statePath = join(dir, 'p.state');
      await rejectsCode(
        bootGuest({
          connect: proxy.address,
          provider: new RecordingProvider(),
          statePath,
          brokerPublicKey: brokerKeys.publicKey.export({ type: 'spki', format: 'pem' }) as string,
        }),
        'ERR_SIGNATURE_INVALID',
        'aproxy.signature',
      );
      assert.equal(await readStateFile(statePath), undefined);
    } finally {
      await proxy.close();
    }
  });

  it('rejects an unsigned response when a key is pinned', async () => {
    const { proxy, dir } = await proxyFor(new TestBroker());
    try {
      await rejectsCode(
        bootGuest({
          connect: proxy.address,
          provider: new RecordingProvider(),
          statePath: join(dir, 'u.state'),
          brokerPublicKey: brokerKeys.publicKey.export({ type: 'spki', format: 'der' }),
        }),
        'ERR_SIGNATURE_INVALID',
        'aproxy.signature.missing',
      );
    } finally {
      await proxy.close();
    }
  });

  it('a state file sealed under another secret is refused and left untouched', async () => {
    const a = await proxyFor(new TestBroker());
    const statePath = join(a.dir, 's.state');
    try {
      await bootGuest({ connect: a.proxy.address, provider: new RecordingProvider(), statePath });
    } finally {
      await a.proxy.close();
    }
    const before = readFileSync(statePath);
    const b = await proxyFor(new TestBroker()); // a different secret
    try {
      await rejectsCode(
        bootGuest({ connect: b.proxy.address, provider: new RecordingProvider(), statePath }),
        'ERR_SIGNATURE_INVALID',
        'state.auth',
      );
      assert.deepEqual(readFileSync(statePath), before);
    } finally {
      await b.proxy.close();
    }
  });

  it('refuses params that leave out StateCounter in 0.2.0 (the counter would not be bound)', async () => {
    const { proxy, dir } = await proxyFor(
      new TestBroker({ params: { '0.2.0': ['EcPublicKeyBytes', 'Challenge'] } }),
    );
    try {
      await rejectsCode(
        bootGuest({
          connect: proxy.address,
          provider: new RecordingProvider(),
          statePath: join(dir, 'q.state'),
        }),
        'ERR_MALFORMED',
        'guest.params',
      );
    } finally {
      await proxy.close();
    }
  });

  it('with params [Challenge, EcPublicKeyBytes] the REPORT_DATA follows that order', async () => {
    const seen: AttestInput[] = [];
    class Capturing extends TestBroker {
      override attest(req: AttestInput, ctx: BackendContext) {
        seen.push(req);
        return super.attest(req, ctx);
      }
    }
    const { proxy, dir } = await proxyFor(
      new Capturing({ params: { '0.1.0': ['Challenge', 'EcPublicKeyBytes'] } }),
    );
    try {
      const r = await bootGuest({
        connect: proxy.address,
        provider: new RecordingProvider(),
        statePath: join(dir, 'o.state'),
        version: '0.1.0',
      });
      const { challenge, key } = seen[0]!;
      const sha = (...p: Uint8Array[]) =>
        new Uint8Array(p.reduce((h, x) => h.update(x), createHash('sha512')).digest());
      assert.deepEqual(r.reportData, sha(challenge, key.x, key.y));
      assert.notDeepEqual(r.reportData, sha(key.x, key.y, challenge));
    } finally {
      await proxy.close();
    }
  });

  it('a proxy that is not there is Unavailable, not a hang', async () => {
    const dir = tempDir();
    await rejectsCode(
      bootGuest({
        connect: `unix:${join(dir, 'none.sock')}`,
        provider: new RecordingProvider(),
        statePath: join(dir, 'n.state'),
      }),
      'ERR_UNAVAILABLE',
      'guest.channel.connect',
    );
  });

  it('a proxy that stops answering is a timeout', async () => {
    const { proxy, dir } = await proxyFor(new TestBroker({ fail: { negotiate: 'hang' } }));
    try {
      await rejectsCode(
        bootGuest({
          connect: proxy.address,
          provider: new RecordingProvider(),
          statePath: join(dir, 't.state'),
          timeoutMs: 300,
        }),
        'ERR_UNAVAILABLE',
        'guest.channel.timeout',
      );
    } finally {
      await proxy.close();
    }
  });
});
