/** Shared pieces of the pvchannel tests: a device with every call registered, and both guest paths. */
import { DEFAULT_PORTS, PvCall, PvFeature } from '../../src/formats/pvchannel/constants.js';
import type { PvMessage } from '../../src/formats/pvchannel/message.js';
import type { CallHandler, DeviceOffer, PvDevice } from '../../src/pvchannel/device.js';
import { InProcessPage, inProcessPageTransport } from '../../src/pvchannel/page-transport.js';
import { platformIdentityHandler } from '../../src/pvchannel/platform-identity.js';
import { inProcessPortBus, PortPath, PortTransport } from '../../src/pvchannel/port-path.js';
import type { GuestTransport } from '../../src/pvchannel/transport.js';

export const ALL = Object.values(PvFeature).reduce((a, b) => a | b, 0n);
export const IDENTITY = { project: 'proj', zone: 'europe-west4-a', instanceId: '4711', instanceName: 'vm-1' };
export const offer = (features = ALL): DeviceOffer => ({ minVersion: 1, maxVersion: 1, features });

/** A stand-in for the calls' engineer's handlers: answers `callId` then the reversed request. */
export const echoHandler: CallHandler = (req, ctx) => Uint8Array.from([ctx.callId, ...[...req].reverse()]);

/** Every call of §7 but NEGOTIATE, with its id. */
export const CALLS = Object.entries(PvCall).filter(([, id]) => id !== PvCall.Negotiate);

/** The handlers of a device serving every call: the real GET_PLATFORM_IDENTITY, echo for the rest. */
export function allHandlers(): Record<number, CallHandler> {
  const h: Record<number, CallHandler> = {};
  for (const [, id] of CALLS) h[id] = echoHandler;
  h[PvCall.GetPlatformIdentity] = platformIdentityHandler(() => IDENTITY);
  return h;
}

export type Path = 'page' | 'port';

/** A guest transport to whichever device `current()` returns (a migration swaps it), by page or ports. */
export function transportTo(path: Path, current: () => PvDevice): GuestTransport & { rings: number } {
  const pages = new WeakMap<PvDevice, InProcessPage>();
  const portPaths = new WeakMap<PvDevice, PortPath>();
  const t = {
    rings: 0,
    async exchange(m: PvMessage): Promise<PvMessage> {
      t.rings++;
      const d = current();
      if (path === 'page') {
        if (!pages.has(d)) pages.set(d, new InProcessPage(d));
        return inProcessPageTransport(pages.get(d)!).exchange(m);
      }
      if (!portPaths.has(d)) portPaths.set(d, new PortPath(d, DEFAULT_PORTS));
      return new PortTransport(inProcessPortBus(portPaths.get(d)!), DEFAULT_PORTS).exchange(m);
    },
  };
  return t;
}

/** A promise with its resolver, for handlers that wait on the test (event-driven, never a timer). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
