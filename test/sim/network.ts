// The simulated network between replicas: every message independently may be dropped,
// duplicated, or delayed by a random amount (so messages reorder), and random partitions
// split the replicas into two sides until they heal. A message to a crashed node is lost;
// the simulation checks that on delivery.

import type { NodeId } from "../../src/protocol/ballot.js";
import type { Prng } from "./prng.js";

export interface NetworkProfile {
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly delayMinMs: number;
  readonly delayMaxMs: number;
  /** A few messages take much longer (a slow link, a long GC pause). */
  readonly spikeRate: number;
  readonly spikeMaxMs: number;
}

export function randomNetworkProfile(prng: Prng): NetworkProfile {
  const delayMinMs = prng.int(1, 3);
  return {
    dropRate: prng.pick([0, 0.01, 0.05, 0.1, 0.2]),
    duplicateRate: prng.pick([0, 0.01, 0.05]),
    delayMinMs,
    delayMaxMs: delayMinMs + prng.pick([2, 5, 15, 30]),
    spikeRate: prng.pick([0, 0.01, 0.05]),
    spikeMaxMs: prng.pick([100, 400, 2000]),
  };
}

export class SimNetwork {
  /** Faults on (drops, duplicates, partitions); the heal phase turns them off. */
  faulty = true;
  /** node -> side while partitioned; null when every node reaches every other. */
  private sides: Map<NodeId, number> | null = null;

  constructor(
    private readonly prng: Prng,
    readonly profile: NetworkProfile,
  ) {}

  connected(a: NodeId, b: NodeId): boolean {
    if (a === b || this.sides === null) return true;
    return this.sides.get(a) === this.sides.get(b);
  }

  /** When copies of one message arrive, as delays from now: [] lost, two entries duplicated. */
  plan(from: NodeId, to: NodeId): number[] {
    if (!this.connected(from, to)) return [];
    const p = this.profile;
    if (this.faulty && this.prng.chance(p.dropRate)) return [];
    const copies = this.faulty && this.prng.chance(p.duplicateRate) ? 2 : 1;
    const delays: number[] = [];
    for (let i = 0; i < copies; i++) {
      let delay = this.prng.int(p.delayMinMs, p.delayMaxMs);
      if (this.faulty && this.prng.chance(p.spikeRate)) delay += this.prng.int(1, p.spikeMaxMs);
      delays.push(delay);
    }
    return delays;
  }

  /** Splits the nodes into two non-empty sides at random; returns a description. */
  partition(nodes: readonly NodeId[]): string {
    const shuffled = this.prng.shuffle(nodes);
    const cut = this.prng.int(1, nodes.length - 1);
    this.sides = new Map(shuffled.map((n, i) => [n, i < cut ? 0 : 1]));
    const left = shuffled.slice(0, cut).sort().join(",");
    const right = shuffled.slice(cut).sort().join(",");
    return `{${left}} | {${right}}`;
  }

  heal(): void {
    this.sides = null;
  }

  get partitioned(): boolean {
    return this.sides !== null;
  }
}
