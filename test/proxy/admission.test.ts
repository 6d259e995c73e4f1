import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Admission, type AdmissionKey, type AdmissionRefusal } from '../../src/proxy/admission.js';

/** A timer the test fires by hand: no wall clock anywhere. */
function manualTimers() {
  const pending = new Set<() => void>();
  return {
    setTimer: (fn: () => void) => {
      pending.add(fn);
      return () => pending.delete(fn);
    },
    fireAll: () => {
      for (const fn of [...pending]) {
        pending.delete(fn);
        fn();
      }
    },
    get count() {
      return pending.size;
    },
  };
}

function applicant(keys: AdmissionKey[] = []) {
  const a = {
    started: false,
    refused: undefined as AdmissionRefusal | undefined,
    keys,
    start() {
      a.started = true;
    },
    refuse(r: AdmissionRefusal) {
      a.refused = r;
    },
  };
  return a;
}

const peer = (ip: string, limit: number): AdmissionKey => ({
  key: `tcp:${ip}`,
  limit,
  refusal: 'proxy.limit.peer',
});

describe('proxy admission', () => {
  it('caps one peer (served and waiting together) while other peers are admitted', () => {
    const t = manualTimers();
    const adm = new Admission({ maxActive: 3, maxQueued: 10, queueWaitMs: 1000, setTimer: t.setTimer });
    const a = Array.from({ length: 5 }, () => applicant([peer('10.0.0.1', 2)]));
    const tickets = a.map((x) => adm.offer(x));
    assert.deepEqual(
      a.map((x) => x.started),
      [true, true, false, false, false],
    );
    assert.deepEqual(
      a.map((x) => x.refused),
      [undefined, undefined, 'proxy.limit.peer', 'proxy.limit.peer', 'proxy.limit.peer'],
    );
    const other = applicant([peer('10.0.0.2', 2)]);
    adm.offer(other);
    assert.equal(other.started, true);
    // The slot a peer gives back is its own again.
    tickets[0]!.done();
    const again = applicant([peer('10.0.0.1', 2)]);
    adm.offer(again);
    assert.equal(again.started, true);
  });

  it('queues beyond the global cap and serves the oldest waiting connection when a slot frees', () => {
    const t = manualTimers();
    const adm = new Admission({ maxActive: 1, maxQueued: 2, queueWaitMs: 1000, setTimer: t.setTimer });
    const first = applicant();
    const ticket = adm.offer(first);
    const w1 = applicant();
    const w2 = applicant();
    const w3 = applicant();
    adm.offer(w1);
    adm.offer(w2);
    adm.offer(w3);
    assert.equal(first.started, true);
    assert.deepEqual([w1.started, w2.started, w3.refused], [false, false, 'proxy.limit.queue_full']);
    assert.equal(adm.queuedCount, 2);
    ticket.done();
    assert.deepEqual([w1.started, w2.started], [true, false]);
    assert.equal(adm.activeCount, 1);
    assert.equal(adm.queuedCount, 1);
    ticket.done(); // a second done changes nothing
    assert.equal(adm.activeCount, 1);
  });

  it('closes a connection that waited too long and gives its peer share back', () => {
    const t = manualTimers();
    const adm = new Admission({ maxActive: 1, maxQueued: 5, queueWaitMs: 1000, setTimer: t.setTimer });
    adm.offer(applicant());
    const waiting = applicant([peer('10.0.0.1', 1)]);
    const wt = adm.offer(waiting);
    assert.equal(adm.queuedCount, 1);
    t.fireAll();
    assert.equal(waiting.refused, 'proxy.limit.queue_timeout');
    assert.equal(adm.queuedCount, 0);
    wt.done(); // the owner hands the ticket back after a refusal: nothing more happens
    const next = applicant([peer('10.0.0.1', 1)]);
    adm.offer(next);
    assert.equal(next.refused, undefined, 'the share was released');
    assert.equal(adm.queuedCount, 1);
  });

  it('a waiting connection that goes away frees its place; close() refuses the rest and later offers', () => {
    const t = manualTimers();
    const adm = new Admission({ maxActive: 1, maxQueued: 1, queueWaitMs: 1000, setTimer: t.setTimer });
    adm.offer(applicant());
    const gone = adm.offer(applicant());
    gone.done();
    assert.equal(adm.queuedCount, 0);
    assert.equal(t.count, 0, 'its timer is cancelled');
    const w = applicant();
    adm.offer(w);
    adm.close();
    assert.equal(w.refused, 'proxy.limit.closing');
    const late = applicant();
    adm.offer(late);
    assert.equal(late.refused, 'proxy.limit.closing');
  });

  it('maxQueued 0 closes at once when every slot is taken', () => {
    const adm = new Admission({ maxActive: 1, maxQueued: 0, queueWaitMs: 1000 });
    adm.offer(applicant());
    const b = applicant();
    adm.offer(b);
    assert.equal(b.refused, 'proxy.limit.queue_full');
  });
});
