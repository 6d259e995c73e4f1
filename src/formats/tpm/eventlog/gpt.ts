import { MalformedEvidence } from '../../../errors.js';
import { Reader } from '../../reader.js';
import { formatGuid } from './guid.js';
import { utf16z } from './utf16.js';

/**
 * UEFI_GPT_DATA (TCG PC Client PFP rev 1.05 §10.3.1), the event data of EV_EFI_GPT_EVENT: the GPT header
 * (UEFI 2.10 §5.3.2 table 5.21, 92 bytes) and the partition entries in use (§5.3.3 table 5.22).
 */
export interface GptPartition {
  readonly typeGuid: string;
  readonly uniqueGuid: string;
  readonly startingLba: bigint;
  readonly endingLba: bigint;
  readonly attributes: bigint;
  readonly name: string;
}

export interface GptEvent {
  readonly diskGuid: string;
  readonly revision: number;
  readonly partitions: readonly GptPartition[];
}

const GPT_SIGNATURE = 'EFI PART';
/** Most partition entries accepted (the usual table has 128 slots). */
const MAX_PARTITIONS = 1024;

/**
 * Decodes UEFI_GPT_DATA. Throws MalformedEvidence: `eventlog.gpt.signature` (not `EFI PART`),
 * `eventlog.gpt.entry_size` (an entry size below 128 or over 4096), `eventlog.gpt.too_many`,
 * `eventlog.gpt.truncated`, `eventlog.gpt.trailing_bytes`.
 */
export function decodeGptEvent(data: Uint8Array): GptEvent {
  const r = new Reader(data, 'eventlog.gpt');
  if (Buffer.from(r.bytes(8)).toString('latin1') !== GPT_SIGNATURE) {
    throw new MalformedEvidence('eventlog.gpt.signature', 'GPT header signature is not "EFI PART"');
  }
  const revision = r.u32le();
  const headerSize = r.u32le();
  if (headerSize < 92) r.fail(`GPT header size ${headerSize}`);
  r.at(0x38);
  const diskGuid = formatGuid(r.bytes(16));
  r.at(0x54);
  const entrySize = r.u32le();
  if (entrySize < 128 || entrySize > 4096) {
    throw new MalformedEvidence('eventlog.gpt.entry_size', `GPT entry size ${entrySize}`);
  }
  r.at(headerSize);
  const count = r.u64le();
  if (count > BigInt(MAX_PARTITIONS))
    throw new MalformedEvidence('eventlog.gpt.too_many', `${count} partitions`);
  const partitions: GptPartition[] = [];
  for (let i = 0; i < Number(count); i++) {
    const e = new Reader(r.bytes(entrySize), 'eventlog.gpt');
    partitions.push({
      typeGuid: formatGuid(e.bytes(16)),
      uniqueGuid: formatGuid(e.bytes(16)),
      startingLba: e.u64le(),
      endingLba: e.u64le(),
      attributes: e.u64le(),
      name: utf16z(e.bytes(72)),
    });
  }
  r.end();
  return { diskGuid, revision, partitions };
}
