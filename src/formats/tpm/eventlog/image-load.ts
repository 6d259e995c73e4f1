import { Reader } from '../../reader.js';
import { type DevicePathSummary, decodeDevicePath } from './device-path.js';

/**
 * UEFI_IMAGE_LOAD_EVENT (TCG PC Client PFP rev 1.05 §10.3.2), the event data of
 * EV_EFI_BOOT_SERVICES_APPLICATION / _DRIVER and EV_EFI_RUNTIME_SERVICES_DRIVER. The event's digest is the
 * image's Authenticode (PE/COFF) hash, not a hash of this structure.
 */
export interface UefiImageLoadEvent {
  readonly imageLocationInMemory: bigint;
  readonly imageLengthInMemory: bigint;
  readonly imageLinkTimeAddress: bigint;
  readonly devicePath: DevicePathSummary;
  /** Bytes after the device path (none in the spec; GCE firmware logs some): reported, not refused. */
  readonly trailingBytes: number;
}

/**
 * Decodes UEFI_IMAGE_LOAD_EVENT. Throws MalformedEvidence: `eventlog.image_load.truncated` and
 * decodeDevicePath's reasons.
 */
export function decodeImageLoadEvent(data: Uint8Array): UefiImageLoadEvent {
  const r = new Reader(data, 'eventlog.image_load');
  const imageLocationInMemory = r.u64le();
  const imageLengthInMemory = r.u64le();
  const imageLinkTimeAddress = r.u64le();
  const pathLength = r.u64le();
  if (pathLength > BigInt(r.remaining)) r.fail(`device path of ${pathLength} bytes`);
  const devicePath = decodeDevicePath(r.bytes(Number(pathLength)));
  return {
    imageLocationInMemory,
    imageLengthInMemory,
    imageLinkTimeAddress,
    devicePath,
    trailingBytes: r.remaining,
  };
}
