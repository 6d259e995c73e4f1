import { MalformedEvidence } from '../../../errors.js';
import { Reader } from '../../reader.js';
import { type DevicePathSummary, decodeDevicePath } from './device-path.js';
import { EFI_CERT_SHA256, EFI_CERT_X509, formatGuid } from './guid.js';
import { utf16z } from './utf16.js';

/**
 * UEFI_VARIABLE_DATA (TCG PC Client PFP rev 1.05 §10.3.3), the event data of EV_EFI_VARIABLE_DRIVER_CONFIG,
 * EV_EFI_VARIABLE_BOOT(2) and EV_EFI_VARIABLE_AUTHORITY, and the variable contents people appraise:
 * EFI_SIGNATURE_LIST (UEFI 2.10 §32.4.1; PK, KEK, db, dbx) and EFI_LOAD_OPTION (UEFI 2.10 §3.1.3; Boot####).
 */
export interface UefiVariableData {
  /** VariableName: the vendor GUID, e.g. EFI_GLOBAL_VARIABLE. */
  readonly vendorGuid: string;
  /** UnicodeName, e.g. `SecureBoot`. */
  readonly name: string;
  readonly variableData: Uint8Array;
  /**
   * Bytes after VariableData. The spec has none, but some firmware (GCE's, for EV_EFI_VARIABLE_AUTHORITY)
   * logs a few; they are covered by the event digest like the rest, and reported rather than refused.
   */
  readonly trailingBytes: number;
}

/** Longest variable name accepted, in characters (UEFI names are short; this bounds the decode). */
const MAX_NAME_CHARS = 1024;

/**
 * Decodes UEFI_VARIABLE_DATA. Throws MalformedEvidence: `eventlog.uefi_variable.truncated`,
 * `eventlog.uefi_variable.size` (a length over the data's size).
 */
export function decodeUefiVariableData(data: Uint8Array): UefiVariableData {
  const r = new Reader(data, 'eventlog.uefi_variable');
  const vendorGuid = formatGuid(r.bytes(16));
  const nameLength = r.u64le();
  const dataLength = r.u64le();
  if (nameLength > BigInt(MAX_NAME_CHARS) || dataLength > BigInt(data.length)) {
    throw new MalformedEvidence('eventlog.uefi_variable.size', 'UEFI_VARIABLE_DATA lengths exceed the event');
  }
  const name = utf16z(r.bytes(Number(nameLength) * 2));
  const variableData = r.bytes(Number(dataLength));
  return { vendorGuid, name, variableData, trailingBytes: r.remaining };
}

/** One EFI_SIGNATURE_DATA: its owner and either a digest (SHA-256 lists) or a certificate's SHA-256. */
export interface EfiSignature {
  readonly owner: string;
  readonly data: Uint8Array;
}

export interface EfiSignatureList {
  /** SignatureType GUID. */
  readonly type: string;
  /** `sha256`, `x509` or `other` (by SignatureType). */
  readonly kind: 'sha256' | 'x509' | 'other';
  readonly signatures: readonly EfiSignature[];
}

/** Most signatures decoded from one variable: a dbx has a few hundred; this bounds the work. */
const MAX_SIGNATURES = 65536;

/**
 * Decodes a sequence of EFI_SIGNATURE_LISTs (the contents of PK, KEK, db, dbx). Throws MalformedEvidence:
 * `eventlog.signature_list.truncated`, `eventlog.signature_list.size` (a list or signature size that does
 * not fit its list), `eventlog.signature_list.too_many`.
 */
export function decodeSignatureLists(data: Uint8Array): EfiSignatureList[] {
  const r = new Reader(data, 'eventlog.signature_list');
  const lists: EfiSignatureList[] = [];
  let total = 0;
  while (r.remaining > 0) {
    const start = r.offset;
    const type = formatGuid(r.bytes(16));
    const listSize = r.u32le();
    const headerSize = r.u32le();
    const sigSize = r.u32le();
    const fixed = 28 + headerSize;
    if (
      listSize < fixed ||
      listSize > data.length - start ||
      sigSize < 16 ||
      (listSize - fixed) % sigSize !== 0
    ) {
      throw new MalformedEvidence(
        'eventlog.signature_list.size',
        'EFI_SIGNATURE_LIST sizes are inconsistent',
      );
    }
    r.bytes(headerSize);
    const n = (listSize - fixed) / sigSize;
    total += n;
    if (total > MAX_SIGNATURES) {
      throw new MalformedEvidence('eventlog.signature_list.too_many', 'more than 65536 signatures');
    }
    const signatures: EfiSignature[] = [];
    for (let i = 0; i < n; i++) {
      const owner = formatGuid(r.bytes(16));
      signatures.push({ owner, data: r.bytes(sigSize - 16) });
    }
    const kind = type === EFI_CERT_SHA256 ? 'sha256' : type === EFI_CERT_X509 ? 'x509' : 'other';
    lists.push({ type, kind, signatures });
  }
  return lists;
}

export interface EfiLoadOption {
  readonly attributes: number;
  readonly description: string;
  readonly devicePath: DevicePathSummary;
  readonly optionalData: Uint8Array;
}

/**
 * Decodes an EFI_LOAD_OPTION (the contents of a Boot#### variable). Throws MalformedEvidence:
 * `eventlog.load_option.truncated`, `eventlog.load_option.description` (no NUL-terminated description),
 * and decodeDevicePath's reasons.
 */
export function decodeLoadOption(data: Uint8Array): EfiLoadOption {
  const r = new Reader(data, 'eventlog.load_option');
  const attributes = r.u32le();
  const pathLength = r.u16le();
  let end = -1;
  for (let i = r.offset; i + 1 < data.length; i += 2) {
    if (data[i] === 0 && data[i + 1] === 0) {
      end = i;
      break;
    }
  }
  if (end < 0)
    throw new MalformedEvidence('eventlog.load_option.description', 'description is not terminated');
  const description = utf16z(r.bytes(end + 2 - r.offset));
  const devicePath = decodeDevicePath(r.bytes(pathLength));
  return { attributes, description, devicePath, optionalData: r.bytes(r.remaining) };
}
