/**
 * The guest's lease (GuestSession): Heartbeat and End over their own connections through the real proxy to
 * the in-test broker, signed acknowledgements checked against the pinned key, HaltRequired when another boot
 * took over, and the heartbeat loop (interval, stop, halt on boot_unknown, halt when the lease runs out).
 */
import assert from 'node:assert/strict';

import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { AttestationError } from '../../src/errors.js';
import { type BootGuestOptions, bootGuest } from '../../src/guest/boot.js';
import { GuestSession, HaltRequired } from '../../src/guest/session.js';
import type { ProxyBackend } from '../../src/proxy/backend.js';
import { type RunningProxy, startProxy } from '../../src/proxy/server.js';
import { newKeyPairSync } from '../../src/util/key-pair.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { waitFor } from '../helpers/wait.js';
import { RecordingProvider, TestBroker } from '../proxy/test-backend.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
const proxies: RunningProxy[] = [];
after(async () => {
  for (const p of proxies) await p.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const brokerKeys = newKeyPairSync('ec', { namedCurve: 'P-384' });
const otherKeys = newKeyPairSync('ec', { namedCurve: 'P-384' });

async function setup(backend: ProxyBackend) {
  const dir = mkdtempSync(join(tmpdir(), 'vs-session-'));
  dirs.push(dir);
  const proxy = await startProxy({
    listen: `unix:${join(dir, 'aproxy.sock')}`,
    backend,
    logger: silent,
    closeGraceMs: 100,
  });
  proxies.push(proxy);
  const opts = (name: string, extra: Partial<BootGuestOptions> = {}): BootGuestOptions => ({
    connect: proxy.address,
    provider: new RecordingProvider(name),
    statePath: join(dir, `${name}.state`),
    timeoutMs: 5000,
    ...extra,
  });
  return { dir, proxy, opts };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rejects with HaltRequired carrying this code and reason. */
async function halts(p: Promise<unknown>, code: string, reason: string): Promise<HaltRequired> {
  let got: unknown;
  try {
    await p;
  } catch (e) {
    got = e;
  }
  assert.ok(got instanceof HaltRequired, `expected HaltRequired, got ${String(got)}`);
  assert.ok(got instanceof AttestationError);
  assert.equal(got.code, code);
  assert.equal(got.reason, reason);
  return got;
}

describe('guest session: heartbeat and end through the proxy', () => {
  it('heartbeat renews (signed over the nonce, verified with the pinned key); end ends the boot', async () => {
    const broker = new TestBroker({ signingKey: brokerKeys.privateKey, leaseMs: 60_000 });
    const { proxy, opts } = await setup(broker);
    const r = await bootGuest(opts('vm-hb', { brokerPublicKey: brokerKeys.publicKey }));
    assert.ok(r.session, '0.2.0 boots have a session');
    assert.equal(r.session.bootId, r.bootId);
    const before = r.session.renewedAt;
    const t0 = Date.now();
    const ack = await r.session.heartbeat();
    assert.equal(ack.op, 'heartbeat');
    assert.equal(ack.brokerVerified, true);
    assert.ok(ack.leaseExpiresAt! >= t0 + 60_000 && ack.leaseExpiresAt! <= Date.now() + 60_000);
    assert.ok(r.session.renewedAt >= before);
    assert.equal(broker.calls.heartbeat, 1);
    const end = await r.session.end();
    assert.deepEqual(end, { op: 'end', leaseExpiresAt: null, brokerVerified: true });
    assert.equal(broker.active.size, 0);
    // The session is spent: nothing more goes out.
    await rejectsCode(r.session.heartbeat(), 'ERR_INVALID_ARGUMENT', 'guest.session.ended');
    assert.equal(broker.calls.heartbeat, 1);
    // Each session ends when the proxy sees the guest close, just after the call returned.
    await waitFor(() => (proxy.outcomes().ended ?? 0) >= 1, 'the proxy saw the session end');
    const outcomes = proxy.outcomes();
    assert.equal(outcomes.renewed, 1);
    assert.equal(outcomes.ended, 1);
  });

  it('a boot superseded by a newer one gets HaltRequired ERR_REFUSED broker.boot_unknown', async () => {
    const broker = new TestBroker();
    const { opts, dir } = await setup(broker);
    const a = await bootGuest(opts('vm-sup'));
    copyFileSync(join(dir, 'vm-sup.state'), join(dir, 'vm-sup-copy.state'));
    // Another boot of the same instance (the VM restarted elsewhere after A was presumed dead).
    const b = await bootGuest(opts('vm-sup', { statePath: join(dir, 'vm-sup-copy.state') }));
    assert.notEqual(a.bootId, b.bootId);
    await halts(a.session!.heartbeat(), 'ERR_REFUSED', 'broker.boot_unknown');
    await halts(a.session!.end(), 'ERR_REFUSED', 'broker.boot_unknown');
    // The newer boot is unaffected.
    assert.equal((await b.session!.heartbeat()).op, 'heartbeat');
  });

  it('a wrong token is an ordinary refusal, not a halt', async () => {
    const broker = new TestBroker();
    const { opts } = await setup(broker);
    const a = await bootGuest(opts('vm-tok'));
    // Tamper with the copied token inside the session (a broken guest): refused as broker.commit_token.
    (a.session as unknown as { token: Uint8Array }).token[0]! ^= 1;
    await assert.rejects(a.session!.heartbeat(), (e: unknown) => {
      assert.ok(e instanceof AttestationError && !(e instanceof HaltRequired));
      assert.equal(e.reason, 'broker.commit_token');
      return true;
    });
  });

  it('with a pinned key, an acknowledgement signed by another key or not signed is refused', async () => {
    const impostor = new TestBroker({ signingKey: otherKeys.privateKey });
    const { opts } = await setup(impostor);
    // Boot without a pin (the impostor's attestation signature would fail first), then pin for the lease.
    const a = await bootGuest(opts('vm-pin'));
    const pinned = new GuestSession({
      connect: opts('x').connect,
      timeoutMs: 5000,
      bootId: a.bootId!,
      commitToken: (a.session as unknown as { token: Uint8Array }).token,
      renewedAt: Date.now(),
      brokerKey: brokerKeys.publicKey,
    });
    await rejectsCode(pinned.heartbeat(), 'ERR_SIGNATURE_INVALID', 'aproxy.lease_signature');
    const unsigned = new TestBroker();
    const u = await setup(unsigned);
    const b = await bootGuest(u.opts('vm-unsigned'));
    const pinnedU = new GuestSession({
      connect: u.proxy.address,
      timeoutMs: 5000,
      bootId: b.bootId!,
      commitToken: (b.session as unknown as { token: Uint8Array }).token,
      renewedAt: Date.now(),
      brokerKey: brokerKeys.publicKey,
    });
    await rejectsCode(pinnedU.heartbeat(), 'ERR_SIGNATURE_INVALID', 'aproxy.lease_signature.missing');
    await rejectsCode(pinnedU.end(), 'ERR_SIGNATURE_INVALID', 'aproxy.lease_signature.missing');
  });

  it('a 0.1.0 boot has no session (0.1.0 has no lease messages)', async () => {
    const { opts } = await setup(new TestBroker());
    const r = await bootGuest(opts('vm-010', { version: '0.1.0' }));
    assert.equal(r.session, null);
  });

  it('a backend without leases (e.g. a KBS) answers ERR_NOT_SUPPORTED proxy.backend.lease_unsupported', async () => {
    const full = new TestBroker();
    const noLease: ProxyBackend = {
      negotiate: (r, c) => full.negotiate(r, c),
      attest: (r, c) => full.attest(r, c),
      commit: (r, c) => full.commit(r, c),
    };
    const { opts } = await setup(noLease);
    const r = await bootGuest(opts('vm-kbs'));
    await rejectsCode(r.session!.heartbeat(), 'ERR_NOT_SUPPORTED', 'proxy.backend.lease_unsupported');
  });
});

describe('guest session: the heartbeat loop', () => {
  it('heartbeats every intervalMs until stopped', async () => {
    const broker = new TestBroker({ signingKey: brokerKeys.privateKey });
    const { opts } = await setup(broker);
    const r = await bootGuest(opts('vm-loop', { brokerPublicKey: brokerKeys.publicKey }));
    const acks: boolean[] = [];
    // A lease far longer than the interval: the watchdog (no heartbeat for leaseMs) must not fire because a
    // busy machine delayed one, which this test is not about.
    const loop = r.session!.startHeartbeats({
      leaseMs: 30_000,
      intervalMs: 100,
      onRenewed: (a) => acks.push(a.brokerVerified),
    });
    assert.equal(loop.running, true);
    const t0 = Date.now();
    await waitFor(() => acks.length >= 3, 'three verified heartbeats');
    await loop.stop();
    const elapsed = Date.now() - t0;
    assert.equal(loop.running, false);
    const n = broker.calls.heartbeat;
    // Never faster than the interval: each heartbeat is scheduled intervalMs after the previous one ended, so
    // a busy machine can only lower the count; there is no lower bound by time.
    assert.ok(n <= Math.floor(elapsed / 100) + 2, `${n} heartbeats in ${elapsed} ms at 100 ms`);
    assert.ok(acks.every(Boolean));
    await sleep(250);
    assert.equal(broker.calls.heartbeat, n, 'no heartbeat after stop()');
    // Stopped, not halted: the session still works, and end() ends it.
    await r.session!.end();
    assert.equal(broker.active.size, 0);
  });

  it('halts with broker.boot_unknown as soon as another boot took over', async () => {
    const broker = new TestBroker();
    const { opts, dir } = await setup(broker);
    const a = await bootGuest(opts('vm-halt'));
    const halted: HaltRequired[] = [];
    const loop = a.session!.startHeartbeats({
      leaseMs: 2000,
      intervalMs: 100,
      onHalt: (e) => halted.push(e),
    });
    await sleep(150);
    copyFileSync(join(dir, 'vm-halt.state'), join(dir, 'vm-halt-2.state'));
    await bootGuest(opts('vm-halt', { statePath: join(dir, 'vm-halt-2.state') }));
    // boot_unknown (not a lapsed lease) shows the heartbeat's refusal halted it, however busy the machine.
    const e = await loop.halted;
    assert.ok(e instanceof HaltRequired);
    assert.deepEqual([e.code, e.reason], ['ERR_REFUSED', 'broker.boot_unknown']);
    assert.deepEqual(halted, [e]);
    assert.equal(loop.running, false);
  });

  it('halts with guest.lease_lost when no heartbeat succeeds for a whole lease; reports each failure', async () => {
    const broker = new TestBroker();
    const { opts } = await setup(broker);
    const a = await bootGuest(opts('vm-lost'));
    (broker.opts as { fail?: Record<string, string> }).fail = { heartbeat: 'unavailable' };
    const errors: unknown[] = [];
    const loop = a.session!.startHeartbeats({
      leaseMs: 600,
      intervalMs: 100,
      onError: (e) => errors.push(e),
    });
    const e = await loop.halted;
    // lease_lost is the event: the guest halted because its lease ran out unrenewed (no wall-clock bound).
    assert.deepEqual([e.code, e.reason], ['ERR_UNAVAILABLE', 'guest.lease_lost']);
    assert.ok(errors.length >= 1, `${errors.length} failures reported`);
    for (const x of errors) {
      assert.ok(x instanceof AttestationError);
      assert.deepEqual([x.code, x.reason], ['ERR_UNAVAILABLE', 'native.broker_unreachable']);
    }
  });

  it('refuses intervals that are not well inside the lease', async () => {
    const { opts } = await setup(new TestBroker());
    const a = await bootGuest(opts('vm-int'));
    for (const o of [{ leaseMs: 1000, intervalMs: 600 }, { leaseMs: 1000, intervalMs: 0 }, { leaseMs: -1 }]) {
      assert.throws(() => a.session!.startHeartbeats(o), {
        code: 'ERR_INVALID_ARGUMENT',
        reason: 'guest.heartbeat.interval',
      });
    }
  });
});
