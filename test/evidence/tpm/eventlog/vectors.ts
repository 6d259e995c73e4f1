import { haveVectors, readVector, readVectorJson, vectorCases } from '../../../helpers/vectors.js';

/** One real event log of ../shared/vectors/tpm/eventlogs and its independently replayed PCRs. */
export interface EventLogVector {
  readonly name: string;
  readonly log: Uint8Array;
  readonly expected: {
    readonly events: number;
    readonly replayed_pcrs: Record<string, Record<string, string>>;
    readonly tpm2_eventlog_warnings?: string[];
  };
}

export function eventLogVectors(): EventLogVector[] {
  if (!haveVectors) return [];
  return vectorCases('tpm', 'eventlogs').map((name) => ({
    name,
    log: readVector('tpm', 'eventlogs', name, 'eventlog.bin'),
    expected: readVectorJson('tpm', 'eventlogs', name, 'expected.json'),
  }));
}
