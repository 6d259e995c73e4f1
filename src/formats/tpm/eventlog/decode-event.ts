import { AttestationError } from '../../../errors.js';
import { EV } from './event-types.js';
import { decodeGptEvent, type GptEvent } from './gpt.js';
import { EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE } from './guid.js';
import { decodeImageLoadEvent, type UefiImageLoadEvent } from './image-load.js';
import { type LogEvent, parseSpecIdEvent, type SpecIdEvent } from './parse.js';
import { decodeSp800155Event, isSp800155Event, type Sp800155Event } from './sp800-155.js';
import {
  decodeLoadOption,
  decodeSignatureLists,
  decodeUefiVariableData,
  type EfiLoadOption,
  type EfiSignatureList,
} from './uefi-variable.js';
import { looksUtf16, utf16z } from './utf16.js';

/**
 * What an event's data says, decoded for the event types people appraise (TCG PC Client PFP rev 1.05
 * §10.4.1 and §10.3). Decoding never trusts the data: whether an event's digest is of its data is checked
 * apart (src/evidence/tpm/eventlog-digests.ts), and data the check cannot cover must not be relied on.
 */
export type EventDetail =
  | { readonly kind: 'spec_id'; readonly specId: SpecIdEvent }
  | { readonly kind: 'startup_locality'; readonly locality: number }
  | { readonly kind: 'sp800_155'; readonly event: Sp800155Event }
  | { readonly kind: 'separator'; readonly value: number }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'uefi_variable'; readonly variable: DecodedVariable }
  | { readonly kind: 'image_load'; readonly image: UefiImageLoadEvent }
  | { readonly kind: 'gpt'; readonly gpt: GptEvent }
  | { readonly kind: 'raw' }
  | { readonly kind: 'undecodable'; readonly reason: string };

export interface DecodedVariable {
  readonly vendorGuid: string;
  readonly name: string;
  readonly variableData: Uint8Array;
  /** SecureBoot, SetupMode, AuditMode, DeployedMode: the byte's value as a boolean. */
  readonly enabled?: boolean;
  /** PK, KEK, db, dbx, dbt: the signature lists. */
  readonly signatureLists?: readonly EfiSignatureList[];
  /** Boot####: the load option. */
  readonly loadOption?: EfiLoadOption;
  /** BootOrder: the option numbers. */
  readonly bootOrder?: readonly number[];
}

const FLAG_VARIABLES = new Set(['SecureBoot', 'SetupMode', 'AuditMode', 'DeployedMode']);
const GLOBAL_LISTS = new Set(['PK', 'KEK']);
const DB_LISTS = new Set(['db', 'dbx', 'dbt', 'dbr']);

function decodeVariable(data: Uint8Array, eventType: number): DecodedVariable {
  const v = decodeUefiVariableData(data);
  const d = v.variableData;
  if (v.vendorGuid === EFI_GLOBAL_VARIABLE && FLAG_VARIABLES.has(v.name) && d.length === 1) {
    return { ...v, enabled: d[0] === 1 };
  }
  // EV_EFI_VARIABLE_AUTHORITY for db carries one EFI_SIGNATURE_DATA, not a list: left as bytes.
  if (eventType === EV.EFI_VARIABLE_DRIVER_CONFIG) {
    if (
      (v.vendorGuid === EFI_GLOBAL_VARIABLE && GLOBAL_LISTS.has(v.name)) ||
      (v.vendorGuid === EFI_IMAGE_SECURITY_DATABASE && DB_LISTS.has(v.name))
    ) {
      return { ...v, signatureLists: decodeSignatureLists(d) };
    }
  }
  if (v.vendorGuid === EFI_GLOBAL_VARIABLE && /^Boot[0-9A-F]{4}$/.test(v.name)) {
    return { ...v, loadOption: decodeLoadOption(d) };
  }
  if (v.vendorGuid === EFI_GLOBAL_VARIABLE && v.name === 'BootOrder' && d.length % 2 === 0) {
    const order: number[] = [];
    for (let i = 0; i < d.length; i += 2) order.push(d[i]! | (d[i + 1]! << 8));
    return { ...v, bootOrder: order };
  }
  return v;
}

/** Text of an event: UTF-16LE when it looks like it (systemd-boot, EDK2 strings), else UTF-8 up to a NUL. */
export function eventText(data: Uint8Array): string {
  if (looksUtf16(data)) return utf16z(data);
  const nul = data.indexOf(0);
  return Buffer.from(nul < 0 ? data : data.subarray(0, nul)).toString('utf8');
}

function detailOf(e: LogEvent): EventDetail {
  const data = e.data;
  switch (e.eventType) {
    case EV.NO_ACTION: {
      const sig = Buffer.from(data.subarray(0, 16)).toString('latin1');
      if (sig.startsWith('Spec ID Event')) return { kind: 'spec_id', specId: parseSpecIdEvent(data) };
      if (sig === 'StartupLocality\0' && data.length === 17) {
        return { kind: 'startup_locality', locality: data[16]! };
      }
      if (isSp800155Event(data)) return { kind: 'sp800_155', event: decodeSp800155Event(data) };
      return { kind: 'raw' };
    }
    case EV.SEPARATOR:
      if (data.length === 4) return { kind: 'separator', value: Buffer.from(data).readUInt32LE(0) };
      return { kind: 'raw' };
    case EV.IPL:
    case EV.EFI_ACTION:
    case EV.ACTION:
    case EV.S_CRTM_VERSION:
    case EV.OMIT_BOOT_DEVICE_EVENTS:
      return { kind: 'text', text: eventText(data) };
    case EV.EFI_VARIABLE_DRIVER_CONFIG:
    case EV.EFI_VARIABLE_BOOT:
    case EV.EFI_VARIABLE_BOOT2:
    case EV.EFI_VARIABLE_AUTHORITY:
      return { kind: 'uefi_variable', variable: decodeVariable(data, e.eventType) };
    case EV.EFI_BOOT_SERVICES_APPLICATION:
    case EV.EFI_BOOT_SERVICES_DRIVER:
    case EV.EFI_RUNTIME_SERVICES_DRIVER:
      return { kind: 'image_load', image: decodeImageLoadEvent(data) };
    case EV.EFI_GPT_EVENT:
    case EV.EFI_GPT_EVENT2:
      return { kind: 'gpt', gpt: decodeGptEvent(data) };
    default:
      return { kind: 'raw' };
  }
}

/**
 * Decodes one event's data by its type. Never throws for bad data: an event whose data does not decode as
 * its type says is returned as `undecodable` with the decoder's error reason (a log is still replayable
 * when one event's data is odd; appraisal rules that need that event then fail).
 */
export function decodeEvent(e: LogEvent): EventDetail {
  try {
    return detailOf(e);
  } catch (err) {
    if (err instanceof AttestationError) return { kind: 'undecodable', reason: err.reason };
    throw err;
  }
}
