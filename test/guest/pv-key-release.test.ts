/**
 * KEY_RELEASE over the pvchannel (docs/pvchannel.md §7.4): a guest whose host offers no vsock boots, reboots
 * with its persistent state, heartbeats and ends, all through the channel; the device relays to the same host
 * proxy (native backend, real broker on SQLite) a vsock guest reaches; refusals keep their codes.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PvCall, PvFeature } from '../../src/formats/pvchannel/constants.js';
import { EfiVariable, nameFromString } from '../../src/formats/pvchannel/uefi.js';
import { pvKeyReleaseOpener } from '../../src/guest/pv-key-release.js';
import { simulatorReportProvider } from '../../src/guest/report-provider.js';
import { bootWithUefiVariables } from '../../src/guest/uefi-boot.js';
import { PvClient } from '../../src/pvchannel/client.js';
import { PvDevice } from '../../src/pvchannel/device.js';
import { keyReleaseRelay } from '../../src/pvchannel/key-release.js';
import { UefiHostStore, uefiHandlers } from '../../src/pvchannel/uefi-host.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { addProxy, type BrokerStack, type ProxyParts, startBrokerStack } from '../helpers/broker.js';
import { ALL, deferred, offer, type Path, transportTo } from '../pvchannel/helpers.js';

describe('KEY_RELEASE: guest boot over the pvchannel, no vsock', () => {
  let stack: BrokerStack;
  let p: ProxyParts;
  const relays: { close(): void }[] = [];
  before(async () => {
    stack = await startBrokerStack({ tmpPrefix: 'vs-pvkr-' });
    p = await addProxy(stack);
  });
  after(async () => {
    for (const r of relays) r.close();
    await stack.close();
  });

  async function channel(path: Path = 'page', proxy = p.proxy.address) {
    const relay = keyReleaseRelay({ proxy, timeoutMs: 10_000 });
    relays.push(relay);
    const host = await UefiHostStore.open(undefined);
    const device = new PvDevice({
      offer: offer(ALL),
      handlers: { [PvCall.KeyRelease]: relay.handler, ...uefiHandlers(host) },
    });
    return new PvClient({ transport: transportTo(path, () => device), want: ALL });
  }

  for (const path of ['page', 'port'] as const) {
    it(`0.2.0 over the ${path} path: first boot, reboot with the same state, heartbeat and end`, async () => {
      const inst = await stack.register();
      const fw = stack.firmware(inst.hostData);
      const client = await channel(path);
      const state = p.statePath(`pvkr-${path}`);
      const o = { connect: pvKeyReleaseOpener(client), initialState: Uint8Array.from([4, 2]) };
      const first = await p.boot(fw, state, o);
      assert.equal(first.firstBoot, true);
      assert.equal(first.committed, true);
      assert.equal(first.brokerVerified, true);
      await first.session?.heartbeat();
      await first.session?.end();
      const second = await p.boot(fw, state, o);
      assert.equal(second.firstBoot, false);
      assert.equal(second.counter, 2n);
      assert.deepEqual(second.state, Uint8Array.from([4, 2]));
      await second.session?.end();
    });
  }

  it('0.1.0 (what an unmodified COCONUT-SVSM speaks) boots over the channel', async () => {
    const inst = await stack.register();
    const client = await channel();
    const r = await p.boot(stack.firmware(inst.hostData), p.statePath('pvkr-010'), {
      connect: pvKeyReleaseOpener(client),
      version: '0.1.0',
      brokerPublicKey: undefined,
    });
    assert.equal(r.version, '0.1.0');
    assert.equal(r.counter, 1n);
  });

  it('refusals keep their codes: a rolled-back state file is broker.rollback, an unknown launch is refused', async () => {
    const inst = await stack.register();
    const fw = stack.firmware(inst.hostData);
    const client = await channel();
    const state = p.statePath('pvkr-rollback');
    const o = { connect: pvKeyReleaseOpener(client) };
    await (await p.boot(fw, state, o)).session?.end();
    copyFileSync(state, `${state}.old`);
    await (await p.boot(fw, state, o)).session?.end();
    copyFileSync(`${state}.old`, state);
    await rejectsCode(() => p.boot(fw, state, o), 'ERR_REFUSED', 'broker.rollback');
    // A HOST_DATA no instance was registered with.
    await assert.rejects(
      () => p.boot(stack.firmware('00'.repeat(32)), p.statePath('pvkr-unknown'), o),
      (e: { code?: string }) => e.code === 'ERR_REFUSED' || e.code === 'ERR_POLICY_REJECTED',
    );
  });

  it('a proxy the device cannot reach is CALL_FAILED ERR_UNAVAILABLE at the guest', async () => {
    const inst = await stack.register();
    const client = await channel('page', 'unix:/nonexistent/vouchsafe-proxy.sock');
    await rejectsCode(
      () =>
        p.boot(stack.firmware(inst.hostData), p.statePath('pvkr-down'), {
          connect: pvKeyReleaseOpener(client),
        }),
      'ERR_UNAVAILABLE',
      'pvchannel.key_release.connect',
    );
  });

  it('a proxy that never answers is ERR_UNAVAILABLE pvchannel.key_release.timeout; one that sends garbage ends the stream', async () => {
    const silent = createServer((sock) => sock.on('data', () => {}));
    const garbage = createServer((sock) => sock.once('data', () => sock.write(Buffer.alloc(8, 0xff))));
    const s1 = join(stack.dir, 'silent.sock');
    const s2 = join(stack.dir, 'garbage.sock');
    await new Promise<void>((r) => silent.listen(s1, r));
    await new Promise<void>((r) => garbage.listen(s2, r));
    try {
      const inst = await stack.register();
      // The silent proxy's outcome is its timeout whatever the machine's speed; the garbage one answers at
      // once, so its relay gets a deadline no busy machine reaches (the outcome is the garbage, not the clock).
      for (const [addr, timeoutMs, code, reason] of [
        [s1, 200, 'ERR_UNAVAILABLE', 'pvchannel.key_release.timeout'],
        [s2, 60_000, 'ERR_UNAVAILABLE', 'guest.channel.closed'],
      ] as const) {
        const relay = keyReleaseRelay({ proxy: `unix:${addr}`, timeoutMs });
        relays.push(relay);
        const device = new PvDevice({ offer: offer(ALL), handlers: { [PvCall.KeyRelease]: relay.handler } });
        const client = new PvClient({ transport: transportTo('page', () => device), want: ALL });
        await rejectsCode(
          () =>
            p.boot(stack.firmware(inst.hostData), p.statePath(`pvkr-${reason}`), {
              connect: pvKeyReleaseOpener(client),
            }),
          code,
          reason,
        );
      }
    } finally {
      silent.close();
      garbage.close();
    }
  });

  it('a VMM that never completes the ring: the guest gets guest.channel.timeout, not a hang', async () => {
    const inst = await stack.register();
    const stalled = deferred<Uint8Array>();
    const device = new PvDevice({
      offer: offer(ALL),
      handlers: { [PvCall.KeyRelease]: () => stalled.promise },
    });
    const client = new PvClient({ transport: transportTo('page', () => device), want: ALL });
    await rejectsCode(
      () =>
        p.boot(stack.firmware(inst.hostData), p.statePath('pvkr-stall'), {
          connect: pvKeyReleaseOpener(client),
          timeoutMs: 200,
        }),
      'ERR_UNAVAILABLE',
      'guest.channel.timeout',
    );
    stalled.resolve(new Uint8Array(0));
  });

  it('live migration mid-boot: to a VMM with KEY_RELEASE the boot goes on; to one without, pvchannel.feature_withdrawn', async () => {
    const inst = await stack.register();
    const fw = stack.firmware(inst.hostData);
    for (const keep of [true, false]) {
      const relay = keyReleaseRelay({ proxy: p.proxy.address, timeoutMs: 10_000 });
      relays.push(relay);
      const handlers = { [PvCall.KeyRelease]: relay.handler };
      let device = new PvDevice({ offer: offer(ALL), handlers });
      let rings = 0;
      const client = new PvClient({
        transport: transportTo('page', () => {
          // After the negotiation and the first KEY_RELEASE message, the VM moves (between two rings).
          if (++rings === 4) {
            const to = keep ? ALL : ALL & ~PvFeature.KeyRelease;
            device = PvDevice.restore(device.snapshot(), { offer: offer(to), handlers });
          }
          return device;
        }),
        want: ALL,
      });
      const run = p.boot(fw, p.statePath(`pvkr-migrate-${keep}`), { connect: pvKeyReleaseOpener(client) });
      if (keep) await (await run).session?.end();
      else await rejectsCode(() => run, 'ERR_NOT_SUPPORTED', 'pvchannel.feature_withdrawn');
      assert.ok(rings > 4);
    }
  });

  it('the whole persistent state over one channel: key release and sealed UEFI variables, reboot', async () => {
    const inst = await stack.register();
    const fw = stack.firmware(inst.hostData);
    const client = await channel();
    const o = {
      connect: pvKeyReleaseOpener(client),
      provider: simulatorReportProvider(fw),
      statePath: p.statePath('pvkr-uefi'),
      brokerPublicKey: stack.b.publicKey,
      timeoutMs: 10_000,
    };
    const name = { guid: new Uint8Array(16).fill(3), name: nameFromString('BootOrder') };
    const attrs = EfiVariable.NonVolatile | EfiVariable.BootserviceAccess;
    const b1 = await bootWithUefiVariables(o, client);
    await b1.store.set(name, attrs, Uint8Array.from([1, 0, 2, 0]));
    await b1.latest().session?.end();
    const b2 = await bootWithUefiVariables(o, client);
    assert.deepEqual((await b2.store.get(name))?.data, Uint8Array.from([1, 0, 2, 0]));
    await b2.latest().session?.end();
  });
});
