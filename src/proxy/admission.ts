/**
 * Connection admission for the host proxy: a global cap on sessions served at once, per-key caps (a TCP
 * peer's address, a listener) on connections held, and a bounded first-in first-out queue for connections
 * that arrive while every slot is taken. Pure bookkeeping: no sockets and no clock of its own (the wait
 * bound runs on the injected timer), so tests drive it event by event.
 *
 * Why a queue and not a hard close: a host that is briefly full (a burst of reboots, or a peer holding idle
 * connections until their first-frame deadline cuts them) should make a guest wait a moment, not fail its
 * boot. Why per-key caps count waiting connections too: otherwise one peer could fill the queue and every
 * other peer would be closed at the door instead.
 */

/** Why a connection was not admitted; stable, logged and counted. */
export type AdmissionRefusal =
  | 'proxy.limit.peer'
  | 'proxy.limit.listener'
  | 'proxy.limit.queue_full'
  | 'proxy.limit.queue_timeout'
  | 'proxy.limit.closing';

/** A cap on connections held (served or waiting) under one key. */
export interface AdmissionKey {
  /** e.g. `tcp:192.0.2.7` (a TCP peer's address) or `listener:unix:/run/vouchsafe/vm-3.sock`. */
  readonly key: string;
  readonly limit: number;
  /** The refusal reported when this key is at its limit. */
  readonly refusal: 'proxy.limit.peer' | 'proxy.limit.listener';
}

export interface AdmissionLimits {
  /** Sessions served at once. */
  readonly maxActive: number;
  /** Connections that may wait for a slot. 0 closes at once when full. */
  readonly maxQueued: number;
  /** How long a connection may wait for a slot before it is closed. */
  readonly queueWaitMs: number;
  /** Starts a timer; returns its cancel function (default: setTimeout). */
  readonly setTimer?: (fn: () => void, ms: number) => () => void;
}

/** One connection asking to be served. */
export interface Applicant {
  readonly keys: readonly AdmissionKey[];
  /** Called once, when the connection gets a slot. */
  start(): void;
  /** Called once, when the connection is turned away (before or after waiting). */
  refuse(reason: AdmissionRefusal): void;
}

/** A connection's place: hand it back with `done()` when its session ends or its socket closes while it waits. */
export interface Ticket {
  done(): void;
}

interface Entry {
  readonly applicant: Applicant;
  state: 'waiting' | 'active' | 'gone';
  cancelTimer: () => void;
}

const noop = (): void => {};

const defaultTimer = (fn: () => void, ms: number): (() => void) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

export class Admission {
  private active = 0;
  private readonly held = new Map<string, number>();
  private readonly queue: Entry[] = [];
  private closed = false;
  private readonly setTimer: (fn: () => void, ms: number) => () => void;

  constructor(private readonly limits: AdmissionLimits) {
    this.setTimer = limits.setTimer ?? defaultTimer;
  }

  /** Sessions being served. */
  get activeCount(): number {
    return this.active;
  }

  /** Connections waiting for a slot. */
  get queuedCount(): number {
    return this.queue.length;
  }

  /**
   * Admits, queues or refuses `a`; `start` or `refuse` may run before this returns. The returned ticket
   * must be handed back (done) once the connection is finished with, whatever happened to it; a second
   * done, or a done after a refusal, does nothing.
   */
  offer(a: Applicant): Ticket {
    const e: Entry = { applicant: a, state: 'gone', cancelTimer: noop };
    const ticket: Ticket = { done: () => this.finish(e) };
    if (this.closed) {
      a.refuse('proxy.limit.closing');
      return ticket;
    }
    // Per-key caps first: a peer over its share is turned away even when slots are free.
    for (const k of a.keys) {
      if ((this.held.get(k.key) ?? 0) >= k.limit) {
        a.refuse(k.refusal);
        return ticket;
      }
    }
    if (this.active < this.limits.maxActive) {
      this.hold(a.keys);
      this.active++;
      e.state = 'active';
      a.start();
      return ticket;
    }
    if (this.queue.length >= this.limits.maxQueued) {
      a.refuse('proxy.limit.queue_full');
      return ticket;
    }
    this.hold(a.keys);
    e.state = 'waiting';
    this.queue.push(e);
    e.cancelTimer = this.setTimer(() => {
      if (e.state !== 'waiting') return;
      this.drop(e);
      a.refuse('proxy.limit.queue_timeout');
    }, this.limits.queueWaitMs);
    return ticket;
  }

  /** Refuses everything waiting, and every later offer, with `proxy.limit.closing`. */
  close(): void {
    this.closed = true;
    for (const e of [...this.queue]) {
      this.drop(e);
      e.applicant.refuse('proxy.limit.closing');
    }
  }

  private finish(e: Entry): void {
    if (e.state === 'active') {
      e.state = 'gone';
      this.active--;
      this.unhold(e.applicant.keys);
      this.pump();
    } else if (e.state === 'waiting') {
      this.drop(e);
    }
  }

  /** Starts waiting connections while slots are free, oldest first. */
  private pump(): void {
    while (this.active < this.limits.maxActive && this.queue.length > 0 && !this.closed) {
      const e = this.queue.shift()!;
      e.cancelTimer();
      e.state = 'active';
      this.active++;
      e.applicant.start();
    }
  }

  /** Removes a waiting entry and releases what it held. */
  private drop(e: Entry): void {
    const i = this.queue.indexOf(e);
    if (i >= 0) this.queue.splice(i, 1);
    e.cancelTimer();
    e.state = 'gone';
    this.unhold(e.applicant.keys);
  }

  private hold(keys: readonly AdmissionKey[]): void {
    for (const k of keys) this.held.set(k.key, (this.held.get(k.key) ?? 0) + 1);
  }

  private unhold(keys: readonly AdmissionKey[]): void {
    for (const k of keys) {
      const n = (this.held.get(k.key) ?? 0) - 1;
      if (n <= 0) this.held.delete(k.key);
      else this.held.set(k.key, n);
    }
  }
}
