import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replayEventLog } from '../src/evidence/tpm/eventlog-replay.js';
import { HASH_ALGS } from '../src/formats/tpm/constants.js';
import { EV } from '../src/formats/tpm/eventlog/event-types.js';
import { parseEventLog } from '../src/formats/tpm/eventlog/parse.js';
import { compare, type Figure } from './harness.js';

/** The largest real log of the vectors (ubuntu-2404-amd-sevsnp, 117 events in three banks). */
const CASE = 'ubuntu-2404-amd-sevsnp';

/**
 * Measured-boot event-log replay of a real log against raw hashing of the same bytes:
 * - `eventlog.replay`: replayEventLog over an already parsed log (every bank);
 * - `eventlog.parse_replay`: parseEventLog of the raw bytes, then replayEventLog.
 *
 * The floor of both is the work no replay can avoid: for every extending event and every bank, one
 * node:crypto hash of (register ‖ digest), i.e. the same number of createHash/update/digest calls over the
 * same bytes, with the digests already sliced out (no parsing, no bookkeeping). So the ratio shows what
 * parsing and the register map cost on top of the hashing itself.
 */
export async function benchEventLog(vectors: string): Promise<Figure[]> {
  const bytes = new Uint8Array(readFileSync(join(vectors, 'tpm', 'eventlogs', CASE, 'eventlog.bin')));
  const log = parseEventLog(bytes);
  const banks = replayEventLog(log).map((b) => b.hashAlg);

  // The floor's input, prepared once: per bank, the digests of the extending events with their register.
  const work = banks.map((alg) => ({
    node: HASH_ALGS[alg]!.node,
    size: HASH_ALGS[alg]!.size,
    extends: log.events
      .filter((e) => e.eventType !== EV.NO_ACTION)
      .map((e) => ({ reg: e.pcrIndex, digest: e.digests.find((d) => d.hashAlg === alg)!.digest })),
  }));
  const hashes = work.reduce((n, w) => n + w.extends.length, 0);
  const rawHashing = () => {
    for (const w of work) {
      const regs: Uint8Array[] = [];
      for (const x of w.extends) {
        const old = regs[x.reg] ?? new Uint8Array(w.size);
        regs[x.reg] = createHash(w.node).update(old).update(x.digest).digest();
      }
    }
  };
  const floorName = `node:crypto: ${hashes} extend hashes (register ‖ digest) over the same digests`;
  const extra = { log: CASE, bytes: bytes.length, events: log.events.length, banks: banks.length, hashes };

  const replay = await compare({
    name: 'eventlog.replay',
    subject: () => replayEventLog(log),
    floorName,
    floor: rawHashing,
  });
  const parseReplay = await compare({
    name: 'eventlog.parse_replay',
    subject: () => replayEventLog(parseEventLog(bytes)),
    floorName,
    floor: rawHashing,
  });
  return [
    { ...replay, extra },
    { ...parseReplay, extra },
  ];
}
