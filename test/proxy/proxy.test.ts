import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { AttestationError } from '../../src/errors.js';
import { bootGuest } from '../../src/guest/boot.js';
import { type RunningProxy, startProxy } from '../../src/proxy/server.js';
import type { ProxyTimeouts } from '../../src/proxy/session.js';
import { encodeBase64 } from '../../src/util/base64.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { waitFor } from '../helpers/wait.js';
import { RawClient } from './raw-client.js';
import { RecordingProvider, TestBroker } from './test-backend.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vs-proxy-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function memoryLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

async function start(broker: TestBroker, timeouts?: Partial<ProxyTimeouts>) {
  const dir = tempDir();
  const { logger, lines } = memoryLogger();
  const proxy = await startProxy({
    listen: `unix:${join(dir, 'aproxy.sock')}`,
    backend: broker,
    logger,
    timeouts,
  });
  return { proxy, dir, lines };
}

const NEG_010 = '{"version":[0,1,0],"tee":"snp"}';
const NEG_020 = '{"version":[0,2,0],"tee":"snp"}';

async function boot(proxy: RunningProxy, dir: string, name: string, version: '0.1.0' | '0.2.0' = '0.2.0') {
  return bootGuest({
    connect: proxy.address,
    provider: new RecordingProvider(name),
    statePath: join(dir, `${name}.state`),
    version,
    timeoutMs: 10_000,
  });
}

describe('proxy: malformed and hostile guests', () => {
  let ctx: Awaited<ReturnType<typeof start>>;
  before(async () => {
    ctx = await start(new TestBroker(), { readMs: 400, backendMs: 2000, sessionMs: 20_000 });
  });
  after(() => ctx.proxy.close());

  it('drops a guest that connects and goes silent after the read timeout, while another guest completes', async () => {
    const silent = await RawClient.connect(ctx.proxy.address);
    const t0 = Date.now();
    const result = await boot(ctx.proxy, ctx.dir, 'concurrent-with-silent');
    assert.equal(result.committed, true);
    // A lower bound only (not dropped before its timeout): a busy machine may take longer, never shorter.
    const closedAt = await silent.closed(30_000);
    assert.ok(closedAt - t0 >= 350, `dropped after ${closedAt - t0} ms`);
  });

  it('drops a guest that trickles a frame slower than the read deadline (per frame, not per byte)', async () => {
    const c = await RawClient.connect(ctx.proxy.address);
    const frame = Buffer.concat([Buffer.from([31, 0, 0, 0, 0, 0, 0, 0]), Buffer.from(NEG_020)]);
    let i = 0;
    const timer = setInterval(() => {
      if (i < frame.length && c.closedAt === undefined) c.sendRaw(frame.subarray(i, ++i));
    }, 50);
    await c.closed(30_000);
    clearInterval(timer);
    // The deadline is per frame: had each byte renewed it, the frame would have completed before the drop.
    assert.ok(i < frame.length, 'the frame never completed');
  });

  it('closes on a lying length prefix without waiting for the claimed bytes', async () => {
    const c = await RawClient.connect(ctx.proxy.address);
    c.sendRaw(Buffer.from('ffffffffffffff7f', 'hex'));
    assert.equal(await c.next(10_000), 'EOF');
    const c2 = await RawClient.connect(ctx.proxy.address);
    c2.sendRaw(Buffer.from('0100100000000000', 'hex')); // 1 MiB + 1
    assert.equal(await c2.next(10_000), 'EOF');
  });

  it('0.2.0: malformed JSON and bad base64 get an ErrorReply with a stable code and reason', async () => {
    const c = await RawClient.connect(ctx.proxy.address);
    c.sendFrame(NEG_020);
    const neg = JSON.parse(await c.next());
    assert.deepEqual(neg.version, [0, 2, 0]);
    const x = encodeBase64(new Uint8Array(66));
    c.sendFrame(
      `{"tee":"snp","evidence":{"Snp":{"report":"AQID"}},"challenge":"${neg.challenge.replace(/=+$/, '')}",` +
        `"key":{"x":"${x}","y":"${x}"},"stateCounter":null,"stateDigest":null}`,
    );
    const reply = JSON.parse(await c.next());
    assert.equal(reply.success, false);
    assert.equal(reply.error.code, 'ERR_MALFORMED');
    assert.equal(reply.error.reason, 'aproxy.base64');
    assert.equal(await c.next(), 'EOF');

    const d = await RawClient.connect(ctx.proxy.address);
    d.sendFrame('{"version":[0,2,0],"tee":"snp"');
    const r2 = JSON.parse(await d.next());
    assert.equal(r2.error.reason, 'aproxy.json.syntax');
  });

  it('0.1.0: a malformed AttestationRequest gets the aproxy-compatible {"success":false}', async () => {
    const c = await RawClient.connect(ctx.proxy.address);
    c.sendFrame(NEG_010);
    const neg = JSON.parse(await c.next());
    assert.deepEqual(Object.keys(neg), ['challenge', 'params']);
    assert.deepEqual(neg.params, ['EcPublicKeyBytes', 'Challenge']);
    c.sendFrame('{"tee":"snp","evidence":{"Snp":{"report":"AQID"}},"challenge":"AA==","key":{"x":1,"y":2}}');
    assert.equal(await c.next(), '{"success":false,"decryption":null,"token":null}');
  });

  it('0.1.0: a malformed NegotiationRequest is dropped, as aproxy does', async () => {
    const c = await RawClient.connect(ctx.proxy.address);
    // (An unknown field is not malformed: it is ignored, as serde does; test/proxy/unknown-fields.test.ts.)
    c.sendFrame('{"version":[0,1,0]}');
    assert.equal(await c.next(), 'EOF');
  });

  it('an unknown version gets ErrorReply ERR_NOT_SUPPORTED aproxy.version; a non-snp TEE too (0.2.0)', async () => {
    const c = await RawClient.connect(ctx.proxy.address);
    c.sendFrame('{"version":[0,3,0],"tee":"snp"}');
    const r = JSON.parse(await c.next());
    assert.deepEqual([r.error.code, r.error.reason], ['ERR_NOT_SUPPORTED', 'aproxy.version']);
    const d = await RawClient.connect(ctx.proxy.address);
    d.sendFrame('{"version":[0,2,0],"tee":"tdx"}');
    const r2 = JSON.parse(await d.next());
    assert.deepEqual([r2.error.code, r2.error.reason], ['ERR_NOT_SUPPORTED', 'aproxy.tee']);
  });

  it('refuses an AttestationRequest whose challenge is not the negotiated one', async () => {
    const c = await RawClient.connect(ctx.proxy.address);
    c.sendFrame(NEG_020);
    await c.next();
    const x = encodeBase64(new Uint8Array(66));
    c.sendFrame(
      `{"tee":"snp","evidence":{"Snp":{"report":"AQID"}},"challenge":"AAAA","key":{"x":"${x}","y":"${x}"},"stateCounter":null,"stateDigest":null}`,
    );
    const r = JSON.parse(await c.next());
    assert.deepEqual([r.error.code, r.error.reason], ['ERR_BINDING_MISMATCH', 'aproxy.challenge']);
  });

  it('keeps serving after all of the above', async () => {
    const r = await boot(ctx.proxy, ctx.dir, 'after-abuse');
    assert.equal(r.committed, true);
    assert.equal(ctx.proxy.activeSessions() >= 0, true);
    const outcomes = ctx.proxy.outcomes();
    assert.ok((outcomes.timeout ?? 0) >= 2, JSON.stringify(outcomes));
    assert.ok((outcomes.malformed ?? 0) >= 3, JSON.stringify(outcomes));
  });
});

describe('proxy: backend failures', () => {
  it('backend throwing at attest: 0.2.0 guest gets ERR_UNAVAILABLE, 0.1.0 gets success:false, proxy serves on', async () => {
    const broker = new TestBroker({ fail: { attest: 'throw' } });
    const { proxy, dir, lines } = await start(broker);
    try {
      await rejectsCode(boot(proxy, dir, 'a'), 'ERR_UNAVAILABLE', 'proxy.backend.unavailable');
      await rejectsCode(boot(proxy, dir, 'b', '0.1.0'), 'ERR_POLICY_REJECTED', 'aproxy.refused');
      // The backend's own error text (which may name internal hosts) is logged as detail, not sent to guests.
      assert.ok(
        lines.some((l) => l.includes('"step":"attest"')),
        'backend failure logged',
      );
      (broker.opts.fail as Record<string, unknown>).attest = undefined;
      const ok = await boot(proxy, dir, 'c');
      assert.equal(ok.committed, true);
    } finally {
      await proxy.close();
    }
  });

  it('backend hanging: the guest gets proxy.backend.timeout after backendMs', async () => {
    const broker = new TestBroker({ fail: { attest: 'hang' } });
    const { proxy, dir } = await start(broker, { backendMs: 300 });
    try {
      await rejectsCode(boot(proxy, dir, 'a'), 'ERR_UNAVAILABLE', 'proxy.backend.timeout');
    } finally {
      await proxy.close();
    }
  });

  it('backend throwing at negotiate: 0.1.0 connection dropped, 0.2.0 ErrorReply', async () => {
    const broker = new TestBroker({ fail: { negotiate: 'throw' } });
    const { proxy, dir } = await start(broker);
    try {
      const c = await RawClient.connect(proxy.address);
      c.sendFrame(NEG_010);
      assert.equal(await c.next(), 'EOF');
      await rejectsCode(boot(proxy, dir, 'x'), 'ERR_UNAVAILABLE', 'proxy.backend.unavailable');
    } finally {
      await proxy.close();
    }
  });

  it('a typed broker outage (Unavailable native.*) reaches the guest as such and counts as backend_error, not refused', async () => {
    for (const step of ['negotiate', 'attest', 'commit'] as const) {
      const broker = new TestBroker({ fail: { [step]: 'unavailable' } });
      const { proxy, dir } = await start(broker);
      try {
        await rejectsCode(boot(proxy, dir, `out-${step}`), 'ERR_UNAVAILABLE', 'native.broker_unreachable');
        await waitFor(() => !!proxy.outcomes().backend_error, 'the proxy counted the backend error');
        assert.deepEqual(proxy.outcomes(), { backend_error: 1 }, step);
      } finally {
        await proxy.close();
      }
    }
    // A refusal the backend throws (not an outage) still counts as refused.
    class Refusing extends TestBroker {
      override async negotiate(): Promise<never> {
        throw new AttestationError('ERR_REFUSED', 'broker.clone', 'refused');
      }
    }
    const { proxy, dir } = await start(new Refusing());
    try {
      await rejectsCode(boot(proxy, dir, 'refusing'), 'ERR_REFUSED', 'broker.clone');
      await waitFor(() => !!proxy.outcomes().refused, 'the proxy counted the refusal');
      assert.deepEqual(proxy.outcomes(), { refused: 1 });
    } finally {
      await proxy.close();
    }
  });

  it('a policy refusal passes its code and reason through to a 0.2.0 guest', async () => {
    const { proxy, dir } = await start(new TestBroker({ fail: { attest: 'refuse' } }));
    try {
      await rejectsCode(boot(proxy, dir, 'r'), 'ERR_POLICY_REJECTED', 'snp.measurement');
    } finally {
      await proxy.close();
    }
  });
});

describe('proxy: Heartbeat and End (0.2.0 lease messages)', () => {
  const token = encodeBase64(new Uint8Array(32).fill(1));
  const nonce = encodeBase64(new Uint8Array(32).fill(2));
  const lease = (op: string, bootId: string, version = '[0,2,0]', tok = token) =>
    `{"version":${version},"op":"${op}","bootId":"${bootId}","commitToken":"${tok}","nonce":"${nonce}"}`;

  it('relays a heartbeat and an end for a live boot, each on its own connection', async () => {
    const broker = new TestBroker();
    const { proxy, dir, lines } = await start(broker);
    try {
      const r = await boot(proxy, dir, 'lease');
      const t = encodeBase64((r.session as unknown as { token: Uint8Array }).token);
      const c = await RawClient.connect(proxy.address);
      c.sendFrame(lease('heartbeat', r.bootId!, '[0,2,0]', t));
      const hb = JSON.parse(await c.next());
      assert.deepEqual(Object.keys(hb), ['success', 'op', 'leaseExpiresAt', 'signature']);
      assert.equal(hb.success, true);
      assert.equal(hb.op, 'heartbeat');
      assert.ok(Number.isInteger(hb.leaseExpiresAt) && hb.leaseExpiresAt > Date.now());
      assert.equal(hb.signature, null);
      c.end();
      assert.equal(await c.next(), 'EOF');
      const d = await RawClient.connect(proxy.address);
      d.sendFrame(lease('end', r.bootId!, '[0,2,0]', t));
      assert.equal(await d.next(), '{"success":true,"op":"end","leaseExpiresAt":null,"signature":null}');
      d.end();
      await d.closed();
      // A refused lease op passes the broker's code and reason through.
      const e = await RawClient.connect(proxy.address);
      e.sendFrame(lease('heartbeat', r.bootId!, '[0,2,0]', t));
      const refused = JSON.parse(await e.next());
      assert.deepEqual([refused.error.code, refused.error.reason], ['ERR_REFUSED', 'broker.boot_unknown']);
      await waitFor(() => (proxy.outcomes().refused ?? 0) >= 1, 'the proxy counted the refusal');
      assert.deepEqual(
        [proxy.outcomes().renewed, proxy.outcomes().ended, proxy.outcomes().refused],
        [1, 1, 1],
      );
      // Neither the token nor the nonce reaches the logs.
      const text = lines.join('');
      assert.ok(!text.includes(t) && !text.includes(nonce));
      assert.ok(text.includes('"event":"heartbeat"') && text.includes('"event":"renewed"'));
    } finally {
      await proxy.close();
    }
  });

  it('a lease op in another version is ERR_NOT_SUPPORTED aproxy.version; a malformed one ERR_MALFORMED', async () => {
    const broker = new TestBroker();
    const { proxy } = await start(broker);
    try {
      for (const v of ['[0,1,0]', '[0,3,0]']) {
        const c = await RawClient.connect(proxy.address);
        c.sendFrame(lease('heartbeat', 'b-1', v));
        const r = JSON.parse(await c.next());
        assert.deepEqual([r.error.code, r.error.reason], ['ERR_NOT_SUPPORTED', 'aproxy.version']);
      }
      const c = await RawClient.connect(proxy.address);
      c.sendFrame(lease('heartbeat', 'b 1'));
      const r = JSON.parse(await c.next());
      assert.deepEqual([r.error.code, r.error.reason], ['ERR_MALFORMED', 'aproxy.field.value']);
      const d = await RawClient.connect(proxy.address);
      d.sendFrame('{"version":[0,2,0],"op":"heartbeat","bootId":"b"}');
      const r2 = JSON.parse(await d.next());
      assert.deepEqual([r2.error.code, r2.error.reason], ['ERR_MALFORMED', 'aproxy.field.missing']);
      // A 0.1.0-looking opening with an op field is dropped without a reply, like any bad 0.1.0 opening.
      const e = await RawClient.connect(proxy.address);
      e.sendFrame('{"version":[0,1,0],"tee":"snp","op":"end"}');
      assert.equal(await e.next(), 'EOF');
      assert.equal(broker.calls.heartbeat, 0);
    } finally {
      await proxy.close();
    }
  });

  it('a backend failing a heartbeat: ERR_UNAVAILABLE, counted as a backend error', async () => {
    const broker = new TestBroker({ fail: { heartbeat: 'throw' } });
    const { proxy } = await start(broker);
    try {
      const c = await RawClient.connect(proxy.address);
      c.sendFrame(lease('heartbeat', 'b-1'));
      const r = JSON.parse(await c.next());
      assert.deepEqual([r.error.code, r.error.reason], ['ERR_UNAVAILABLE', 'proxy.backend.unavailable']);
      assert.equal(await c.next(), 'EOF');
      await waitFor(() => !!proxy.outcomes().backend_error, 'the proxy counted the backend error');
      assert.equal(proxy.outcomes().backend_error, 1);
    } finally {
      await proxy.close();
    }
  });
});

describe('proxy: concurrency', () => {
  it('serves 50 guests at once while a malicious guest floods and another hangs', async () => {
    const broker = new TestBroker();
    const { proxy, dir } = await start(broker, { readMs: 5000 });
    try {
      const flood = await RawClient.connect(proxy.address);
      flood.sendRaw(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]));
      flood.sendRaw(Buffer.alloc(3 * 1024 * 1024, 0x41));
      const hang = await RawClient.connect(proxy.address);
      hang.sendFrame(NEG_020);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => boot(proxy, dir, `g${i}`, i % 5 === 0 ? '0.1.0' : '0.2.0')),
      );
      assert.equal(results.length, 50);
      const bootIds = new Set<string>();
      for (const [i, r] of results.entries()) {
        assert.equal(r.firstBoot, true);
        assert.equal(r.counter, 1n);
        assert.equal(r.committed, i % 5 !== 0);
        if (r.bootId) bootIds.add(r.bootId);
      }
      assert.equal(bootIds.size, 40);
      assert.equal(broker.committed.size, 40);
      assert.equal(await flood.next(2000), 'EOF');
      assert.equal(hang.closedAt, undefined, 'the hanging guest is only dropped at its own timeout');
      hang.end();
      // Measured, not asserted tightly: 50 boots share 2 cores with key generation on both ends.
    } finally {
      await proxy.close();
    }
  });
});

describe('proxy: listening, logs and shutdown', () => {
  it('removes a stale unix socket, refuses a live one and never removes a regular file', async () => {
    const dir = tempDir();
    const path = join(dir, 's.sock');
    // A stale socket: bind a server, move its file aside (close() then cannot unlink it), close it.
    const srv = createServer();
    const side = join(dir, 'side.sock');
    await new Promise<void>((r) => srv.listen(side, r));
    renameSync(side, path);
    await new Promise<void>((r) => srv.close(() => r()));
    assert.ok(statSync(path).isSocket(), 'stale socket file exists');
    const { logger, lines } = memoryLogger();
    const p = await startProxy({ listen: `unix:${path}`, backend: new TestBroker(), logger });
    assert.ok(
      lines.some((l) => l.includes('stale_socket_removed')),
      'stale socket removal logged',
    );
    // Now a live one: a second proxy on the same path must refuse.
    await rejectsCode(
      startProxy({ listen: `unix:${path}`, backend: new TestBroker(), logger }),
      'ERR_INVALID_ARGUMENT',
      'proxy.listen.in_use',
    );
    const r = await boot(p, dir, 'live');
    assert.equal(r.committed, true);
    await p.close();
    assert.throws(() => statSync(path), /ENOENT/);
    const file = join(dir, 'regular');
    writeFileSync(file, 'keep me');
    await rejectsCode(
      startProxy({ listen: `unix:${file}`, backend: new TestBroker(), logger }),
      'ERR_INVALID_ARGUMENT',
      'proxy.listen.not_socket',
    );
    assert.equal(statSync(file).size, 7);
  });

  it('serves TCP (port 0 picks a port) and validates addresses', async () => {
    const { logger } = memoryLogger();
    const p = await startProxy({ listen: 'tcp:127.0.0.1:0', backend: new TestBroker(), logger });
    try {
      assert.match(p.address, /^tcp:127\.0\.0\.1:\d+$/);
      const r = await boot(p, tempDir(), 'tcp');
      assert.equal(r.committed, true);
    } finally {
      await p.close();
    }
    for (const bad of ['vsock:1995', 'tcp:host', 'tcp:h:99999', 'unix:']) {
      await rejectsCode(
        startProxy({ listen: bad, backend: new TestBroker(), logger }),
        'ERR_INVALID_ARGUMENT',
        'proxy.address',
      );
    }
  });

  it('logs sessions without challenges, keys, reports or secrets', async () => {
    const broker = new TestBroker();
    const { proxy, dir, lines } = await start(broker);
    try {
      const provider = new RecordingProvider();
      const r = await bootGuest({ connect: proxy.address, provider, statePath: join(dir, 'l.state') });
      assert.equal(r.committed, true);
      // The session ends when the proxy sees the guest's close, just after bootGuest returns.
      await waitFor(() => lines.some((l) => l.includes('"event":"session_end"')), 'session_end logged');
      const text = lines.join('');
      assert.ok(text.includes('"event":"released"'), 'release logged');
      assert.ok(text.includes('"event":"session_end"'), 'session end logged');
      for (const needle of [
        encodeBase64(broker.secret),
        Buffer.from(broker.secret).toString('hex'),
        encodeBase64(provider.seen[0]!),
        encodeBase64(r.reportData.subarray(0, 12)).slice(0, 12),
      ]) {
        assert.ok(!text.includes(needle), `log leaks ${needle}`);
      }
      for (const l of lines) {
        const o = JSON.parse(l);
        for (const k of ['challenge', 'secret', 'key', 'report', 'commitToken'])
          assert.ok(!(k in o), `log field ${k}`);
      }
    } finally {
      await proxy.close();
    }
  });

  it('close() lets a running session finish, then refuses new connections', async () => {
    const broker = new TestBroker();
    const { proxy, dir } = await start(broker);
    const c = await RawClient.connect(proxy.address);
    c.sendFrame(NEG_010);
    await c.next();
    const closing = proxy.close();
    c.end(); // the guest gives up; the session ends and close() completes
    await closing;
    await assert.rejects(RawClient.connect(proxy.address));
    await rejectsCode(boot(proxy, dir, 'after-close'), 'ERR_UNAVAILABLE', 'guest.channel.connect');
  });
});
