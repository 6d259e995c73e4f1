import { MalformedEvidence } from '../../errors.js';
import { Reader, Writer } from '../reader.js';

/**
 * Payloads of the UEFI variable calls (docs/pvchannel.md §7.3): UEFI_GET, UEFI_SET, UEFI_GET_NEXT and
 * UEFI_QUERY_INFO, the host side of UEFI GetVariable, SetVariable, GetNextVariableName and
 * QueryVariableInfo (UEFI 2.10 §8.2). A variable is named by its vendor GUID (16 bytes, as EFI_GUID lays it
 * out in memory) and its name in UTF-16LE without the terminating null. The data the host stores is opaque
 * to it: the guest seals it (src/guest/uefi-vars) before it leaves the VM.
 *
 * Answers carry an EFI_STATUS (low 32 bits; the high "error" bit as UEFI's 0x8000000000000000 is implied for
 * the nonzero values below) so the firmware gets UEFI's own outcomes: NOT_FOUND at the end of
 * GetNextVariableName, INVALID_PARAMETER for a name that does not exist, OUT_OF_RESOURCES when full.
 */

/** EFI_STATUS values used on the wire (UEFI 2.10 Appendix D, without the high bit). */
export const EfiStatus = {
  Success: 0,
  InvalidParameter: 2,
  Unsupported: 3,
  OutOfResources: 9,
  NotFound: 14,
} as const;
export type EfiStatus = (typeof EfiStatus)[keyof typeof EfiStatus];
const EFI_STATUSES: ReadonlySet<number> = new Set(Object.values(EfiStatus));

/** Variable attributes (UEFI 2.10 §8.2.1 "GetVariable", Related Definitions). */
export const EfiVariable = {
  NonVolatile: 0x1,
  BootserviceAccess: 0x2,
  RuntimeAccess: 0x4,
  HardwareErrorRecord: 0x8,
  AuthenticatedWriteAccess: 0x10,
  TimeBasedAuthenticatedWriteAccess: 0x20,
  AppendWrite: 0x40,
  EnhancedAuthenticatedAccess: 0x80,
} as const;
/** Every attribute bit UEFI defines; the others are reserved and refused on the wire. */
export const EFI_VARIABLE_DEFINED = 0xff;

/** Bound on a variable name: 512 bytes of UTF-16LE (255 code units plus room), as edk2's default. */
export const MAX_NAME_BYTES = 512;
/** Bound on one variable's (sealed) data on the wire. */
export const MAX_DATA_BYTES = 128 * 1024;

/** A variable's name: vendor GUID and UTF-16LE name (no terminator). */
export interface VariableName {
  readonly guid: Uint8Array;
  readonly name: Uint8Array;
}

export interface SetRequest extends VariableName {
  readonly attributes: number;
  /** Empty (or attributes 0) deletes the variable (§8.2.3 SetVariable). */
  readonly data: Uint8Array;
}

export interface GetAnswer {
  readonly status: EfiStatus;
  readonly attributes: number;
  readonly data: Uint8Array;
}

export interface GetNextAnswer {
  readonly status: EfiStatus;
  /** The next variable (status Success); an empty name and zero GUID otherwise. */
  readonly next: VariableName;
}

export interface QueryInfoAnswer {
  readonly status: EfiStatus;
  readonly maximumVariableStorageSize: bigint;
  readonly remainingVariableStorageSize: bigint;
  readonly maximumVariableSize: bigint;
}

/** The name of a variable as a JS string, for messages and keys. */
export function nameToString(name: Uint8Array): string {
  return Buffer.from(name).toString('utf16le');
}

/** A JS string as a UTF-16LE name (no terminator). */
export function nameFromString(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf16le'));
}

/**
 * Checks a name read off the wire: an even number of bytes within the bound, no NUL code unit (the
 * terminator is not sent; a NUL inside would make two names compare equal to firmware). Empty only where
 * `allowEmpty` (GetNextVariableName's "start").
 */
function readName(r: Reader, what: string, n: number, allowEmpty: boolean): Uint8Array {
  if (n % 2 !== 0) throw new MalformedEvidence(`${what}.name_length`, `${what}: name length ${n} is odd`);
  if (n > MAX_NAME_BYTES) throw new MalformedEvidence(`${what}.name_length`, `${what}: name too long`);
  if (n === 0 && !allowEmpty) throw new MalformedEvidence(`${what}.name_length`, `${what}: empty name`);
  const name = r.bytes(n);
  for (let i = 0; i < n; i += 2) {
    if (name[i] === 0 && name[i + 1] === 0)
      throw new MalformedEvidence(`${what}.name_nul`, `${what}: NUL code unit inside the name`);
  }
  return Uint8Array.from(name);
}

function checkAttributes(a: number, what: string): void {
  if ((a & ~EFI_VARIABLE_DEFINED) !== 0)
    throw new MalformedEvidence(`${what}.attributes`, `${what}: reserved attribute bits set`);
}

function readStatus(r: Reader, what: string): EfiStatus {
  const s = r.u32le();
  if (!EFI_STATUSES.has(s)) throw new MalformedEvidence(`${what}.status`, `${what}: unknown EFI status ${s}`);
  return s as EfiStatus;
}

// ---- UEFI_GET and UEFI_GET_NEXT requests: guid[16] | u16 nameBytes | u16 reserved | name ----

function encodeName(v: VariableName): Uint8Array {
  return new Writer(0x14 + v.name.length).bytes(v.guid, 16).u16le(v.name.length).u16le(0).bytes(v.name).buf;
}

function decodeNameRequest(b: Uint8Array, what: string, allowEmpty: boolean): VariableName {
  const r = new Reader(b, what);
  const guid = Uint8Array.from(r.bytes(16));
  const n = r.u16le();
  r.mbz(2, '0x12');
  const name = readName(r, what, n, allowEmpty);
  r.end();
  if (allowEmpty && n === 0 && guid.some((x) => x !== 0)) {
    throw new MalformedEvidence(`${what}.start_guid`, `${what}: the start of the list has a zero GUID`);
  }
  return { guid, name };
}

/** UEFI_GET request (§7.3). Throws MalformedEvidence `pvchannel.uefi_get.*`. */
export function decodeGetRequest(b: Uint8Array): VariableName {
  return decodeNameRequest(b, 'pvchannel.uefi_get', false);
}
export const encodeGetRequest = encodeName;

/** UEFI_GET_NEXT request (§7.3): an empty name with a zero GUID starts the list. */
export function decodeGetNextRequest(b: Uint8Array): VariableName {
  return decodeNameRequest(b, 'pvchannel.uefi_get_next', true);
}
export const encodeGetNextRequest = encodeName;

// ---- UEFI_GET answer: u32 status | u32 attributes | u32 dataLength | u32 reserved | data ----

export function encodeGetAnswer(a: GetAnswer): Uint8Array {
  return new Writer(0x10 + a.data.length)
    .u32le(a.status)
    .u32le(a.attributes)
    .u32le(a.data.length)
    .u32le(0)
    .bytes(a.data).buf;
}

/** UEFI_GET answer. Throws MalformedEvidence `pvchannel.uefi_get_answer.*`. */
export function decodeGetAnswer(b: Uint8Array): GetAnswer {
  const what = 'pvchannel.uefi_get_answer';
  const r = new Reader(b, what);
  const status = readStatus(r, what);
  const attributes = r.u32le();
  checkAttributes(attributes, what);
  const n = r.u32le();
  r.mbz(4, '0xc');
  if (n > MAX_DATA_BYTES) throw new MalformedEvidence(`${what}.data_length`, `${what}: data too long`);
  const data = Uint8Array.from(r.bytes(n));
  r.end();
  if (status !== EfiStatus.Success && (attributes !== 0 || n !== 0)) {
    throw new MalformedEvidence(`${what}.error_fields`, `${what}: an error answer carries a variable`);
  }
  return { status, attributes, data };
}

// ---- UEFI_SET request: guid[16] | u16 nameBytes | u16 reserved | u32 attributes | u32 dataLength |
// u32 reserved | name | data

export function encodeSetRequest(s: SetRequest): Uint8Array {
  return new Writer(0x20 + s.name.length + s.data.length)
    .bytes(s.guid, 16)
    .u16le(s.name.length)
    .u16le(0)
    .u32le(s.attributes)
    .u32le(s.data.length)
    .u32le(0)
    .bytes(s.name)
    .bytes(s.data).buf;
}

/** UEFI_SET request (§7.3). Throws MalformedEvidence `pvchannel.uefi_set.*`. */
export function decodeSetRequest(b: Uint8Array): SetRequest {
  const what = 'pvchannel.uefi_set';
  const r = new Reader(b, what);
  const guid = Uint8Array.from(r.bytes(16));
  const n = r.u16le();
  r.mbz(2, '0x12');
  const attributes = r.u32le();
  checkAttributes(attributes, what);
  const dataLength = r.u32le();
  r.mbz(4, '0x1c');
  if (dataLength > MAX_DATA_BYTES)
    throw new MalformedEvidence(`${what}.data_length`, `${what}: data too long`);
  const name = readName(r, what, n, false);
  const data = Uint8Array.from(r.bytes(dataLength));
  r.end();
  return { guid, name, attributes, data };
}

// ---- UEFI_SET answer: u32 status | u32 reserved ----

export function encodeSetAnswer(status: EfiStatus): Uint8Array {
  return new Writer(8).u32le(status).u32le(0).buf;
}

export function decodeSetAnswer(b: Uint8Array): EfiStatus {
  const what = 'pvchannel.uefi_set_answer';
  const r = new Reader(b, what);
  const s = readStatus(r, what);
  r.mbz(4, '0x4');
  r.end();
  return s;
}

// ---- UEFI_GET_NEXT answer: u32 status | guid[16] | u16 nameBytes | u16 reserved | name ----

export function encodeGetNextAnswer(a: GetNextAnswer): Uint8Array {
  return new Writer(0x18 + a.next.name.length)
    .u32le(a.status)
    .bytes(a.next.guid, 16)
    .u16le(a.next.name.length)
    .u16le(0)
    .bytes(a.next.name).buf;
}

export function decodeGetNextAnswer(b: Uint8Array): GetNextAnswer {
  const what = 'pvchannel.uefi_get_next_answer';
  const r = new Reader(b, what);
  const status = readStatus(r, what);
  const guid = Uint8Array.from(r.bytes(16));
  const n = r.u16le();
  r.mbz(2, '0x16');
  const name = readName(r, what, n, status !== EfiStatus.Success);
  r.end();
  if (status !== EfiStatus.Success && (n !== 0 || guid.some((x) => x !== 0))) {
    throw new MalformedEvidence(`${what}.error_fields`, `${what}: an error answer names a variable`);
  }
  return { status, next: { guid, name } };
}

// ---- UEFI_QUERY_INFO request: u32 attributes | u32 reserved; answer: u32 status | u32 reserved | 3 x u64 ----

export function encodeQueryInfoRequest(attributes: number): Uint8Array {
  return new Writer(8).u32le(attributes).u32le(0).buf;
}

export function decodeQueryInfoRequest(b: Uint8Array): number {
  const what = 'pvchannel.uefi_query_info';
  const r = new Reader(b, what);
  const a = r.u32le();
  r.mbz(4, '0x4');
  r.end();
  checkAttributes(a, what);
  return a;
}

export function encodeQueryInfoAnswer(a: QueryInfoAnswer): Uint8Array {
  return new Writer(0x20)
    .u32le(a.status)
    .u32le(0)
    .u64le(a.maximumVariableStorageSize)
    .u64le(a.remainingVariableStorageSize)
    .u64le(a.maximumVariableSize).buf;
}

export function decodeQueryInfoAnswer(b: Uint8Array): QueryInfoAnswer {
  const what = 'pvchannel.uefi_query_info_answer';
  const r = new Reader(b, what);
  const status = readStatus(r, what);
  r.mbz(4, '0x4');
  const maximumVariableStorageSize = r.u64le();
  const remainingVariableStorageSize = r.u64le();
  const maximumVariableSize = r.u64le();
  r.end();
  if (remainingVariableStorageSize > maximumVariableStorageSize) {
    throw new MalformedEvidence(`${what}.sizes`, `${what}: more remaining than the maximum`);
  }
  return { status, maximumVariableStorageSize, remainingVariableStorageSize, maximumVariableSize };
}
