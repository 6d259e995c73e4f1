import { createHash } from 'node:crypto';
import { HASH_ALGS } from '../../formats/tpm/constants.js';
import { EV } from '../../formats/tpm/eventlog/event-types.js';
import type { EventLog, LogEvent } from '../../formats/tpm/eventlog/parse.js';
import { decodeUefiVariableData } from '../../formats/tpm/eventlog/uefi-variable.js';
import { ctEqual } from '../../util/bytes.js';

/**
 * Whether each event's digests are of its own data. Replay proves the digests are what the TPM extended;
 * only this check ties an event's *data* (a variable's value, a command line) to those digests. The PFP
 * (rev 1.05 §10.4.1, §10.4.4) has the digest be the hash of the event data for the types below; for the
 * others (image loads: Authenticode hash; GRUB file measurements in PCR 9: the file; firmware blobs) the data
 * only describes what was hashed and cannot be checked here.
 *
 * Known firmware variants are accepted, not flagged:
 * - EV_EFI_VARIABLE_BOOT(2): EDK2/OVMF hash only VariableData, the spec the whole UEFI_VARIABLE_DATA;
 * - EV_IPL strings in PCR 8/12: GRUB (grub-core/commands/tpm.c) logs `grub_cmd: `, `kernel_cmdline: ` or
 *   `module_cmdline: ` + the string + NUL but hashes only the string; systemd-boot hashes the whole UTF-16
 *   data.
 */
export type DigestCheck = 'match' | 'mismatch' | 'not_checkable';

export interface EventDigestCheck {
  readonly index: number;
  readonly status: DigestCheck;
  /** For a mismatch: the algorithms whose digest is not of the data. */
  readonly mismatchedAlgs?: readonly number[];
}

/** Event types whose digest is the hash of the whole event data. */
const DATA_HASHED = new Set<number>([
  EV.SEPARATOR,
  EV.ACTION,
  EV.EFI_ACTION,
  EV.S_CRTM_VERSION,
  EV.EFI_VARIABLE_DRIVER_CONFIG,
  EV.EFI_VARIABLE_AUTHORITY,
  EV.EFI_GPT_EVENT,
  EV.OMIT_BOOT_DEVICE_EVENTS,
]);

/** PCRs whose EV_IPL events measure the event data itself (command lines), not a file named by it. */
const IPL_STRING_PCRS = new Set([8, 12]);

const GRUB_PREFIXES = ['grub_cmd: ', 'kernel_cmdline: ', 'module_cmdline: '].map((p) =>
  Buffer.from(p, 'latin1'),
);

/** GRUB's measured string: the data after its prefix, without the trailing NUL; undefined if not GRUB's. */
function grubString(data: Uint8Array): Uint8Array | undefined {
  if (data.length === 0 || data[data.length - 1] !== 0) return undefined;
  const prefix = GRUB_PREFIXES.find(
    (p) => data.length > p.length && Buffer.from(data.subarray(0, p.length)).equals(p),
  );
  return prefix === undefined ? undefined : data.subarray(prefix.length, data.length - 1);
}

/** The byte strings whose hash the event's digest may be, or undefined when the type cannot be checked. */
function candidates(e: LogEvent): Uint8Array[] | undefined {
  if (DATA_HASHED.has(e.eventType)) return [e.data];
  if (e.eventType === EV.EFI_VARIABLE_BOOT || e.eventType === EV.EFI_VARIABLE_BOOT2) {
    try {
      return [e.data, decodeUefiVariableData(e.data).variableData];
    } catch {
      return [e.data];
    }
  }
  if (e.eventType === EV.IPL && IPL_STRING_PCRS.has(e.pcrIndex)) {
    const out = [e.data];
    const grub = grubString(e.data);
    if (grub !== undefined) out.push(grub);
    return out;
  }
  return undefined;
}

/** Checks one event (see the module comment). Digests of algorithms node cannot compute are skipped. */
export function checkEventDigest(e: LogEvent): EventDigestCheck {
  const cands = e.eventType === EV.NO_ACTION ? undefined : candidates(e);
  if (cands === undefined) return { index: e.index, status: 'not_checkable' };
  const bad: number[] = [];
  let checked = 0;
  for (const d of e.digests) {
    const h = HASH_ALGS[d.hashAlg];
    if (h === undefined) continue;
    checked++;
    let ok = false;
    for (const c of cands)
      ok = ctEqual(new Uint8Array(createHash(h.node).update(c).digest()), d.digest) || ok;
    if (!ok) bad.push(d.hashAlg);
  }
  if (checked === 0) return { index: e.index, status: 'not_checkable' };
  return bad.length === 0
    ? { index: e.index, status: 'match' }
    : { index: e.index, status: 'mismatch', mismatchedAlgs: bad };
}

/** Checks every event of a log; the result is indexed like `log.events`. */
export function checkEventDigests(log: EventLog): EventDigestCheck[] {
  return log.events.map(checkEventDigest);
}
