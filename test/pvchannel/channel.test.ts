/**
 * The channel end to end in one process (docs/pvchannel.md): every call over the page path and the port-only
 * path, negotiation, calls outside the negotiated set, chunked requests and answers, and live migration to a
 * VMM with fewer features in the middle of a multi-chunk request. Event-driven: handlers wait on promises.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError, ErrorCode, MalformedEvidence } from '../../src/errors.js';
import { MAX_PAYLOAD, PvCall, PvFeature } from '../../src/formats/pvchannel/constants.js';
import { PvClient } from '../../src/pvchannel/client.js';
import { PvDevice } from '../../src/pvchannel/device.js';
import { rejectsCode } from '../helpers/assert-error.js';
import { ALL, allHandlers, CALLS, IDENTITY, offer, type Path, transportTo } from './helpers.js';

const big = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);

for (const path of ['page', 'port'] as Path[]) {
  describe(`pvchannel over the ${path} path`, () => {
    it('negotiates: the offer, the selection (want ∩ offered) and the epoch', async () => {
      const d = new PvDevice({ offer: offer(PvFeature.PlatformIdentity | PvFeature.CertifyEk) });
      const c = new PvClient({
        transport: transportTo(path, () => d),
        want: PvFeature.CertifyEk | PvFeature.KeyRelease,
      });
      const a = await c.negotiate();
      assert.equal(a.offered, PvFeature.PlatformIdentity | PvFeature.CertifyEk);
      assert.equal(a.accepted, PvFeature.CertifyEk);
      assert.equal(a.epoch, d.currentEpoch);
      assert.equal(c.features, PvFeature.CertifyEk);
    });

    it('runs every call, with requests and answers of several chunks', async () => {
      const d = new PvDevice({ offer: offer(), handlers: allHandlers() });
      const c = new PvClient({ transport: transportTo(path, () => d), want: ALL });
      assert.deepEqual(await c.getPlatformIdentity(), IDENTITY);
      for (const [name, id] of CALLS) {
        if (id === PvCall.GetPlatformIdentity) continue;
        const body = big(2 * MAX_PAYLOAD + 100);
        const out = await c.call(id, body);
        assert.equal(out[0], id, name);
        assert.deepEqual(out.subarray(1), body.slice().reverse(), name);
      }
    });

    it('a call outside the negotiated set: refused by the client, and by the device if sent anyway', async () => {
      const d = new PvDevice({ offer: offer(), handlers: allHandlers() });
      const t = transportTo(path, () => d);
      const c = new PvClient({ transport: t, want: PvFeature.PlatformIdentity });
      await rejectsCode(
        c.call(PvCall.CertifyEk, new Uint8Array(1)),
        'ERR_NOT_SUPPORTED',
        'pvchannel.not_negotiated',
      );
      // a guest that ignores its own negotiation meets the device's check
      const rogue = new PvClient({ transport: t, want: PvFeature.PlatformIdentity });
      await rogue.negotiate();
      Object.defineProperty(rogue, 'features', { get: () => ALL });
      await rejectsCode(
        rogue.call(PvCall.CertifyEk, new Uint8Array(1)),
        'ERR_NOT_SUPPORTED',
        'pvchannel.status.not_negotiated',
      );
    });

    it('calls with no handler registered answer NOT_SUPPORTED', async () => {
      const d = new PvDevice({ offer: offer() });
      const c = new PvClient({ transport: transportTo(path, () => d), want: ALL });
      for (const [, id] of CALLS) {
        await rejectsCode(
          c.call(id, new Uint8Array(0)),
          'ERR_NOT_SUPPORTED',
          'pvchannel.status.not_supported',
        );
      }
    });

    it('handler refusals come back typed: CALL_FAILED with code and reason, BAD_PAYLOAD, INTERNAL', async () => {
      const d = new PvDevice({
        offer: offer(),
        handlers: {
          [PvCall.CertifyEk]: () => {
            throw new AttestationError(ErrorCode.Refused, 'ca.unknown_instance', 'no instance');
          },
          [PvCall.CertifyAk]: () => {
            throw new MalformedEvidence('ca.csr.der');
          },
          [PvCall.KeyRelease]: () => {
            throw new TypeError('bug');
          },
        },
      });
      const c = new PvClient({ transport: transportTo(path, () => d), want: ALL });
      await rejectsCode(c.call(PvCall.CertifyEk, new Uint8Array(0)), 'ERR_REFUSED', 'ca.unknown_instance');
      await rejectsCode(
        c.call(PvCall.CertifyAk, new Uint8Array(0)),
        'ERR_INVALID_ARGUMENT',
        'pvchannel.status.bad_payload',
      );
      await rejectsCode(
        c.call(PvCall.KeyRelease, new Uint8Array(0)),
        'ERR_UNAVAILABLE',
        'pvchannel.status.internal',
      );
    });

    describe('live migration in the middle of a multi-chunk request', () => {
      /** Sends a 3-chunk CERTIFY_AK and migrates to `dest` after the source accepted chunk 1. */
      async function migrateMidRequest(dest: bigint) {
        const source = new PvDevice({ offer: offer(), handlers: allHandlers() });
        let current = source;
        const t = transportTo(path, () => current);
        const c = new PvClient({ transport: t, want: ALL });
        await c.negotiate();
        const before = t.rings;
        const body = big(2 * MAX_PAYLOAD + 9);
        const inner = t.exchange.bind(t);
        t.exchange = async (m) => {
          const a = await inner(m);
          if (t.rings === before + 2)
            current = PvDevice.restore(current.snapshot(), { offer: offer(dest), handlers: allHandlers() });
          return a;
        };
        return { c, t, body, result: c.call(PvCall.CertifyAk, body), source, dest: () => current };
      }

      it('to a VMM that still offers the set: the request simply continues', async () => {
        const m = await migrateMidRequest(ALL);
        const out = await m.result;
        assert.deepEqual(out.subarray(1), m.body.slice().reverse());
        assert.equal(m.dest().currentEpoch, m.source.currentEpoch);
      });

      it('to a VMM with fewer features that keeps the call: FEATURES_CHANGED, re-negotiate, resend, complete', async () => {
        const m = await migrateMidRequest(ALL & ~PvFeature.UefiVariables);
        const out = await m.result;
        assert.deepEqual(out.subarray(1), m.body.slice().reverse());
        assert.equal(m.c.epoch, m.dest().currentEpoch);
        assert.notEqual(m.dest().currentEpoch, m.source.currentEpoch);
        assert.equal(m.c.features & PvFeature.UefiVariables, 0n);
      });

      it('to a VMM without the call: degrades with pvchannel.feature_withdrawn, other calls still work', async () => {
        const m = await migrateMidRequest(PvFeature.PlatformIdentity);
        await rejectsCode(m.result, 'ERR_NOT_SUPPORTED', 'pvchannel.feature_withdrawn');
        assert.deepEqual(await m.c.getPlatformIdentity(), IDENTITY);
      });
    });
  });
}
