import type { PvMessage } from '../formats/pvchannel/message.js';

/**
 * How the guest client moves one message to the device and gets the answer: the page path or the
 * port-only path, in process or through a VMM. `exchange` resolves once the device has answered (the
 * completion), with the answer decoded and checked as a page or record; it rejects with a typed error.
 */
export interface GuestTransport {
  exchange(request: PvMessage): Promise<PvMessage>;
}
