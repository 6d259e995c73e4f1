/** A backward step of the clock the broker was given, as the broker absorbed it. */
export interface ClockStepBack {
  /** How far this reading went back from the previous one, ms. */
  readonly stepMs: number;
  /** What the broker now adds to the clock's readings (every step so far), ms. */
  readonly offsetMs: number;
}

/**
 * The broker's decision clock (docs/broker.md "When the clock goes backwards"): `read`, except that it never
 * runs backwards. When a reading is below the previous one (an NTP step, an operator's `date -s`, a VM
 * restored from a snapshot), the difference is added to every later reading: the broker's time carries on
 * from where it was and advances as `read` advances from then on. So the durations the broker measures
 * itself keep their length across the step: a challenge expires `challengeTtlMs` after it was issued and a
 * lease `leaseMs` after its last renewal, in elapsed time; nothing that had expired becomes valid again,
 * no lease is stretched by the size of the step, and audit times do not decrease.
 *
 * A forward step cannot be told from time passing and is taken as it comes (it shortens live challenges
 * and leases; run NTP so that it slews). The offset lives in memory: a restarted broker starts from `read`.
 * `onStepBack` is told of each step (the broker logs it).
 */
export function nonDecreasingClock(
  read: () => number,
  onStepBack?: (step: ClockStepBack) => void,
): () => number {
  let last: number | undefined;
  let offset = 0;
  return () => {
    const t = read();
    if (last !== undefined && t < last) {
      offset += last - t;
      onStepBack?.({ stepMs: last - t, offsetMs: offset });
    }
    last = t;
    return t + offset;
  };
}
