// The Ready contract (io.ts) as one piece of code, used by every caller of the core: the live
// key-group actor (src/actors/keyGroup.ts) and the simulation (test/sim/simulation.ts). It
// decides, and does nothing: the caller writes the persists, sends, answers and arms timers.
//
//   admit(ready)     -> what may go at once, and the persist to start (with its ticket);
//   durable(ticket)  -> what that persist releases (its own step's sends and answers, and those
//                       of every later step with no persist of its own that queued behind it);
//   wakeAt(...)      -> when the group's one timer must fire next.
//
// Why in order: a step with nothing to persist may repeat a Promise/Accepted whose persist is
// still on its way to disk (a duplicated Prepare), so it waits behind every earlier persist of
// the replica, not only its own.
//
// A persist nothing waits on may wait (`mayWait`, DESIGN.md "A learn rides the next commit"):
// a learn whose answers and Chosen already left (they depend on durable votes, not on it) need
// not cost an fsync of its own; storage writes it with the next synced batch, or after a short
// delay. Still synced and still in order, so a later persist is never durable without it. The
// moment something does wait on it (a later step's held sends or answers), `hurry` says so, and
// the caller starts the commit at once. Storage completes one replica's persists in order (the writer
// commits batches one at a time; the simulated disk is a FIFO), and `durable` asserts it: a
// persist reported out of order means the caller's disk reordered writes, which would let a
// promise be revealed before an earlier one is durable.

import type { Persist } from "./durable.js";
import type { Answer, Ready } from "./io.js";
import type { Outbound } from "./messages.js";

/** Messages and answers that may leave now. */
export interface Release {
  readonly send: readonly Outbound[];
  readonly answers: readonly Answer[];
}

/** What one Ready turns into. */
export interface Admitted {
  /** Leaves at once: `sendNow` and `answersNow`, and the whole step when nothing is on its way to disk. */
  readonly now: Release;
  /**
   * To write with sync; report it with `durable(ticket)` once it is. `mayWait`: nothing waits
   * on it yet, so it may ride the next synced batch instead of starting one.
   */
  readonly persist: { readonly ticket: number; readonly record: Persist; readonly mayWait: boolean } | null;
  /**
   * Something now waits on a persist that was admitted with `mayWait`: the caller must commit
   * what it holds at once (every earlier persist of the replica goes with it, in order).
   */
  readonly hurry: boolean;
}

export interface ReleaseQueueOptions {
  /**
   * The deliberate bug `reply-before-persist` (config.ts BreakName; simulation only): a step's
   * messages leave at once, before the disk has the promise or accept they reveal.
   */
  readonly replyBeforePersist?: boolean;
}

const NOTHING: Release = { send: [], answers: [] };

interface Waiting {
  readonly ticket: number;
  /** This persist's step, then every persist-less step admitted while it was the newest. */
  readonly releases: Release[];
}

/** One replica's persists on their way to disk, and what waits on each. */
export class ReleaseQueue {
  private readonly waiting: Waiting[] = [];
  private nextTicket = 1;
  private failed = false;
  /** Persists admitted with mayWait and not hurried since (the caller may still hold them). */
  private lazy = 0;
  private readonly replyBeforePersist: boolean;

  constructor(options: ReleaseQueueOptions = {}) {
    this.replyBeforePersist = options.replyBeforePersist ?? false;
  }

  /** Persists admitted and not yet durable. */
  get pendingPersists(): number {
    return this.waiting.length;
  }

  /** Takes one step's Ready (in step order). */
  admit(ready: Ready): Admitted {
    if (this.failed) return { now: NOTHING, persist: null, hurry: false }; // the node is stopping: reveal nothing
    let send = ready.send;
    // Proposals and decided facts first: they never wait (Ready.sendNow).
    const early: Outbound[] = [...ready.sendNow];
    if (this.replyBeforePersist) {
      early.push(...send);
      send = [];
    }
    const held: Release = { send, answers: ready.answers };
    const empty = send.length === 0 && ready.answers.length === 0;
    if (ready.persist !== null) {
      const ticket = this.nextTicket++;
      this.waiting.push({ ticket, releases: empty ? [] : [held] });
      // A persist that must not wait starts a commit, which takes every earlier one with it.
      if (empty) this.lazy++;
      else this.lazy = 0;
      return { now: { send: early, answers: ready.answersNow }, persist: { ticket, record: ready.persist, mayWait: empty }, hurry: false };
    }
    const tail = this.waiting[this.waiting.length - 1];
    if (tail === undefined) {
      // Nothing on its way to disk: the step goes whole, answersNow first (as they would anyway).
      return { now: { send: [...early, ...send], answers: [...ready.answersNow, ...ready.answers] }, persist: null, hurry: false };
    }
    if (empty) return { now: { send: early, answers: ready.answersNow }, persist: null, hurry: false };
    tail.releases.push(held);
    const hurry = this.lazy > 0;
    this.lazy = 0;
    return { now: { send: early, answers: ready.answersNow }, persist: null, hurry };
  }

  /** The persist with `ticket` is durable: returns what it releases. Must be the oldest. */
  durable(ticket: number): Release {
    if (this.failed) return NOTHING;
    const head = this.waiting[0];
    if (head === undefined || head.ticket !== ticket) {
      throw new Error(`release queue: persist ${ticket} reported durable, but the oldest pending is ${head?.ticket ?? "none"} (persists must complete in order)`);
    }
    this.waiting.shift();
    if (this.lazy > this.waiting.length) this.lazy = this.waiting.length;
    if (head.releases.length === 0) return NOTHING;
    if (head.releases.length === 1) return head.releases[0]!;
    return { send: head.releases.flatMap((r) => r.send), answers: head.releases.flatMap((r) => r.answers) };
  }

  /**
   * A persist failed: nothing that waits (on it or on anything) is ever released, and nothing
   * admitted later is either; the caller must stop the node (its disk is not trustworthy).
   */
  fail(): void {
    this.failed = true;
    this.waiting.length = 0;
    this.lazy = 0;
  }

  /**
   * Someone outside the steps waits for every pending persist (the actor settling before a
   * reload or a drop): returns whether any may still be held back, and counts them hurried.
   */
  hurryAll(): boolean {
    const held = this.lazy > 0;
    this.lazy = 0;
    return held;
  }
}

/**
 * The one rule for when a group's single timer fires: at the core's `wakeAt`, rounded up to a
 * whole ms and never before the next ms (a wakeAt in the past would otherwise spin). A timer
 * already armed to fire no later is kept (its tick is early or on time, never late, and the
 * core asks again after it); `wakeAt` null leaves the timer as it is (a spare tick is harmless).
 * Returns the time to (re)arm the timer at, or null to leave it.
 *
 * There are no other ticks: the core's wakeAt must name every time it needs (core.ts `wakeAt`).
 */
export function nextTimer(wakeAt: number | null, now: number, armedAt: number | null): number | null {
  if (wakeAt === null) return null;
  if (!Number.isFinite(wakeAt)) throw new Error(`release queue: wakeAt ${wakeAt} is not a time`);
  const at = Math.max(Math.ceil(wakeAt), Math.floor(now) + 1);
  if (armedAt !== null && armedAt <= at) return null;
  return at;
}
