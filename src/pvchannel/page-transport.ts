import { PAGE_SIZE, PvStatus } from '../formats/pvchannel/constants.js';
import { decodePage, encodePage, type PvMessage } from '../formats/pvchannel/message.js';
import type { PvDevice } from './device.js';
import type { GuestTransport } from './transport.js';

/** Offset of the status word in the page (docs/pvchannel.md §2). */
const STATUS_OFFSET = 0x0a;

/**
 * The page path in one process: a 4 KiB "shared" page and a doorbell wired to a device, as a VMM wires its
 * port exit to the device model (docs/pvchannel.md §4). Tests use it; so can a VMM written in Node.
 */
export class InProcessPage {
  /** The request page, shared by guest and device. */
  readonly page = new Uint8Array(PAGE_SIZE);

  constructor(private readonly device: PvDevice) {}

  /**
   * Rings the doorbell. The device reads the page once, the status word reads BUSY until the answer is
   * written; resolves at completion. An early re-ring resolves at once having written only BUSY.
   */
  async ring(): Promise<void> {
    const pending = this.device.ring(this.page, 'page'); // reads the page synchronously (one copy)
    setStatus(this.page, PvStatus.Busy);
    const r = await pending;
    if (r.busy) return;
    // The answer first, the status word last: a guest polling the status never sees a half-written answer.
    this.page.set(r.bytes.subarray(STATUS_OFFSET + 2), STATUS_OFFSET + 2);
    this.page.set(r.bytes.subarray(0, STATUS_OFFSET), 0);
    this.page.set(r.bytes.subarray(STATUS_OFFSET, STATUS_OFFSET + 2), STATUS_OFFSET);
  }
}

function setStatus(page: Uint8Array, status: number): void {
  page[STATUS_OFFSET] = status & 0xff;
  page[STATUS_OFFSET + 1] = status >> 8;
}

/** The guest's side of the page path: fill the page, ring, read the answer from the page. */
export class PageTransport implements GuestTransport {
  constructor(
    private readonly page: Uint8Array,
    private readonly doorbell: () => Promise<void>,
  ) {}

  async exchange(request: PvMessage): Promise<PvMessage> {
    this.page.set(encodePage(request));
    await this.doorbell();
    return decodePage(this.page);
  }
}

/** A guest transport over an {@link InProcessPage}. */
export function inProcessPageTransport(p: InProcessPage): PageTransport {
  return new PageTransport(p.page, () => p.ring());
}
