/**
 * The host proxy's denial-of-service limits (docs/protocol.md §8 "Limits"): a first-frame deadline, a cap
 * per TCP peer and per listener, a bounded accept queue and one receive-buffer budget for all sessions.
 * Every wait here is on an event or a condition (a close, a count), never on elapsed time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { bootGuest } from '../../src/guest/boot.js';
import { type ProxyOptions, type RunningProxy, startProxy } from '../../src/proxy/server.js';
import { waitFor } from '../helpers/wait.js';
import { RawClient } from './raw-client.js';
import { RecordingProvider, TestBroker } from './test-backend.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vs-limits-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(o: Partial<ProxyOptions> = {}) {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  const proxy = await startProxy({ listen: 'tcp:127.0.0.1:0', backend: new TestBroker(), logger, ...o });
  return { proxy, lines };
}

function boot(proxy: RunningProxy, name: string, connect = proxy.address) {
  return bootGuest({
    connect,
    provider: new RecordingProvider(name),
    statePath: join(tempDir(), `${name}.state`),
    timeoutMs: 20_000,
  });
}

const NEG_010 = '{"version":[0,1,0],"tee":"snp"}';

describe('proxy limits: one peer cannot stop another peer attesting', () => {
  it('a peer holding idle connections gets its share only; another peer still boots', async () => {
    // The attack from the finding, scaled down: the global cap is 8; one peer (127.0.0.2) opens 20 idle
    // connections and never speaks. Without a per-peer cap the 8 slots (and the queue) would be its own.
    const { proxy, lines } = await start({
      limits: { maxSessions: 8, maxSessionsPerPeer: 4, maxQueued: 4, queueWaitMs: 60_000 },
      timeouts: { firstFrameMs: 60_000 },
    });
    try {
      const idle = await Promise.all(
        Array.from({ length: 20 }, () => RawClient.connect(proxy.address, '127.0.0.2')),
      );
      await waitFor(() => (proxy.outcomes()['proxy.limit.peer'] ?? 0) === 16, '16 connections turned away');
      await waitFor(() => idle.filter((c) => c.closedAt !== undefined).length === 16, '16 closed');
      assert.equal(proxy.activeSessions(), 4);
      const r = await boot(proxy, 'victim');
      assert.equal(r.committed, true);
      assert.equal(
        idle.filter((c) => c.closedAt === undefined).length,
        4,
        'the peer keeps the share it is allowed',
      );
      assert.ok(
        lines.some((l) => l.includes('"event":"connection_refused"') && l.includes('proxy.limit.peer')),
      );
      for (const c of idle) c.end();
    } finally {
      await proxy.close();
    }
  });

  it('one unix listener per VM: a VM over its listener cap does not stop the VM on another listener', async () => {
    const dir = tempDir();
    const { proxy } = await start({
      listen: [`unix:${join(dir, 'vm-3.sock')}`, `unix:${join(dir, 'vm-4.sock')}`],
      limits: { maxSessions: 4, maxSessionsPerListener: 2, maxQueued: 4 },
      timeouts: { firstFrameMs: 60_000 },
    });
    try {
      assert.equal(proxy.addresses.length, 2);
      const [vm3, vm4] = proxy.addresses as [string, string];
      const idle = await Promise.all(Array.from({ length: 5 }, () => RawClient.connect(vm3)));
      await waitFor(() => (proxy.outcomes()['proxy.limit.listener'] ?? 0) === 3, '3 turned away on vm-3');
      const r = await boot(proxy, 'vm4', vm4);
      assert.equal(r.committed, true);
      for (const c of idle) c.end();
    } finally {
      await proxy.close();
    }
  });
});

describe('proxy limits: first-frame deadline', () => {
  it('closes a connection that sends nothing, counted as a timeout', async () => {
    const { proxy, lines } = await start({ timeouts: { firstFrameMs: 1, readMs: 60_000 } });
    try {
      const c = await RawClient.connect(proxy.address);
      assert.equal(await c.next(10_000), 'EOF');
      await waitFor(() => proxy.outcomes().timeout === 1, 'timeout counted');
      assert.ok(lines.some((l) => l.includes('"error":"ReadTimeout"')));
    } finally {
      await proxy.close();
    }
  });

  it('a connection that never finishes its opening frame is closed by the same deadline', async () => {
    const { proxy } = await start({ timeouts: { firstFrameMs: 1, readMs: 60_000 } });
    try {
      const c = await RawClient.connect(proxy.address);
      c.sendRaw(Buffer.from([31, 0, 0, 0, 0, 0, 0, 0, 0x7b])); // header and one byte of 31
      assert.equal(await c.next(10_000), 'EOF');
      await waitFor(() => proxy.outcomes().timeout === 1, 'timeout counted');
    } finally {
      await proxy.close();
    }
  });
});

describe('proxy limits: accept queue', () => {
  it('a connection beyond the cap waits and is served when a slot frees; beyond the queue it is closed', async () => {
    const { proxy } = await start({
      limits: { maxSessions: 1, maxQueued: 1, queueWaitMs: 60_000 },
      timeouts: { firstFrameMs: 60_000 },
    });
    try {
      const a = await RawClient.connect(proxy.address);
      a.sendFrame(NEG_010);
      assert.ok(JSON.parse(await a.next()).challenge, 'a is served');
      const b = await RawClient.connect(proxy.address);
      b.sendFrame(NEG_010); // sits in the kernel's buffer while b waits
      await waitFor(() => proxy.queuedConnections() === 1, 'b waits');
      const c = await RawClient.connect(proxy.address);
      assert.equal(await c.next(), 'EOF', 'the queue holds one: c is closed');
      assert.equal(proxy.outcomes()['proxy.limit.queue_full'], 1, JSON.stringify(proxy.outcomes()));
      assert.equal(b.closedAt, undefined, 'b still waits');
      a.end(); // a's session ends; its slot goes to b
      const neg = JSON.parse(await b.next());
      assert.ok(neg.challenge, 'b is served from the queue');
      assert.equal(proxy.queuedConnections(), 0);
      b.end();
    } finally {
      await proxy.close();
    }
  });

  it('a connection that waits longer than queueWaitMs is closed (proxy.limit.queue_timeout)', async () => {
    const { proxy } = await start({
      limits: { maxSessions: 1, maxQueued: 4, queueWaitMs: 1 },
      timeouts: { firstFrameMs: 60_000 },
    });
    try {
      const a = await RawClient.connect(proxy.address);
      await waitFor(() => proxy.activeSessions() === 1, 'a is served');
      const b = await RawClient.connect(proxy.address);
      assert.equal(await b.next(10_000), 'EOF');
      assert.equal(proxy.outcomes()['proxy.limit.queue_timeout'], 1);
      assert.equal(a.closedAt, undefined, 'the session being served is untouched');
      a.end();
    } finally {
      await proxy.close();
    }
  });

  it('close() turns waiting connections away', async () => {
    const { proxy } = await start({ limits: { maxSessions: 1, maxQueued: 4 } });
    const a = await RawClient.connect(proxy.address);
    await waitFor(() => proxy.activeSessions() === 1, 'a is served');
    const b = await RawClient.connect(proxy.address);
    await waitFor(() => proxy.queuedConnections() === 1, 'b waits');
    const closing = proxy.close();
    assert.equal(await b.next(), 'EOF');
    a.end();
    await closing;
    assert.equal(proxy.outcomes()['proxy.limit.closing'], 1);
  });
});

describe('proxy limits: one receive budget for all sessions', () => {
  it('the session whose bytes would overrun the budget is closed (overloaded); the others are not', async () => {
    const budget = 64 * 1024;
    const { proxy, lines } = await start({
      limits: { maxBufferedBytes: budget },
      timeouts: { firstFrameMs: 60_000 },
    });
    try {
      // Each client announces a 1 MiB frame (within the per-frame limit) and sends 40 KiB of it.
      const header = Buffer.from([0, 0, 16, 0, 0, 0, 0, 0]);
      const a = await RawClient.connect(proxy.address);
      a.sendRaw(Buffer.concat([header, Buffer.alloc(40 * 1024, 0x20)]));
      await waitFor(() => proxy.bufferedBytes() === 8 + 40 * 1024, "a's bytes are buffered");
      const b = await RawClient.connect(proxy.address);
      b.sendRaw(Buffer.concat([header, Buffer.alloc(40 * 1024, 0x20)]));
      assert.equal(await b.next(), 'EOF', 'b overran the budget');
      await waitFor(() => proxy.outcomes().overloaded === 1, 'counted as overloaded');
      assert.ok(proxy.bufferedBytes() <= budget);
      assert.equal(a.closedAt, undefined, 'a is not cut for b');
      assert.ok(lines.some((l) => l.includes('"reason":"proxy.buffer_budget"')));
      // When a's session ends, its bytes are given back, and guests are served again.
      a.end();
      await a.closed();
      await waitFor(() => proxy.bufferedBytes() === 0, 'budget released');
      const r = await boot(proxy, 'after-budget');
      assert.equal(r.committed, true);
      await waitFor(() => proxy.bufferedBytes() === 0, 'budget released after a boot');
    } finally {
      await proxy.close();
    }
  });
});
