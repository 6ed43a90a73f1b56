// Does what one step of a key-group replica's core asks (its Ready), through ports: the live
// key-group actor (keyGroup.ts) plugs in the storage writer, NATS and setTimeout; the
// simulation (test/sim/simulation.ts) plugs in a simulated disk, network and virtual clock.
// Both run this code, so the order the simulation checks is the order the live node keeps.
//
// The decisions are protocol/releaseQueue.ts's (what waits on which persist, when the timer
// fires); this file wires them to the ports. It holds no clock and no timer of its own: time
// comes in with each call, and the port arms the one timer.

import type { NodeId } from "../protocol/ballot.js";
import type { Persist } from "../protocol/durable.js";
import type { CallId, Outcome, Ready } from "../protocol/io.js";
import type { PeerMessage } from "../protocol/messages.js";
import { nextTimer, ReleaseQueue, type Release, type ReleaseQueueOptions } from "../protocol/releaseQueue.js";

/** The I/O of one group replica. */
export interface GroupPorts {
  /**
   * Writes `record` with sync, then calls `durable`; or calls `failed` if it cannot. One
   * group's records must complete in the order they were written (the driver asserts it).
   * `mayWait`: nothing waits on this record yet, so it may wait for the next synced batch (or a
   * short delay) instead of starting one; it is still written with sync and in order.
   */
  persist(record: Persist, durable: () => void, failed: (error: unknown) => void, mayWait: boolean): void;
  /** Something now waits on a record written with `mayWait`: commit what is held, now. */
  hurry(): void;
  send(to: NodeId, msg: PeerMessage): void;
  answer(call: CallId, outcome: Outcome): void;
  /** (Re)arms the group's one timer to fire at `at` (caller's clock), replacing an armed one. */
  armTimer(at: number, now: number): void;
  /** The disk failed, or the release order broke: nothing more may be revealed; stop the node. */
  fatal(error: unknown): void;
}

export class GroupDriver {
  /** Persists on their way to disk, and the sends and answers waiting on them. */
  readonly releases: ReleaseQueue;
  /** When the armed timer fires; null when none is armed. */
  private timerAt: number | null = null;
  /** Waiting for every persist in flight to be durable (or to fail): see settled(). */
  private settleWaiters: (() => void)[] = [];

  constructor(
    private readonly ports: GroupPorts,
    options: ReleaseQueueOptions = {},
  ) {
    this.releases = new ReleaseQueue(options);
  }

  /** Persists not yet durable (an idle group has none). */
  get pendingPersists(): number {
    return this.releases.pendingPersists;
  }

  /**
   * Resolves once no persist is in flight (each landed, or one failed and the node stops).
   * A crashed actor's successor waits for it before it reads the disk (groupRegistry.ts).
   */
  settled(): Promise<void> {
    if (this.pendingPersists === 0) return Promise.resolve();
    if (this.releases.hurryAll()) this.ports.hurry();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  private wakeSettled(force: boolean): void {
    if (this.settleWaiters.length === 0 || (!force && this.pendingPersists > 0)) return;
    const waiters = this.settleWaiters;
    this.settleWaiters = [];
    for (const w of waiters) w();
  }

  /** Does what one step's Ready asks, in step order. */
  perform(ready: Ready, now: number): void {
    this.schedule(ready.wakeAt, now);
    const admitted = this.releases.admit(ready);
    this.release(admitted.now);
    if (admitted.hurry) this.ports.hurry();
    const persist = admitted.persist;
    if (persist === null) return;
    this.ports.persist(
      persist.record,
      () => {
        // `durable` throws if this group's persists completed out of order: a broken
        // invariant of the storage, which must stop the node before anything else leaves.
        let out: Release;
        try {
          out = this.releases.durable(persist.ticket);
        } catch (e) {
          this.releases.fail();
          this.ports.fatal(e);
          this.wakeSettled(true);
          return;
        }
        this.release(out);
        this.wakeSettled(false);
      },
      (error) => {
        // A failed persist releases nothing: an unpersisted promise or accept must never be revealed.
        this.releases.fail();
        this.ports.fatal(error);
        this.wakeSettled(true);
      },
      persist.mayWait,
    );
  }

  /** The port's timer fired (call before stepping its tick). */
  timerFired(): void {
    this.timerAt = null;
  }

  private release(out: Release): void {
    for (const o of out.send) this.ports.send(o.to, o.msg);
    for (const a of out.answers) this.ports.answer(a.call, a.outcome);
  }

  private schedule(wakeAt: number | null, now: number): void {
    const at = nextTimer(wakeAt, now, this.timerAt);
    if (at === null) return;
    this.timerAt = at;
    this.ports.armTimer(at, now);
  }
}
