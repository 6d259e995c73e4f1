/**
 * The boot lifecycle end to end, on each store engine (called from suite.ts): Heartbeat and End over the
 * aproxy 0.2.0 wire to the real broker (signed acknowledgements verified by the pinned guest), a short
 * lease to show what heartbeats protect, key rotation, and the crash safety of the guest's pending slot
 * (a relay in front of the proxy drops the guest's connection around the commit).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { HaltRequired, parseStateHeader, pendingPathOf, verifyLeaseAck } from '../../src/guest/index.js';
import type { ProxyBackend } from '../../src/proxy/backend.js';
import {
  type Relay,
  refusal,
  type Stack,
  startRelay,
  startStack,
  type TestEngine,
  wrapBackend,
} from './harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const headerOf = (path: string) => parseStateHeader(new Uint8Array(readFileSync(path)));

export function lifecycleSuite(get: () => { engine: TestEngine; s: Stack }): void {
  const reset = async (s: Stack, id: string) => {
    const r = await s.admin('POST', `/v1/admin/instances/${id}/reset-boot`, { note: 'VM stopped' });
    assert.equal(r.status, 200);
  };
  const show = async (s: Stack, id: string) => (await s.admin('GET', `/v1/admin/instances/${id}`)).body;
  const refuseNewLaunches = async (s: Stack, id: string) => {
    const r = await s.admin('PUT', `/v1/admin/instances/${id}/new-launch`, { newLaunch: 'refuse' });
    assert.equal(r.status, 200);
  };

  describe('the lease over the wire: Heartbeat and End', () => {
    it('by default a new launch within the lease boots at once; the superseded boot is told broker.boot_unknown', async () => {
      const { s } = get();
      const inst = await s.register();
      const state = s.statePath(`takeover-${inst.id}`);
      const first = await s.boot(s.firmware(inst.hostData), state);
      const since = await s.auditHead();
      const second = await s.boot(s.firmware(inst.hostData), state);
      assert.deepEqual(second.state, first.state);
      const release = (await s.broker.broker.readAudit(since, 100)).find(
        (x) => x.instance === inst.id && x.kind === 'release',
      );
      assert.deepEqual(release?.reasons, ['broker.released', 'broker.boot_superseded']);
      const e = await refusal(() => first.session!.heartbeat());
      assert.deepEqual([e.code, e.reason], [ErrorCode.Refused, 'broker.boot_unknown']);
      await second.session!.end();
    });

    it('heartbeat renews with a signed acknowledgement; under `refuse`, a reboot after end() within the lease succeeds', async () => {
      const { s } = get();
      const inst = await s.register();
      await refuseNewLaunches(s, inst.id);
      const fw = s.firmware(inst.hostData);
      const state = s.statePath(`end-${inst.id}`);
      const first = await s.boot(fw, state);
      assert.ok(first.session);
      // Without end(), a new launch inside the lease is refused as a clone...
      const e = await refusal(() => s.boot(s.firmware(inst.hostData), state));
      assert.deepEqual([e.code, e.reason], [ErrorCode.Refused, 'broker.clone']);
      const t0 = Date.now();
      const hb = await first.session.heartbeat();
      assert.equal(hb.brokerVerified, true, 'the pinned guest verified the broker signature');
      assert.ok(hb.leaseExpiresAt! > t0 + 60_000, 'renewed by the default 5-minute lease');
      assert.equal((await show(s, inst.id)).activeBoot.leaseExpiresAt, hb.leaseExpiresAt);
      const since = await s.auditHead();
      const end = await first.session.end();
      assert.deepEqual(end, { op: 'end', leaseExpiresAt: null, brokerVerified: true });
      assert.equal((await show(s, inst.id)).activeBoot, null);
      // ...with end(), it boots at once, from the same state.
      const second = await s.boot(s.firmware(inst.hostData), state);
      assert.equal(second.statedCounter, first.counter);
      assert.deepEqual(second.state, first.state);
      const entries = (await s.broker.broker.readAudit(since, 100)).filter((x) => x.instance === inst.id);
      assert.deepEqual(
        entries.map((x) => [x.kind, x.decision]),
        [
          ['end', 'accept'],
          ['release', 'accept'],
          ['commit', 'accept'],
        ],
      );
      await second.session!.end();
    });
  });

  describe('the lease routes of the API (what the native backend calls)', () => {
    it('sign a heartbeat or end only over a 16..64-byte nonce; refuse a key version from a 0.1.0 guest', async () => {
      const { s } = get();
      const inst = await s.register();
      const a = await s.boot(s.firmware(inst.hostData), s.statePath(`api-${inst.id}`));
      const token = Buffer.from((a.session as unknown as { token: Uint8Array }).token).toString('base64');
      const post = async (path: string, body: unknown) => {
        const res = await fetch(`${s.broker.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      const lease0 = (await show(s, inst.id)).activeBoot.leaseExpiresAt;
      const short = await post('/v1/heartbeat', {
        bootId: a.bootId,
        commitToken: token,
        nonce: Buffer.alloc(8).toString('base64'),
      });
      assert.deepEqual(
        [short.status, short.body.code, short.body.reason],
        [400, 'ERR_INVALID_ARGUMENT', 'api.nonce'],
      );
      assert.equal((await show(s, inst.id)).activeBoot.leaseExpiresAt, lease0, 'refused before renewing');
      const nonce = new Uint8Array(32).fill(5);
      const hb = await post('/v1/heartbeat', {
        bootId: a.bootId,
        commitToken: token,
        nonce: Buffer.from(nonce).toString('base64'),
      });
      assert.equal(hb.status, 200);
      const at = hb.body.leaseExpiresAt as number;
      const sig = new Uint8Array(Buffer.from(hb.body.signature as string, 'base64'));
      verifyLeaseAck(
        s.broker.publicKey,
        { op: 'heartbeat', nonce, bootId: a.bootId!, leaseExpiresAt: at },
        sig,
      );
      // Over anything else (another nonce, the end op) it does not verify.
      assert.throws(
        () =>
          verifyLeaseAck(
            s.broker.publicKey,
            { op: 'heartbeat', nonce: new Uint8Array(32), bootId: a.bootId!, leaseExpiresAt: at },
            sig,
          ),
        { code: 'ERR_SIGNATURE_INVALID', reason: 'aproxy.lease_signature' },
      );
      assert.throws(
        () =>
          verifyLeaseAck(
            s.broker.publicKey,
            { op: 'end', nonce, bootId: a.bootId!, leaseExpiresAt: null },
            sig,
          ),
        { code: 'ERR_SIGNATURE_INVALID' },
      );
      const x = Buffer.alloc(66).toString('base64');
      const v010 = await post('/v1/attest', {
        tee: 'snp',
        version: '0.1.0',
        report: 'AAAA',
        challenge: Buffer.alloc(32).toString('base64'),
        key: { x, y: x },
        stateKeyVersion: 1,
      });
      assert.deepEqual([v010.status, v010.body.reason], [400, 'api.state_key_version']);
      const end = await post('/v1/end', {
        bootId: a.bootId,
        commitToken: token,
        nonce: Buffer.from(nonce).toString('base64'),
      });
      assert.equal(end.status, 200);
      verifyLeaseAck(
        s.broker.publicKey,
        { op: 'end', nonce, bootId: a.bootId!, leaseExpiresAt: null },
        new Uint8Array(Buffer.from(end.body.signature as string, 'base64')),
      );
    });
  });

  describe('the lease over the wire with a short lease (1.5 s)', () => {
    const LEASE = 1500;
    let short: Stack;
    before(async () => {
      short = await startStack(get().engine, { leaseMs: LEASE });
    });
    after(() => short?.close());

    it('under `refuse`, heartbeats keep a boot alive past its original lease: a copy started after that is still refused', async () => {
      const inst = await short.register();
      await refuseNewLaunches(short, inst.id);
      const state = short.statePath('hb-original');
      const a = await short.boot(short.firmware(inst.hostData), state);
      const renewed: number[] = [];
      const errors: unknown[] = [];
      const loop = a.session!.startHeartbeats({
        leaseMs: LEASE,
        intervalMs: LEASE / 5,
        onRenewed: (ack) => renewed.push(ack.leaseExpiresAt!),
        onError: (e) => errors.push(e),
      });
      try {
        await sleep(LEASE * 2);
        assert.ok(renewed.length >= 5, `${renewed.length} heartbeats`);
        assert.deepEqual(errors, []);
        const copy = short.statePath('hb-copy');
        copyFileSync(state, copy);
        const keys = await short.keys(inst.id);
        const e = await refusal(() => short.boot(short.firmware(inst.hostData), copy));
        assert.deepEqual([e.code, e.reason], [ErrorCode.Refused, 'broker.clone']);
        assert.deepEqual(await short.keys(inst.id), keys);
        assert.equal((await show(short, inst.id)).activeBoot.bootId, a.bootId);
        assert.equal(loop.running, true);
      } finally {
        await loop.stop();
      }
      await a.session!.end();
    });

    it('a boot whose lease expired without heartbeats is replaced; its next heartbeat gets broker.boot_unknown (halt)', async () => {
      const inst = await short.register();
      const state = short.statePath('expired');
      const a = await short.boot(short.firmware(inst.hostData), state);
      await sleep(LEASE + 300);
      const since = await short.auditHead();
      const b = await short.boot(short.firmware(inst.hostData), state);
      assert.equal(b.statedCounter, a.counter);
      assert.deepEqual(b.state, a.state);
      const release = (await short.broker.broker.readAudit(since, 100)).find(
        (x) => x.kind === 'release' && x.instance === inst.id,
      );
      assert.ok(release?.reasons.includes('broker.expired_boot_replaced'), JSON.stringify(release?.reasons));
      // The old boot learns it must stop; the new one is untouched.
      const halt = await refusal(() => a.session!.heartbeat());
      assert.ok(halt instanceof HaltRequired);
      assert.deepEqual([halt.code, halt.reason], [ErrorCode.Refused, 'broker.boot_unknown']);
      // A superseded boot id names no boot any more: refused, counted, not audited.
      const refused = (await short.broker.broker.readAudit(since, 100)).find(
        (x) => x.kind === 'heartbeat' && x.decision === 'refuse',
      );
      assert.equal(refused, undefined);
      assert.equal((await b.session!.heartbeat()).brokerVerified, true);
      assert.equal((await show(short, inst.id)).activeBoot.bootId, b.bootId);
      await b.session!.end();
    });

    it('crash before the commit, then the lease expires: the next boot succeeds from the committed file', async () => {
      const crash = await crashingPath(short, 'before');
      try {
        const inst = await short.register();
        const fw = short.firmware(inst.hostData);
        const state = short.statePath('crash-expire');
        const first = await short.boot(fw, state);
        await first.session!.end();
        crash.arm();
        const e = await refusal(() => short.boot(fw, state, { connect: crash.address }));
        assert.equal(e.code, ErrorCode.Unavailable);
        assert.ok(existsSync(pendingPathOf(state)));
        await sleep(LEASE + 300); // no reset: the crashed boot's lease runs out
        const r = await short.boot(fw, state);
        // The abandoned version's counter (2) is skipped: the recovered boot commits 3.
        assert.deepEqual([r.statedCounter, r.counter], [1n, 3n]);
        assert.deepEqual(r.state, first.state);
        assert.equal(existsSync(pendingPathOf(state)), false);
        assert.equal((await show(short, inst.id)).committedCounter, 3);
        await r.session!.end();
      } finally {
        await crash.close();
      }
    });
  });

  describe('key rotation', () => {
    it('boot, rotate-key, reboot: the state is unsealed with the old key and resealed under the new one, unchanged', async () => {
      const { s } = get();
      const inst = await s.register();
      const fw = s.firmware(inst.hostData);
      const state = s.statePath(`rotate-${inst.id}`);
      const first = await s.boot(fw, state);
      assert.deepEqual([first.keyVersion, first.previousKeyVersion], [1, null]);
      assert.equal(headerOf(state).keyVersion, 1);
      await first.session!.end();
      const keysBefore = await s.keys(inst.id);
      const rot = await s.admin('POST', `/v1/admin/instances/${inst.id}/rotate-key`);
      assert.deepEqual([rot.status, rot.body], [200, { keyVersion: 2 }]);
      const since = await s.auditHead();

      const second = await s.boot(fw, state);
      assert.deepEqual([second.keyVersion, second.previousKeyVersion], [2, 1]);
      assert.deepEqual(second.state, first.state);
      assert.deepEqual([headerOf(state).keyVersion, headerOf(state).counter], [2, 2n]);
      const release = (await s.broker.broker.readAudit(since, 100)).find((x) => x.kind === 'release');
      assert.deepEqual([release?.details.keyVersion, release?.details.stateKeyVersion], [2, 1]);
      // The old key version is kept, byte for byte; the new one was added.
      const keysAfter = await s.keys(inst.id);
      assert.equal(keysAfter.length, 2);
      assert.equal(keysAfter[0], keysBefore[0]);
      await second.session!.end();

      const third = await s.boot(fw, state);
      assert.deepEqual([third.statedCounter, third.keyVersion, third.previousKeyVersion], [2n, 2, null]);
      assert.deepEqual(third.state, first.state);
      await third.session!.end();
    });

    it('a guest that states no key version (older guest library) gets secret payload format 1 and boots', async () => {
      const { s } = get();
      const old = await s.extraProxy((b) =>
        wrapBackend(b, {
          attest: (req, c) => {
            const { stateKeyVersion: _, ...rest } = req;
            return b.attest(rest, c);
          },
        }),
      );
      const inst = await s.register();
      const fw = s.firmware(inst.hostData);
      const state = s.statePath(`fmt1-${inst.id}`);
      const a = await s.boot(fw, state, { connect: old.address });
      assert.equal(a.keyVersion, null, 'format 1 carries no key version');
      assert.equal(headerOf(state).keyVersion, 0);
      await a.session!.end();
      // The same state, through the current path: its key version (unknown) is learnt and recorded.
      const b = await s.boot(fw, state);
      assert.deepEqual([b.keyVersion, b.previousKeyVersion], [1, null]);
      assert.deepEqual(b.state, a.state);
      await b.session!.end();
    });
  });

  describe('crash safety of the pending slot', () => {
    it('crash before the commit (connection dropped, commit never sent): after reset-boot the next boot succeeds from the committed file', async () => {
      const { s } = get();
      const crash = await crashingPath(s, 'before');
      try {
        const inst = await s.register();
        const fw = s.firmware(inst.hostData);
        const state = s.statePath(`crash-before-${inst.id}`);
        const first = await s.boot(fw, state);
        await first.session!.end();
        const committedFile = readFileSync(state);
        crash.arm();
        const e = await refusal(() => s.boot(fw, state, { connect: crash.address }));
        assert.deepEqual([e.code, e.reason], [ErrorCode.Unavailable, 'guest.channel.closed']);
        // On disk: the committed version 1 untouched, the uncommitted version 2 pending.
        assert.deepEqual(readFileSync(state), committedFile);
        const pendingBytes = readFileSync(pendingPathOf(state));
        assert.equal(headerOf(pendingPathOf(state)).counter, 2n);
        assert.equal((await show(s, inst.id)).committedCounter, 1);

        await reset(s, inst.id);
        const since = await s.auditHead();
        const r = await s.boot(fw, state);
        // The stale pending version 2 was abandoned; the recovered boot skips its counter and commits 3.
        assert.deepEqual([r.statedCounter, r.counter, r.committed], [1n, 3n, true]);
        assert.deepEqual(r.state, first.state);
        assert.equal(existsSync(pendingPathOf(state)), false);
        assert.equal(headerOf(state).counter, 3n);
        assert.notDeepEqual(readFileSync(state), pendingBytes);
        assert.equal((await show(s, inst.id)).committedCounter, 3);
        // The first attempt stated the pending counter and was told state_ahead; the retry was released.
        const entries = (await s.broker.broker.readAudit(since, 100)).filter((x) => x.instance === inst.id);
        assert.deepEqual(
          entries.map((x) => [x.kind, x.decision, x.reasons[0]]),
          [
            ['release', 'refuse', 'broker.state_ahead'],
            ['release', 'accept', 'broker.released'],
            ['commit', 'accept', 'broker.committed'],
          ],
        );
        await r.session!.end();
      } finally {
        await crash.close();
      }
    });

    it('state fork: commits dropped, crash recovery, then the host swaps an abandoned version back: refused as a rollback', async () => {
      const { s } = get();
      const crash = await crashingPath(s, 'before');
      try {
        const inst = await s.register();
        const fw = s.firmware(inst.hostData);
        const state = s.statePath(`fork-${inst.id}`);
        await (await s.boot(fw, state)).session!.end();
        // The host drops the commit twice: version 2 is abandoned, then the recovery's version 3 too.
        crash.arm();
        await refusal(() => s.boot(fw, state, { connect: crash.address }));
        const abandoned2 = readFileSync(pendingPathOf(state));
        await reset(s, inst.id);
        crash.arm();
        await refusal(() => s.boot(fw, state, { connect: crash.address }));
        const abandoned3 = readFileSync(pendingPathOf(state));
        assert.equal(headerOf(pendingPathOf(state)).counter, 3n);
        await reset(s, inst.id);
        // The next recovery writes another version 3, which the broker accepts.
        const recovered = await s.boot(fw, state);
        assert.deepEqual([recovered.counter, recovered.committed], [3n, true]);
        assert.equal((await show(s, inst.id)).committedCounter, 3);
        assert.notDeepEqual(readFileSync(state), abandoned3);
        await recovered.session!.end();
        const committedFile = readFileSync(state);
        // Later the host hands the guest an abandoned version: the one with the committed counter (only
        // the committed digest tells it apart) and the older one.
        for (const abandoned of [abandoned3, abandoned2]) {
          writeFileSync(state, abandoned);
          const since = await s.auditHead();
          const e = await refusal(() => s.boot(fw, state));
          assert.deepEqual([e.code, e.reason], [ErrorCode.Refused, 'broker.rollback']);
          const entries = (await s.broker.broker.readAudit(since, 100)).filter((x) => x.instance === inst.id);
          assert.deepEqual(
            entries.map((x) => [x.kind, x.decision, x.reasons[0]]),
            [['release', 'refuse', 'broker.rollback']],
          );
        }
        // The committed file still boots.
        writeFileSync(state, committedFile);
        await (await s.boot(fw, state)).session!.end();
      } finally {
        await crash.close();
      }
    });

    it('crash after the commit (committed, reply lost): the next boot states the pending counter, which is promoted', async () => {
      const { s } = get();
      const crash = await crashingPath(s, 'after');
      try {
        const inst = await s.register();
        const fw = s.firmware(inst.hostData);
        const state = s.statePath(`crash-after-${inst.id}`);
        const first = await s.boot(fw, state);
        await first.session!.end();
        crash.arm();
        const e = await refusal(() => s.boot(fw, state, { connect: crash.address }));
        assert.deepEqual([e.code, e.reason], [ErrorCode.Unavailable, 'guest.channel.closed']);
        // The broker committed version 2; the guest never heard, so the file is still 1 and 2 is pending.
        assert.equal((await show(s, inst.id)).committedCounter, 2);
        assert.equal(headerOf(state).counter, 1n);
        assert.equal(headerOf(pendingPathOf(state)).counter, 2n);

        await reset(s, inst.id);
        const r = await s.boot(fw, state);
        assert.deepEqual([r.statedCounter, r.counter, r.committed], [2n, 3n, true]);
        assert.deepEqual(r.state, first.state);
        assert.equal(existsSync(pendingPathOf(state)), false);
        assert.equal(headerOf(state).counter, 3n);
        assert.equal((await show(s, inst.id)).committedCounter, 3);
        await r.session!.end();
      } finally {
        await crash.close();
      }
    });
  });
}

/**
 * A path to the broker (its own proxy behind a relay) whose next commit, once armed, "crashes" the guest:
 * `before`: the relay drops the guest's connection and the commit is never forwarded; `after`: the commit
 * reaches the broker, then the connection is dropped before the acknowledgement gets back.
 */
async function crashingPath(
  s: Stack,
  mode: 'before' | 'after',
): Promise<{ address: string; arm(): void; close(): Promise<void> }> {
  let armed = false;
  let relay: Relay | undefined;
  const proxy = await s.extraProxy((b: ProxyBackend) =>
    wrapBackend(b, {
      commit: async (req, c) => {
        if (!armed) return b.commit(req, c);
        armed = false;
        if (mode === 'before') {
          relay!.dropAll();
          throw new Error('the guest is gone: commit not forwarded');
        }
        const r = await b.commit(req, c);
        relay!.dropAll();
        return r;
      },
    }),
  );
  relay = await startRelay(join(s.dir, `relay-${mode}-${Date.now()}.sock`), proxy.address);
  return {
    address: relay.address,
    arm: () => {
      armed = true;
    },
    close: () => relay!.close(),
  };
}
