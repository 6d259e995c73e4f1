/**
 * The host proxy's network entry point, fuzzed: a guest connects to the proxy (unix socket, the in-test
 * backend of test/proxy) and sends one to four frames grown from a valid session (negotiation, attestation,
 * commit, heartbeat; 0.1.0 and 0.2.0) by byte flips, truncation, splices and random payloads, with frame
 * headers that lie about the length now and then, then half-closes. Every frame the proxy sends back must
 * be JSON; an error frame must carry a known code and a dotted reason; the proxy closes the connection
 * (never hangs past its read deadline, never crashes). Afterwards it logs no error and a real guest still
 * boots through it, so one hostile guest cannot take the channel down for the others.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { encodeAttestationRequest } from '../../src/formats/aproxy/attestation.js';
import { encodeCommitRequest } from '../../src/formats/aproxy/commit.js';
import { encodeFrame } from '../../src/formats/aproxy/frame.js';
import { encodeLeaseRequest } from '../../src/formats/aproxy/lease.js';
import { bootGuest } from '../../src/guest/boot.js';
import { type RunningProxy, startProxy } from '../../src/proxy/server.js';
import { RawClient } from '../proxy/raw-client.js';
import { REPORT_SIZE, RecordingProvider, TestBroker } from '../proxy/test-backend.js';
import { bytesFrom, CODES, type FuzzBudget, fcOptions, REASON } from './kit.js';

const budget: FuzzBudget = { numRuns: 150, timeMs: 4000 };

let dir: string;
let proxy: RunningProxy;
let backend: TestBroker;
const logs: string[] = [];
const seeds: Uint8Array[] = [];
/** Replies seen, by kind: shows the fuzzer reached the parsers and the backend, not only the framer. */
const seen = { error: 0, other: 0 };
const enc = (s: string) => new Uint8Array(Buffer.from(s));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vouchsafe-fuzz-proxy-'));
  backend = new TestBroker();
  proxy = await startProxy({
    listen: `unix:${join(dir, 'aproxy.sock')}`,
    backend,
    logger: pino({ level: 'info' }, { write: (s: string) => void logs.push(s) }),
    // Short reads so a fuzzed frame that promises more bytes than it sends ends the session quickly.
    timeouts: { firstFrameMs: 1000, readMs: 1000, backendMs: 3000, sessionMs: 10_000 },
    closeGraceMs: 100,
  });
  const key = { x: new Uint8Array(66).fill(1), y: new Uint8Array(66).fill(2) };
  const report = new Uint8Array(REPORT_SIZE).fill(0xa5);
  seeds.push(
    enc('{"version":[0,1,0],"tee":"snp"}'),
    enc('{"version":[0,2,0],"tee":"snp"}'),
    encodeAttestationRequest(
      { tee: 'snp', evidence: { report }, challenge: new Uint8Array(32).fill(3), key } as never,
      '0.1.0',
    ),
    encodeAttestationRequest(
      {
        tee: 'snp',
        evidence: { report },
        challenge: new Uint8Array(32).fill(3),
        key,
        stateCounter: 3n,
        stateDigest: new Uint8Array(32).fill(5),
        stateKeyVersion: 1,
      } as never,
      '0.2.0',
    ),
    encodeCommitRequest({
      bootId: 'boot-1',
      commitToken: new Uint8Array(32).fill(4),
      counter: 4n,
      stateDigest: new Uint8Array(32).fill(5),
    } as never),
    encodeLeaseRequest({
      op: 'heartbeat',
      bootId: 'boot-1',
      commitToken: new Uint8Array(32).fill(4),
      nonce: new Uint8Array(32).fill(6),
    } as never),
  );
});

after(async () => {
  await proxy?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What a fuzzed guest sends: framed payloads, a frame with a lying header, or raw bytes. */
const piece = fc.oneof(
  {
    arbitrary: fc
      .constant(null)
      .chain(() => bytesFrom(seeds, 300))
      .map((p) => encodeFrame(p)),
    weight: 6,
  },
  {
    // A header that lies: length 0, past the payload, or over the limit.
    arbitrary: fc
      .tuple(bytesFrom(seeds, 64), fc.constantFrom(0, 1, 7, 1 << 20, (1 << 20) + 1, 0xffffffff))
      .map(([p, n]) => {
        const h = Buffer.alloc(8);
        h.writeUInt32LE(n >>> 0, 0);
        return new Uint8Array(Buffer.concat([h, Buffer.from(p)]));
      }),
    weight: 1,
  },
  { arbitrary: fc.uint8Array({ maxLength: 24 }), weight: 1 },
);

async function exchange(pieces: Uint8Array[]): Promise<string[]> {
  const c = await RawClient.connect(proxy.address);
  for (const p of pieces) c.sendRaw(p);
  c.end();
  const frames: string[] = [];
  for (;;) {
    const f = await c.next(8000);
    if (f === 'EOF') break;
    frames.push(f);
  }
  c.socket.destroy();
  return frames;
}

function checkReply(frame: string, sent: Uint8Array[]): void {
  const where = `${frame.slice(0, 300)} (sent ${sent.map((p) => Buffer.from(p).toString('hex').slice(0, 200)).join(' | ')})`;
  let v: { error?: { code?: unknown; reason?: unknown } };
  try {
    v = JSON.parse(frame);
  } catch {
    assert.fail(`reply is not JSON: ${where}`);
  }
  if (v && typeof v === 'object' && 'error' in v) {
    assert.ok(CODES.has(String(v.error?.code)), `untyped error reply: ${where}`);
    assert.match(String(v.error?.reason), REASON, where);
    seen.error++;
  } else seen.other++;
}

describe('fuzz: host proxy frames', () => {
  it('random and mutated frames get JSON replies, typed errors and a closed connection', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { minLength: 1, maxLength: 4 }), async (pieces) => {
        const frames = await exchange(pieces);
        for (const f of frames) checkReply(f, pieces);
      }),
      // Two examples always run first (fast-check runs examples before random inputs): the unmutated opening
      // (a non-error reply) and a frame that is not JSON (a typed error), so both kinds are seen however few
      // random runs the time budget leaves on a busy machine.
      { ...fcOptions(budget), examples: [[[encodeFrame(seeds[0]!)]], [[encodeFrame(enc('{'))]]] },
    );
    assert.equal(proxy.activeSessions(), 0, 'a fuzzed session is still open');
    assert.ok(seen.error > 0 && seen.other > 0, `replies seen: ${JSON.stringify(seen)}`);
  });

  it('the proxy logged no error and still serves a real guest', async () => {
    const errors = logs.filter((l) => /"level":(50|60)/.test(l));
    assert.deepEqual(errors, []);
    const r = await bootGuest({
      connect: proxy.address,
      provider: new RecordingProvider('after-fuzz'),
      statePath: join(dir, 'after-fuzz.state'),
      version: '0.2.0',
      timeoutMs: 10_000,
    });
    assert.equal(r.committed, true);
  });
});
