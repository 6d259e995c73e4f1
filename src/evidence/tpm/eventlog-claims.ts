import { TPM_ALG } from '../../formats/tpm/constants.js';
import { decodeEvent, eventText } from '../../formats/tpm/eventlog/decode-event.js';
import { EV } from '../../formats/tpm/eventlog/event-types.js';
import { EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE } from '../../formats/tpm/eventlog/guid.js';
import type { LogEvent } from '../../formats/tpm/eventlog/parse.js';
import { toHex } from '../../util/bytes.js';
import type { VerifiedEventLog } from './eventlog-verify.js';

/**
 * What a verified event log says about the boot, for appraisal (src/policy/tpm). Only events of PCRs
 * whose replay equals the quote are read, and facts taken from event *data* (a variable's value, a command
 * line) only from events whose digest is of that data; anything else is reported as absent or unverified.
 */
export interface BootClaims {
  /** SecureBoot as measured in PCR 7: true/false, or null when no verified event says. */
  readonly secureBoot: boolean | null;
  /** Per PCR 0-7: the separator's value (0 normal, 1 error), or null when there is no verified one. */
  readonly separators: ReadonlyMap<number, number | null>;
  /** EV_EFI_BOOT_SERVICES_APPLICATION events in PCR 4, in order: SHA-256 digest (hex) and file path. */
  readonly bootApplications: readonly {
    readonly index: number;
    readonly sha256: string | null;
    readonly path: string;
  }[];
  /** The kernel image: its SHA-256 (hex) and where it was found, or null. */
  readonly kernel: { readonly sha256: string | null; readonly source: string } | null;
  /** The kernel command line, and whether its event's digest is of its data. */
  readonly cmdline: { readonly text: string; readonly verified: boolean } | null;
  /** SHA-256 entries of dbx as measured in PCR 7 (hex), or null when no verified dbx event. */
  readonly dbxSha256: readonly string[] | null;
}

function sha256Of(e: LogEvent): string | null {
  const d = e.digests.find((x) => x.hashAlg === TPM_ALG.SHA256);
  return d === undefined ? null : toHex(d.digest);
}

const GRUB_KERNEL_CMDLINE = 'kernel_cmdline: ';

/** Derives the boot claims of a verified log (see the interface for what is and is not trusted). */
export function bootClaims(v: VerifiedEventLog): BootClaims {
  const verifiedPcr = new Set(v.verifiedPcrs);
  const matches = (e: LogEvent) => v.digestChecks[e.index]?.status === 'match';
  const events = v.log.events.filter((e) => e.eventType !== EV.NO_ACTION && verifiedPcr.has(e.pcrIndex));

  let secureBoot: boolean | null = null;
  let dbxSha256: string[] | null = null;
  const separators = new Map<number, number | null>();
  for (let p = 0; p < 8; p++) separators.set(p, null);
  const bootApplications: { index: number; sha256: string | null; path: string }[] = [];
  let grubCmdline: LogEvent | undefined;
  let stubCmdline: LogEvent | undefined;
  const pcr9Files: LogEvent[] = [];

  for (const e of events) {
    if (e.eventType === EV.SEPARATOR && e.pcrIndex < 8 && matches(e) && separators.get(e.pcrIndex) === null) {
      const d = decodeEvent(e);
      if (d.kind === 'separator') separators.set(e.pcrIndex, d.value);
    } else if (e.eventType === EV.EFI_VARIABLE_DRIVER_CONFIG && e.pcrIndex === 7 && matches(e)) {
      const d = decodeEvent(e);
      if (d.kind !== 'uefi_variable') continue;
      const x = d.variable;
      if (x.vendorGuid === EFI_GLOBAL_VARIABLE && x.name === 'SecureBoot' && x.enabled !== undefined) {
        secureBoot = x.enabled;
      } else if (x.vendorGuid === EFI_IMAGE_SECURITY_DATABASE && x.name === 'dbx' && x.signatureLists) {
        dbxSha256 = x.signatureLists
          .filter((l) => l.kind === 'sha256')
          .flatMap((l) => l.signatures.map((s) => toHex(s.data)));
      }
    } else if (e.eventType === EV.EFI_BOOT_SERVICES_APPLICATION && e.pcrIndex === 4) {
      const d = decodeEvent(e);
      bootApplications.push({
        index: e.index,
        sha256: sha256Of(e),
        path: d.kind === 'image_load' ? d.image.devicePath.filePath : '',
      });
    } else if (e.eventType === EV.IPL && e.pcrIndex === 8) {
      const text = eventText(e.data);
      if (text.startsWith(GRUB_KERNEL_CMDLINE)) grubCmdline = e;
      else if (!text.startsWith('grub_cmd: ') && !text.startsWith('module_cmdline: ')) stubCmdline = e;
    } else if (e.eventType === EV.IPL && e.pcrIndex === 9) {
      pcr9Files.push(e);
    }
  }

  let kernel: BootClaims['kernel'] = null;
  let cmdline: BootClaims['cmdline'] = null;
  if (grubCmdline !== undefined) {
    // GRUB: `kernel_cmdline: <kernel path> <arguments>`; the kernel file itself is measured in PCR 9 under
    // its path (grub-core/commands/tpm.c). The last measurement of that path is the image booted.
    const full = eventText(grubCmdline.data).slice(GRUB_KERNEL_CMDLINE.length);
    const [path = '', ...args] = full.split(/\s+/).filter((w) => w.length > 0);
    cmdline = { text: args.join(' '), verified: matches(grubCmdline) };
    const file = pcr9Files.filter((e) => eventText(e.data) === path).at(-1);
    if (file !== undefined) kernel = { sha256: sha256Of(file), source: `PCR 9 ${path}` };
  } else {
    // systemd-boot / EFI stub: the command line in PCR 8 (UTF-16), the kernel the last application in PCR 4.
    if (stubCmdline !== undefined)
      cmdline = { text: eventText(stubCmdline.data).trim(), verified: matches(stubCmdline) };
    const last = bootApplications.at(-1);
    if (last !== undefined && bootApplications.length > 1) {
      kernel = { sha256: last.sha256, source: `PCR 4 event ${last.index} ${last.path}` };
    }
  }
  return { secureBoot, separators, bootApplications, kernel, cmdline, dbxSha256 };
}
