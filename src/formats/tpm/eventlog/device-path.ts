import { Reader } from '../../reader.js';
import { formatGuid } from './guid.js';
import { utf16z } from './utf16.js';

/**
 * A summary of an EFI_DEVICE_PATH_PROTOCOL (UEFI 2.10 §10.3): the nodes in text form, as far as this module
 * names them (hard drive, file path, firmware file/volume), and the joined file path.
 */
export interface DevicePathSummary {
  /** e.g. `HD(15,GPT,…)/\EFI\ubuntu\shimx64.efi`. Unknown nodes print as `Node(type,subtype)`. */
  readonly text: string;
  /** The file-path nodes joined, e.g. `\EFI\ubuntu\shimx64.efi`; empty when there is none. */
  readonly filePath: string;
}

/** Most nodes decoded from one path (every node is at least 4 bytes, so this only bounds the output). */
const MAX_NODES = 256;

/**
 * Decodes a device path into its summary (UEFI 2.10 §10.3.1 generic node: type, subtype, 16-bit length).
 * Stops at the end-of-path node. Throws MalformedEvidence `eventlog.device_path.truncated` (a node past the
 * end, a node length below 4, more than 256 nodes).
 */
export function decodeDevicePath(path: Uint8Array): DevicePathSummary {
  const r = new Reader(path, 'eventlog.device_path');
  const parts: string[] = [];
  let filePath = '';
  while (r.remaining > 0) {
    if (parts.length >= MAX_NODES) r.fail('too many nodes');
    const type = r.u8();
    const subType = r.u8();
    const length = r.u16le();
    if (length < 4 || length - 4 > r.remaining) r.fail(`node length ${length}`);
    const body = r.bytes(length - 4);
    if (type === 0x7f && subType === 0xff) break;
    if (type === 0x04 && subType === 0x04) {
      const p = utf16z(body);
      filePath += p;
      parts.push(p);
    } else if (type === 0x04 && subType === 0x01 && body.length >= 38) {
      const nr = new Reader(body, 'eventlog.device_path');
      const partition = nr.u32le();
      nr.bytes(16);
      const sig = nr.bytes(16);
      const format = nr.u8();
      const sigType = nr.u8();
      const sigText = format === 2 && sigType === 2 ? `GPT,${formatGuid(sig)}` : `MBR`;
      parts.push(`HD(${partition},${sigText})`);
    } else if (type === 0x04 && (subType === 0x06 || subType === 0x07) && body.length === 16) {
      parts.push(`${subType === 0x06 ? 'FvFile' : 'Fv'}(${formatGuid(body)})`);
    } else {
      parts.push(`Node(${type},${subType})`);
    }
  }
  return { text: parts.join('/'), filePath };
}
