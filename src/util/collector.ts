import { setFlagsFromString } from 'node:v8';

/**
 * Turns off V8's allocation-site pretenuring for this process: a serving broker calls it first thing
 * (`vouchsafe serve`; the bench's and crash tests' broker process, test/crash/broker-process.ts).
 *
 * Why (docs/broker.md, "Fewer Mark-Compacts"): under load, objects from the broker's hot allocation sites
 * (the SNP claims, node-postgres' row parsing and query objects, the decision's boot state) are often still
 * in flight when a scavenge runs, so V8 marks those sites "tenured" and allocates everything they make
 * straight into the old generation, where it dies a few milliseconds later. The old generation then fills
 * at ~1 MB/s and a Mark-Compact cycle (concurrent marking competing for the cores, then a 5-14 ms pause)
 * follows every ~15 s, each one a run of slow releases in the latency tail. Allocated young, those objects
 * die in scavenges: 4-5 Mark-Compacts per proxy bench run became 1-2. The price is copying the few that do
 * survive a scavenge once more.
 *
 * V8 reads the flag whenever it decides about a site, so setting it after start works (a site tenured
 * before the call stays tenured: call it before serving); `test/util/collector.test.ts` shows the effect.
 */
export function preferYoungAllocation(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}
