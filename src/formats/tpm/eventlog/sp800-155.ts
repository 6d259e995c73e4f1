import { MalformedEvidence } from '../../../errors.js';
import { isAllZero } from '../../../util/bytes.js';
import { Reader } from '../../reader.js';
import { formatGuid } from './guid.js';

/**
 * NIST SP 800-155 platform reference events (TCG PC Client PFP rev 1.06 §10.4.5.2, §10.4.5.4-5):
 * EV_NO_ACTION events whose data starts `SP800-155 Event`, `SP800-155 Event2` or `SP800-155 Event3`. They
 * name the platform and its firmware and (Event3) where the reference integrity manifest and the platform
 * certificate are. They are not extended: their contents are claims of the firmware, not measurements.
 */
export interface Sp800155Event {
  readonly signature: 'SP800-155 Event' | 'SP800-155 Event2' | 'SP800-155 Event3';
  readonly platformManufacturerId: number;
  readonly referenceManifestGuid: string;
  readonly platformManufacturer: string;
  readonly platformModel: string;
  readonly platformVersion: string;
  readonly firmwareManufacturer: string;
  readonly firmwareManufacturerId: number;
  readonly firmwareVersion: string;
  /** Event3 only: locator type and value of the RIM and of the platform certificate. */
  readonly rimLocator?: { readonly type: number; readonly value: Uint8Array };
  readonly platformCertLocator?: { readonly type: number; readonly value: Uint8Array };
}

const SIGNATURES = ['SP800-155 Event\0', 'SP800-155 Event2', 'SP800-155 Event3'] as const;

/** Whether EV_NO_ACTION data is an SP 800-155 event (by its 16-byte signature). */
export function isSp800155Event(data: Uint8Array): boolean {
  const sig = Buffer.from(data.subarray(0, 16)).toString('latin1');
  return (SIGNATURES as readonly string[]).includes(sig);
}

/**
 * Decodes an SP 800-155 event. Throws MalformedEvidence: `eventlog.sp800_155.signature`,
 * `eventlog.sp800_155.truncated`, `eventlog.sp800_155.trailing_bytes` (anything but zero padding after the
 * last field).
 */
export function decodeSp800155Event(data: Uint8Array): Sp800155Event {
  const r = new Reader(data, 'eventlog.sp800_155');
  const sig = Buffer.from(r.bytes(16)).toString('latin1');
  if (!(SIGNATURES as readonly string[]).includes(sig)) {
    throw new MalformedEvidence('eventlog.sp800_155.signature', 'not an SP 800-155 event');
  }
  const str = () => Buffer.from(r.bytes(r.u8())).toString('utf8').replace(/\0+$/, '');
  const platformManufacturerId = r.u32le();
  const referenceManifestGuid = formatGuid(r.bytes(16));
  const platformManufacturer = str();
  const platformModel = str();
  const platformVersion = str();
  const firmwareManufacturer = str();
  const firmwareManufacturerId = r.u32le();
  const firmwareVersion = str();
  const base = {
    signature: sig.replace(/\0+$/, '') as Sp800155Event['signature'],
    platformManufacturerId,
    referenceManifestGuid,
    platformManufacturer,
    platformModel,
    platformVersion,
    firmwareManufacturer,
    firmwareManufacturerId,
    firmwareVersion,
  };
  if (sig !== 'SP800-155 Event3') {
    r.end();
    return base;
  }
  const locator = () => {
    const type = r.u32le();
    return { type, value: r.bytes(r.u32le()) };
  };
  const rimLocator = locator();
  const platformCertLocator = locator();
  // GCE's Event3s end in six zero bytes after the last locator: zero padding is accepted, nothing else.
  if (r.remaining > 0 && !isAllZero(r.bytes(r.remaining))) {
    throw new MalformedEvidence('eventlog.sp800_155.trailing_bytes', 'non-zero bytes after the locators');
  }
  return { ...base, rimLocator, platformCertLocator };
}
