/**
 * Hostile input for the UEFI variable calls and KEY_RELEASE (docs/pvchannel.md §7.3, §7.4), fast-check:
 * payloads grown from valid ones and random, whole hostile pages, hostile chunk sequences and hostile port
 * sequences. The device must answer every ring with a page that decodes and a defined status, the guest must
 * see a typed error, the host store must change only for a valid SET, and the device must keep serving.
 * Nothing waits on a clock: handlers never block (the KEY_RELEASE relay points at a socket that does not
 * exist, so it fails at once).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_PORTS,
  MAX_PAYLOAD,
  PAGE_SIZE,
  PortCommand,
  PV_STATUS_NAME,
  PvCall,
  PvFlag,
  PvStatus,
} from '../../src/formats/pvchannel/constants.js';
import { encodeKeyReleaseRequest } from '../../src/formats/pvchannel/key-release.js';
import { decodePage, encodePage, encodeRecord, requestMessage } from '../../src/formats/pvchannel/message.js';
import {
  decodeSetRequest,
  EfiVariable,
  encodeGetNextRequest,
  encodeGetRequest,
  encodeQueryInfoRequest,
  encodeSetRequest,
  nameFromString,
} from '../../src/formats/pvchannel/uefi.js';
import { encodeHostStoreFile } from '../../src/formats/pvchannel/uefi-host-file.js';
import { PvClient } from '../../src/pvchannel/client.js';
import { type CallHandler, PvDevice } from '../../src/pvchannel/device.js';
import { keyReleaseRelay } from '../../src/pvchannel/key-release.js';
import { InProcessPage, inProcessPageTransport } from '../../src/pvchannel/page-transport.js';
import { inProcessPortBus, PortPath, PortTransport } from '../../src/pvchannel/port-path.js';
import { UefiHostStore, uefiHandlers } from '../../src/pvchannel/uefi-host.js';
import { fcOptions, isTypedError } from '../fuzz/kit.js';
import { ALL, offer } from './helpers.js';

const NV_BS = EfiVariable.NonVolatile | EfiVariable.BootserviceAccess;
const guid = new Uint8Array(16).fill(0x42);
const v = (s: string) => ({ guid, name: nameFromString(s) });
const CALL_IDS = [
  PvCall.UefiGet,
  PvCall.UefiSet,
  PvCall.UefiGetNext,
  PvCall.UefiQueryInfo,
  PvCall.KeyRelease,
];

/** Valid payloads of calls 5-9, the seeds hostile ones grow from. */
const SEEDS: Record<number, Uint8Array> = {
  [PvCall.UefiGet]: encodeGetRequest(v('Kept')),
  [PvCall.UefiSet]: encodeSetRequest({ ...v('Other'), attributes: NV_BS, data: Uint8Array.of(1, 2, 3) }),
  [PvCall.UefiGetNext]: encodeGetNextRequest(v('Kept')),
  [PvCall.UefiQueryInfo]: encodeQueryInfoRequest(NV_BS),
  [PvCall.KeyRelease]: encodeKeyReleaseRequest({ op: 1, stream: 1, message: Uint8Array.of(0x7b, 0x7d) }),
};

/** A device serving calls 5-9 over an in-memory store holding one variable. */
async function rig() {
  const host = await UefiHostStore.open(undefined);
  await host.set({ ...v('Kept'), attributes: NV_BS, data: Uint8Array.of(9) });
  const relay = keyReleaseRelay({ proxy: 'unix:/nonexistent/vouchsafe-hostile.sock', timeoutMs: 1000 });
  const handlers: Record<number, CallHandler> = { ...uefiHandlers(host), [PvCall.KeyRelease]: relay.handler };
  const device = new PvDevice({ offer: offer(ALL), handlers, maxMessage: 16 * 1024 });
  const page = new InProcessPage(device);
  const client = new PvClient({ transport: inProcessPageTransport(page), want: ALL });
  const snapshot = () => Buffer.from(encodeHostStoreFile(host.list())).toString('hex');
  /** The device still serves: the guest re-negotiates and reads the kept variable. */
  const stillServes = async () => {
    await client.negotiate();
    const a = await client.call(PvCall.UefiGet, encodeGetRequest(v('Kept')));
    assert.equal(a[a.length - 1], 9);
  };
  return { host, device, page, client, snapshot, stillServes };
}

/** A payload grown from a seed: byte flips, truncation, extension, or random bytes. */
const hostilePayload = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(...CALL_IDS),
      fc.array(fc.tuple(fc.nat(200), fc.nat(255)), { maxLength: 6 }),
      fc.nat(64),
      fc.nat(64),
    )
    .map(([id, flips, cut, grow]) => {
      const b = Uint8Array.from(SEEDS[id]!);
      for (const [at, x] of flips) if (at < b.length) b[at] = b[at]! ^ x;
      const out = new Uint8Array(Math.max(0, b.length - cut) + grow);
      out.set(b.subarray(0, Math.max(0, b.length - cut)));
      return { id, body: out };
    }),
  fc
    .tuple(fc.constantFrom(...CALL_IDS), fc.uint8Array({ maxLength: 300 }))
    .map(([id, body]) => ({ id, body })),
);

function validSet(body: Uint8Array): boolean {
  try {
    decodeSetRequest(body);
    return true;
  } catch {
    return false;
  }
}

describe('hostile input for calls 5-9', () => {
  it('hostile payloads: a typed error or an answer; the store changes only for a decodable SET', async () => {
    const r = await rig();
    await fc.assert(
      fc.asyncProperty(hostilePayload, async ({ id, body }) => {
        const before = r.snapshot();
        try {
          await r.client.call(id, body);
        } catch (e) {
          assert.ok(isTypedError(e), `untyped: ${String(e)}`);
        }
        if (!(id === PvCall.UefiSet && validSet(body))) assert.equal(r.snapshot(), before);
      }),
      fcOptions({ numRuns: 300, timeMs: 3000 }),
    );
    await r.stillServes();
  });

  it('hostile pages for calls 5-9: every ring answers a page that decodes with a defined status', async () => {
    const r = await rig();
    await r.client.negotiate();
    // Mostly plausible pages (so many reach the handlers), each with something hostile somewhere.
    const mostly = <T>(usual: T, other: fc.Arbitrary<T>) =>
      fc.oneof({ arbitrary: fc.constant(usual), weight: 4 }, { arbitrary: other, weight: 1 });
    const page = fc
      .tuple(
        hostilePayload,
        mostly(0, fc.nat(3)), // flags
        mostly(0, fc.nat(4)), // chunk
        mostly(0, fc.integer({ min: -2, max: 4 })), // sequence offset from the device's expectation
        mostly(
          [] as [number, number][],
          fc.array(fc.tuple(fc.nat(PAGE_SIZE - 1), fc.nat(255)), { maxLength: 3 }),
        ),
        mostly(null as number | null, fc.nat(0xffffffff)), // a lying payloadLength
      )
      .map(([{ id, body }, flags, chunk, seqOff, flips, len]) => {
        const payload = body.subarray(0, MAX_PAYLOAD);
        const b = encodePage(
          requestMessage({ callId: id, flags, chunk, payload, sequence: 0, epoch: r.device.currentEpoch }),
        );
        return { b, seqOff, flips, len };
      });
    let seq = 2; // QUERY and SELECT took 1 and 2
    let reached = 0;
    await fc.assert(
      fc.asyncProperty(page, async ({ b, seqOff, flips, len }) => {
        const before = r.snapshot();
        const dv = new DataView(b.buffer);
        dv.setUint32(0x0c, (seq + 1 + seqOff) >>> 0, true);
        if (len !== null) dv.setUint32(0x18, len, true);
        for (const [at, x] of flips) b[at]! ^= x;
        const callId = dv.getUint16(0x08, true);
        const res = await r.device.ring(b, 'page');
        assert.equal(res.busy, false);
        if (res.busy) return;
        const a = decodePage(res.bytes);
        assert.ok(PV_STATUS_NAME[a.status] !== undefined && a.status !== PvStatus.Request);
        // The device took the ring (it now expects the next sequence) unless it was garbage or out of sequence.
        const skipped: number[] = [PvStatus.Malformed, PvStatus.BadVersion, PvStatus.Sequence];
        if (!skipped.includes(a.status)) seq = a.sequence;
        if (a.status === PvStatus.BadPayload || a.status === PvStatus.CallFailed || a.status === PvStatus.Ok)
          reached++;
        if (r.snapshot() !== before) {
          assert.equal(callId, PvCall.UefiSet);
          assert.equal(a.status, PvStatus.Ok);
        }
      }),
      fcOptions({ numRuns: 300, timeMs: 3000 }),
    );
    assert.ok(reached > 0, 'some hostile pages reached the call handlers');
    await r.stillServes();
  });

  it('hostile chunk sequences: out of order, repeated, mixed calls, oversized; a defined status, no state change', async () => {
    const r = await rig();
    await r.client.negotiate();
    const body = encodeSetRequest({
      ...v('Chunked'),
      attributes: NV_BS,
      data: new Uint8Array(MAX_PAYLOAD * 2).fill(5),
    });
    const steps = fc.array(
      fc.record({
        callId: fc.constantFrom(PvCall.UefiSet, PvCall.UefiGet, PvCall.KeyRelease),
        chunk: fc.nat(5),
        more: fc.boolean(),
        fetch: fc.boolean(),
        part: fc.nat(4),
      }),
      { minLength: 1, maxLength: 12 },
    );
    let seq = 2;
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(steps, async (ss) => {
        for (const s of ss) {
          const start = s.part * MAX_PAYLOAD;
          const payload = s.fetch ? new Uint8Array(0) : body.subarray(start, start + MAX_PAYLOAD);
          seq = (seq + 1) >>> 0;
          const flags = (s.more ? PvFlag.More : 0) | (s.fetch ? PvFlag.Fetch : 0);
          const m = requestMessage({
            callId: s.callId,
            flags,
            chunk: s.chunk,
            payload,
            sequence: seq,
            epoch: r.device.currentEpoch,
          });
          const res = await r.device.ring(encodePage(m), 'page');
          if (res.busy) assert.fail('no ring runs concurrently here');
          const a = decodePage(res.bytes);
          assert.ok(PV_STATUS_NAME[a.status] !== undefined);
          assert.equal(a.sequence, seq);
          if (a.status === PvStatus.ChunkAccepted) accepted++;
        }
        // Only the one legitimate message (chunks 0,1,2 of the SET, in order) may store "Chunked".
        const names = r.host.list().map((x) => Buffer.from(x.name).toString('utf16le'));
        assert.ok(names.every((n) => n === 'Kept' || n === 'Chunked'));
      }),
      fcOptions({ numRuns: 150, timeMs: 3000 }),
    );
    assert.ok(accepted > 0, 'some chunks were taken');
    await r.stillServes();
  });

  it('hostile port sequences: random OUT/IN on the command and data ports never wedge the device', async () => {
    const r = await rig();
    const path = new PortPath(r.device, DEFAULT_PORTS);
    const ports = [DEFAULT_PORTS.command, DEFAULT_PORTS.data, 0x80];
    const ops = fc.array(
      fc.oneof(
        fc.record({
          out: fc.constant(true),
          port: fc.constantFrom(...ports),
          size: fc.constantFrom(1, 2, 4),
          value: fc.oneof(
            fc.constantFrom(PortCommand.Reset, PortCommand.Submit, PortCommand.Rewind),
            fc.nat(0xffffffff),
          ),
        }),
        fc.record({
          out: fc.constant(false),
          port: fc.constantFrom(...ports),
          size: fc.constantFrom(1, 2, 4),
          value: fc.constant(0),
        }),
        // a whole record for one of calls 5-9 with a hostile payload
        hostilePayload.map(({ id, body }) => ({ out: true, port: -1, size: id, value: 0, body })),
      ),
      { maxLength: 40 },
    );
    await fc.assert(
      fc.asyncProperty(ops, async (list) => {
        const before = r.snapshot();
        for (const op of list as {
          out: boolean;
          port: number;
          size: number;
          value: number;
          body?: Uint8Array;
        }[]) {
          if (op.port === -1 && op.body) {
            const rec = encodeRecord(
              requestMessage({
                callId: op.size,
                sequence: 7,
                epoch: 1,
                payload: op.body.subarray(0, MAX_PAYLOAD),
              }),
            );
            path.write(DEFAULT_PORTS.command, 4, PortCommand.Reset);
            for (const x of rec) path.write(DEFAULT_PORTS.data, 1, x);
            path.write(DEFAULT_PORTS.command, 4, PortCommand.Submit);
          } else if (op.out) path.write(op.port, op.size, op.value);
          else path.read(op.port, op.size);
          await path.idle();
        }
        // Sequence 7 never follows a negotiation here, so no record ran a call: nothing stored.
        assert.equal(r.snapshot(), before);
      }),
      fcOptions({ numRuns: 150, timeMs: 3000 }),
    );
    // The port path still carries a real call.
    const client = new PvClient({
      transport: new PortTransport(inProcessPortBus(path), DEFAULT_PORTS),
      want: ALL,
    });
    const a = await client.call(PvCall.UefiGet, encodeGetRequest(v('Kept')));
    assert.equal(a[a.length - 1], 9);
  });
});
