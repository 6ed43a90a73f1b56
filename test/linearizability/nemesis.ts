// The faults of `npm run verify`, one at a time on a seeded schedule: a calm spell, a fault
// for a few seconds, the heal, and again. Each fault type comes once per cycle, in a shuffled
// order, so even a short run meets every one. Every fault's window (from the moment it starts
// to the moment it is fully healed, on the recorder's clock) is recorded for the report.
//
//   kill       kill -9 of a node, restarted (same data) at the end of the window
//   pause      SIGSTOP of a node, SIGCONT at the end
//   isolate    a node's namespace cut from both peers: its server leaves the NATS cluster; the
//              clients connected to that server still reach that node: the minority side
//   partition  either a clean 1|2 split (as isolate) or a non-transitive one: two nodes cannot
//              reach each other while the third reaches both (clients of each cut server see
//              only part of the cluster)
//   slow-disk  every storage commit (so every fsync) of one node, or of all, waits 50-300 ms
//   wipe       (not in the default set) a node B is cut off and falls behind; then node A is
//              killed, its data directory wiped, B healed, the third node C cut off, and A
//              restarted: A (empty) and B (behind) are the majority. Safe only with lost-disk
//              handling (src/actors/identity.ts and lost-disk mode, docs/OPERATIONS.md).

import type { VerifyCluster } from "./cluster.js";
import { cut, healAll, type Network } from "./netns.js";
import type { Rng } from "./rng.js";

export const DEFAULT_NEMESES = ["kill", "pause", "isolate", "partition", "slow-disk"] as const;
export const ALL_NEMESES = [...DEFAULT_NEMESES, "wipe"] as const;
export type NemesisName = (typeof ALL_NEMESES)[number];

export interface FaultWindow {
  readonly id: number;
  readonly kind: NemesisName;
  readonly nodes: readonly string[];
  readonly detail: string;
  /** performance.now() of the recorder process, as the history's times. */
  readonly startedAt: number;
  /** When the heal completed (null: the run ended first). */
  endedAt: number | null;
}

export interface NemesisOptions {
  readonly cluster: VerifyCluster;
  readonly net: Network;
  readonly rng: Rng;
  readonly names: readonly NemesisName[];
  /** How long a fault lasts, ms: [min, max]. */
  readonly faultMs: readonly [number, number];
  /** The calm between two faults, ms: [min, max]. */
  readonly calmMs: readonly [number, number];
  readonly log: (line: string) => void;
}

export class Nemesis {
  readonly faults: FaultWindow[] = [];
  private stopRequested = false;
  private wake: (() => void) | null = null;
  private heal: (() => Promise<void>) | null = null;

  constructor(private readonly o: NemesisOptions) {}

  /** The fault in progress, if any. */
  active(): FaultWindow | null {
    const last = this.faults[this.faults.length - 1];
    return last !== undefined && last.endedAt === null ? last : null;
  }

  /** Runs faults until `deadline` (performance.now()) or stop(); a fault in progress is healed. */
  async run(deadline: number): Promise<void> {
    if (this.o.names.length === 0) return;
    let cycle: NemesisName[] = [];
    while (!this.stopRequested) {
      await this.sleep(this.o.rng.int(this.o.calmMs[0], this.o.calmMs[1]));
      const faultMs = this.o.rng.int(this.o.faultMs[0], this.o.faultMs[1]);
      // No fault that cannot finish (and be healed) before the run ends.
      if (this.stopRequested || performance.now() + faultMs > deadline) break;
      if (cycle.length === 0) cycle = this.o.rng.shuffle(this.o.names);
      const kind = cycle.shift()!;
      await this.inject(kind, faultMs);
    }
  }

  /** Ends the schedule early; the fault in progress is healed before run() returns. */
  stop(): void {
    this.stopRequested = true;
    this.wake?.();
  }

  /** Heals whatever may be broken (for a hurried exit). Never throws. */
  async healEverything(): Promise<void> {
    try {
      await this.heal?.();
    } catch (e) {
      this.o.log(`nemesis: heal failed: ${(e as Error).message}`);
    }
    try {
      await healAll(this.o.net);
    } catch {
      // the network may be gone already
    }
  }

  private async inject(kind: NemesisName, faultMs: number): Promise<void> {
    const { cluster, rng } = this.o;
    const members = cluster.members;
    const node = rng.pick(members);
    const others = members.filter((m) => m !== node);
    let window: FaultWindow;
    const open = (nodes: readonly string[], detail: string): void => {
      window = { id: this.faults.length + 1, kind, nodes, detail, startedAt: performance.now(), endedAt: null };
      this.faults.push(window);
      this.o.log(`nemesis: ${kind} ${detail}`);
    };
    switch (kind) {
      case "kill":
        open([node], `kill -9 ${node}, restart after ${faultMs} ms`);
        this.heal = () => cluster.restart(node);
        await cluster.kill9(node);
        break;
      case "pause":
        open([node], `SIGSTOP ${node} for ${faultMs} ms`);
        this.heal = async () => cluster.resume(node);
        cluster.pause(node);
        break;
      case "isolate":
        open([node], `${node} cut off from ${others.join(",")} for ${faultMs} ms (clients of its server on the minority side)`);
        this.heal = () => healAll(this.o.net);
        await cut(this.o.net, node, others);
        break;
      case "partition": {
        this.heal = () => healAll(this.o.net);
        if (rng.next() < 0.5) {
          open([node], `partition ${node} | ${others.join(",")} for ${faultMs} ms`);
          await cut(this.o.net, node, others);
        } else {
          const [a, b] = rng.shuffle(members);
          const bridge = members.find((m) => m !== a && m !== b)!;
          open([a!, b!], `partition ${a} x ${b} (only ${bridge} reaches both) for ${faultMs} ms`);
          await cut(this.o.net, a!, [b!]);
        }
        break;
      }
      case "slow-disk": {
        const nodes = rng.next() < 0.5 ? [node] : [...members];
        const delayMs = rng.int(50, 300);
        open(nodes, `fsync delay ${delayMs} ms on ${nodes.join(",")} for ${faultMs} ms`);
        this.heal = async () => nodes.forEach((n) => cluster.setFsyncDelay(n, 0));
        for (const n of nodes) cluster.setFsyncDelay(n, delayMs);
        break;
      }
      case "wipe": {
        const [a, b, c] = rng.shuffle(members) as [string, string, string];
        open([a, b, c], `${b} falls behind, ${a} wiped and restarted while ${c} is cut off`);
        this.heal = async () => {
          await healAll(this.o.net);
          if (!cluster.isUp(a)) await cluster.restart(a);
        };
        await cut(this.o.net, b, [a, c]);
        await this.sleep(faultMs / 2);
        await cluster.kill9(a);
        cluster.wipe(a);
        await healAll(this.o.net);
        await cut(this.o.net, c, [a, b]);
        await cluster.restart(a);
        this.o.log(`nemesis: wipe: ${a} restarted empty; majority ${a}+${b} while ${c} is cut off`);
        await this.sleep(faultMs / 2);
        break;
      }
    }
    if (kind !== "wipe") await this.sleep(faultMs);
    try {
      await this.heal?.();
    } finally {
      this.heal = null;
      window!.endedAt = performance.now();
      this.o.log(`nemesis: healed ${kind} (${((window!.endedAt - window!.startedAt) / 1000).toFixed(1)} s)`);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopRequested) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
