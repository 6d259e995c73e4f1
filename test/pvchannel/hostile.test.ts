/**
 * Faults from either side (docs/pvchannel.md §4-§6): early re-rings, garbage pages, wrong sequence numbers,
 * hostile port sequences, and a VMM that answers garbage. Each ends in a defined status or a typed error and
 * leaves the device serving; nothing waits on a clock.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  DEFAULT_PORTS,
  PAGE_SIZE,
  PortCommand,
  PortState,
  PvCall,
  PvFlag,
  PvStatus,
} from '../../src/formats/pvchannel/constants.js';
import {
  decodePage,
  decodeRecord,
  encodePage,
  type PvMessage,
  requestMessage,
} from '../../src/formats/pvchannel/message.js';
import { encodeNegotiateAnswer, encodeNegotiateRequest } from '../../src/formats/pvchannel/negotiate.js';
import { PvClient } from '../../src/pvchannel/client.js';
import { PvDevice } from '../../src/pvchannel/device.js';
import { InProcessPage } from '../../src/pvchannel/page-transport.js';
import { PortPath } from '../../src/pvchannel/port-path.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { ALL, allHandlers, deferred, IDENTITY, offer, transportTo } from './helpers.js';

const status = (page: Uint8Array) => page[0x0a]! | (page[0x0b]! << 8);
const select = (seq: number) =>
  requestMessage({
    callId: PvCall.Negotiate,
    sequence: seq,
    epoch: 0,
    payload: encodeNegotiateRequest({ op: 2, version: 1, features: ALL }),
  });

async function ringPage(p: InProcessPage, m: PvMessage): Promise<PvMessage> {
  p.page.set(encodePage(m));
  await p.ring();
  return decodePage(p.page);
}

describe('pvchannel device under hostile rings', () => {
  it('early re-ring: BUSY at once, the page untouched, the first ring completes; nothing queued', async () => {
    const gate = deferred();
    let runs = 0;
    const d = new PvDevice({
      offer: offer(),
      handlers: {
        ...allHandlers(),
        [PvCall.CertifyEk]: async () => {
          runs++;
          await gate.promise;
          return Uint8Array.of(42);
        },
      },
    });
    const p = new InProcessPage(d);
    await ringPage(p, select(1));
    p.page.set(encodePage(requestMessage({ callId: PvCall.CertifyEk, sequence: 2, epoch: d.currentEpoch })));
    const first = p.ring();
    assert.equal(status(p.page), PvStatus.Busy);
    assert.equal(d.busy, true);
    const before = Uint8Array.from(p.page);
    await p.ring(); // the guest rings again while BUSY
    assert.deepEqual(p.page, before);
    gate.resolve();
    await first;
    const a = decodePage(p.page);
    assert.deepEqual([a.status, a.sequence, [...a.payload]], [PvStatus.Ok, 2, [42]]);
    assert.equal(runs, 1);
  });

  it('garbage pages: MALFORMED or BAD_VERSION, no state change, the session goes on', async () => {
    const d = new PvDevice({ offer: offer(), handlers: allHandlers() });
    const p = new InProcessPage(d);
    await ringPage(p, select(1));
    for (let i = 0; i < 50; i++) {
      p.page.set(randomBytes(PAGE_SIZE));
      await p.ring();
      assert.equal(status(p.page), PvStatus.Malformed);
    }
    const wrongVersion = encodePage(requestMessage({ callId: 2, sequence: 2, epoch: d.currentEpoch }));
    wrongVersion[4] = 9;
    p.page.set(wrongVersion);
    await p.ring();
    assert.equal(status(p.page), PvStatus.BadVersion);
    const a = await ringPage(
      p,
      requestMessage({ callId: PvCall.GetPlatformIdentity, sequence: 2, epoch: d.currentEpoch }),
    );
    assert.equal(a.status, PvStatus.Ok);
    assert.deepEqual(JSON.parse(Buffer.from(a.payload).toString()), IDENTITY);
  });

  it('sequence numbers: a repeat replays the answer without running again, a jump is SEQUENCE, before NEGOTIATE is NOT_NEGOTIATED', async () => {
    let runs = 0;
    const d = new PvDevice({ offer: offer(), handlers: { [PvCall.CertifyEk]: () => Uint8Array.of(++runs) } });
    const p = new InProcessPage(d);
    const e = () => d.currentEpoch;
    assert.equal(
      (await ringPage(p, requestMessage({ callId: 3, sequence: 1, epoch: e() }))).status,
      PvStatus.NotNegotiated,
    );
    await ringPage(p, select(10));
    const r1 = await ringPage(p, requestMessage({ callId: 3, sequence: 11, epoch: e() }));
    const r2 = await ringPage(p, requestMessage({ callId: 3, sequence: 11, epoch: e() }));
    assert.deepEqual(
      [r1.status, [...r1.payload], r2.status, [...r2.payload], runs],
      [PvStatus.Ok, [1], PvStatus.Ok, [1], 1],
    );
    const other = await ringPage(
      p,
      requestMessage({ callId: 3, sequence: 11, epoch: e(), payload: Uint8Array.of(1) }),
    );
    assert.equal(other.status, PvStatus.Sequence);
    assert.equal(
      (await ringPage(p, requestMessage({ callId: 3, sequence: 13, epoch: e() }))).status,
      PvStatus.Sequence,
    );
    assert.equal(
      (await ringPage(p, requestMessage({ callId: 3, sequence: 12, epoch: e() + 1 }))).status,
      PvStatus.FeaturesChanged,
    );
  });

  it('hostile chunk sequences: CHUNK_SEQUENCE or TOO_LARGE, never a hang', async () => {
    const d = new PvDevice({ offer: offer(), handlers: allHandlers(), maxMessage: 2 * 4064 });
    const p = new InProcessPage(d);
    await ringPage(p, select(1));
    const e = d.currentEpoch;
    const chunk = (sequence: number, chunk: number, flags: number = PvFlag.More, callId = 3) =>
      ringPage(
        p,
        requestMessage({ callId, sequence, epoch: e, chunk, flags, payload: new Uint8Array(4064) }),
      );
    assert.equal((await chunk(2, 1)).status, PvStatus.ChunkSequence); // starts at 1
    assert.equal((await chunk(3, 0)).status, PvStatus.ChunkAccepted);
    assert.equal((await chunk(4, 1, PvFlag.More, 4)).status, PvStatus.ChunkSequence); // other call mid-message
    assert.equal((await chunk(5, 0)).status, PvStatus.ChunkAccepted);
    assert.equal((await chunk(6, 1)).status, PvStatus.ChunkAccepted);
    assert.equal((await chunk(7, 2)).status, PvStatus.TooLarge); // never ends: stopped at the bound
    assert.equal((await chunk(8, 1, PvFlag.Fetch)).status, PvStatus.ChunkSequence); // FETCH with nothing pending
    assert.equal((await chunk(9, 0, 0)).status, PvStatus.Ok);
  });

  it('hostile port sequences: overflow, reads past the end, unclaimed ports, SUBMIT while busy', async () => {
    const gate = deferred();
    const d = new PvDevice({
      offer: offer(),
      handlers: {
        [PvCall.CertifyEk]: async () => {
          await gate.promise;
          return Uint8Array.of(1);
        },
      },
    });
    let completions = 0;
    const pp = new PortPath(d, DEFAULT_PORTS, () => completions++);
    const { command, data } = DEFAULT_PORTS;
    for (let i = 0; i < PAGE_SIZE + 10; i++) pp.write(data, 1, 0xaa);
    pp.write(command, 4, PortCommand.Submit);
    await pp.idle();
    const readRecord = () => {
      const b = new Uint8Array(0x20);
      for (let i = 0; i < 0x20; i++) b[i] = pp.read(data, 1);
      return b;
    };
    assert.equal(new DataView(readRecord().buffer).getUint16(0x0a, true), PvStatus.Malformed);
    assert.equal(pp.read(data, 4), 0); // past the end
    assert.equal(pp.read(0x60, 4), 0xffffffff);
    assert.equal(pp.read(0x60, 1), 0xff);
    pp.write(0x60, 4, 1); // ignored
    pp.write(command, 4, 77); // unknown command: ignored
    // a real request whose handler waits; a second SUBMIT while busy is ignored
    const c = new PvClient({ transport: transportTo('page', () => d), want: ALL });
    await c.negotiate();
    const rec = encodeRecordOf(requestMessage({ callId: 3, sequence: 3, epoch: d.currentEpoch }));
    pp.write(command, 4, PortCommand.Reset);
    for (const b of rec) pp.write(data, 1, b);
    pp.write(command, 4, PortCommand.Submit);
    pp.write(command, 4, PortCommand.Submit);
    assert.equal(pp.read(command, 4), PortState.Busy);
    gate.resolve();
    await pp.idle();
    assert.equal(pp.read(command, 4), PortState.Ready);
    const h = readRecord();
    const len = new DataView(h.buffer).getUint32(0x18, true);
    const a = decodeRecord(Uint8Array.from([...h, ...Array.from({ length: len }, () => pp.read(data, 1))]));
    assert.deepEqual([a.status, [...a.payload]], [PvStatus.Ok, [1]]);
    assert.equal(completions, 2);
  });
});

function encodeRecordOf(m: PvMessage): Uint8Array {
  return encodePage(m).subarray(0, 0x20 + m.payload.length);
}

describe('pvchannel client against a lying VMM', () => {
  const base = { version: 1, flags: 0, chunk: 0, payload: new Uint8Array(0) };
  const liar = (f: (m: PvMessage) => PvMessage) => ({ exchange: async (m: PvMessage) => f(m) });
  const negotiateOk = (m: PvMessage): PvMessage | undefined => {
    if (m.callId !== PvCall.Negotiate) return undefined;
    const sel = m.payload[0] === 2;
    const payload = encodeNegotiateAnswer({
      minVersion: 1,
      maxVersion: 1,
      epoch: 1,
      offered: ALL,
      accepted: sel ? ALL : 0n,
      version: sel ? 1 : 0,
    });
    return { ...m, status: PvStatus.Ok, payload };
  };

  it('an answer for another sequence or call, an unknown status, a BUSY page: typed errors', async () => {
    const cases: [(m: PvMessage) => PvMessage, string, string][] = [
      [
        (m) => ({ ...m, ...base, status: PvStatus.Ok, sequence: m.sequence + 1 }),
        'ERR_MALFORMED',
        'pvchannel.answer.mismatch',
      ],
      [
        (m) => ({ ...m, ...base, status: PvStatus.Ok, callId: 9 }),
        'ERR_MALFORMED',
        'pvchannel.answer.mismatch',
      ],
      [(m) => ({ ...m, ...base, status: 0x7777 }), 'ERR_MALFORMED', 'pvchannel.answer.status'],
      [(m) => ({ ...m, ...base, status: PvStatus.Busy }), 'ERR_UNAVAILABLE', 'pvchannel.answer.not_done'],
      [
        (m) => ({
          ...m,
          ...base,
          status: PvStatus.CallFailed,
          payload: Buffer.from('{"code":"ERR_FAKE","reason":"x"}'),
        }),
        'ERR_REFUSED',
        'pvchannel.call_failed',
      ],
    ];
    for (const [f, code, reason] of cases) {
      const c = new PvClient({ transport: liar((m) => negotiateOk(m) ?? f(m)), want: ALL });
      await rejectsCode(c.call(PvCall.GetPlatformIdentity, new Uint8Array(0)), code, reason);
    }
  });

  it('an answer that never ends is stopped at the bound; a VMM that keeps changing epochs is Unavailable', async () => {
    const endless = new PvClient({
      transport: liar(
        (m) =>
          negotiateOk(m) ?? {
            ...m,
            status: PvStatus.Ok,
            flags: PvFlag.More,
            chunk: m.flags & PvFlag.Fetch ? m.chunk : 0,
            payload: new Uint8Array(4064),
          },
      ),
      want: ALL,
      maxMessage: 5 * 4064,
    });
    await rejectsCode(
      endless.call(PvCall.GetPlatformIdentity, new Uint8Array(0)),
      'ERR_MALFORMED',
      'pvchannel.chunk.too_large',
    );
    const flapping = new PvClient({
      transport: liar((m) => negotiateOk(m) ?? { ...m, status: PvStatus.FeaturesChanged }),
      want: ALL,
    });
    await rejectsCode(
      flapping.call(PvCall.GetPlatformIdentity, new Uint8Array(0)),
      'ERR_UNAVAILABLE',
      'pvchannel.features_unstable',
    );
  });
});
