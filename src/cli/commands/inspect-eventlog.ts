import type { Command } from 'commander';
import { checkEventDigests } from '../../evidence/tpm/eventlog-digests.js';
import { replayEventLog } from '../../evidence/tpm/eventlog-replay.js';
import { algLabel, HASH_ALGS } from '../../formats/tpm/constants.js';
import { decodeEvent } from '../../formats/tpm/eventlog/decode-event.js';
import { eventTypeName } from '../../formats/tpm/eventlog/event-types.js';
import { type EventLog, parseEventLog } from '../../formats/tpm/eventlog/parse.js';
import { toHex } from '../../util/bytes.js';
import { Exit, readInput, reportError } from '../io.js';

/** JSON-safe form of decoded values: bytes as hex, bigints as decimal strings, Maps as objects. */
export function jsonSafe(v: unknown): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), jsonSafe(x)]));
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonSafe(x)]));
  }
  return v;
}

const bankName = (a: number) => HASH_ALGS[a]?.name ?? algLabel(a);

/** Every event decoded, its digest check, and the replayed PCRs per bank. */
export function eventLogJson(log: EventLog): Record<string, unknown> {
  const checks = checkEventDigests(log);
  return {
    format: log.format,
    specId: jsonSafe(log.specId),
    events: log.events.map((e) => ({
      index: e.index,
      pcrIndex: e.pcrIndex,
      eventType: eventTypeName(e.eventType),
      digests: Object.fromEntries(e.digests.map((d) => [bankName(d.hashAlg), toHex(d.digest)])),
      digestCheck: checks[e.index]!.status,
      detail: jsonSafe(decodeEvent(e)),
    })),
    replayedPcrs: Object.fromEntries(replayEventLog(log).map((b) => [bankName(b.hashAlg), jsonSafe(b.pcrs)])),
  };
}

function run(file: string, o: { json?: boolean }): number {
  try {
    const out = eventLogJson(parseEventLog(readInput(file, 'LOG')));
    if (o.json) {
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return Exit.Ok;
    }
    const events = out.events as {
      index: number;
      pcrIndex: number;
      eventType: string;
      digestCheck: string;
      detail: { kind: string; text?: string };
    }[];
    process.stdout.write(`${out.format} event log, ${events.length} events\n`);
    for (const e of events) {
      const flag = e.digestCheck === 'mismatch' ? '  DIGEST DOES NOT MATCH DATA' : '';
      const text = e.detail.kind === 'text' ? ` ${JSON.stringify(e.detail.text).slice(0, 80)}` : '';
      process.stdout.write(
        `  ${String(e.index).padStart(4)} PCR ${String(e.pcrIndex).padStart(2)} ${e.eventType}${text}${flag}\n`,
      );
    }
    for (const [bank, pcrs] of Object.entries(out.replayedPcrs as Record<string, Record<string, string>>)) {
      process.stdout.write(`${bank}:\n`);
      for (const [i, v] of Object.entries(pcrs)) process.stdout.write(`  ${i.padStart(2)}: ${v}\n`);
    }
    return Exit.Ok;
  } catch (e) {
    return reportError(e, o.json === true);
  }
}

/** Adds `eventlog` to an existing `inspect` command. */
export function registerInspectEventLog(inspect: Command): void {
  inspect
    .command('eventlog')
    .description(
      'decode a TCG PC Client event log (SHA-1 or crypto-agile) and replay it per bank, unverified',
    )
    .argument('<log>', 'the event log (binary_bios_measurements)')
    .option('--json', 'print every event decoded and the replayed PCRs as JSON')
    .action((file: string, o: { json?: boolean }) => {
      process.exitCode = run(file, o);
    });
}
