// Membership changes in the simulation (issue 13): which groups change configuration, when,
// and how. About half the seeds run them: spare nodes beyond the groups' birth configuration,
// and per group a few changes (add, remove, replace one, replace two) started at random times
// of the fault phase, so they run during crashes, partitions and client writes. A change starts
// only when the group's previous one is done; a removed replica's copy is dropped once a
// quorum of the new configuration holds the data (simulation.ts).

import type { NodeId } from "../../src/protocol/ballot.js";
import type { BreakName } from "../../src/protocol/config.js";
import type { Prng } from "./prng.js";

export interface MembershipPlan {
  /** Nodes beyond the birth configuration. */
  readonly spares: number;
  /** Group -> when each of its changes starts (virtual ms, ascending). */
  readonly starts: ReadonlyMap<string, readonly number[]>;
  /** Each group's first change replaces a majority (the targeted fault of a joiner bug). */
  readonly majorityFirst: boolean;
  /** Chance that a client routes by the configuration being moved to, not the last one it knows. */
  readonly routeNewRate: number;
}

export type ChangeKind = "replace one" | "replace two" | "add" | "remove" | "replace a majority";

export function planMembership(
  prng: Prng,
  groups: readonly string[],
  replicas: 3 | 5,
  faultPhaseMs: number,
  breaks: ReadonlySet<BreakName>,
  stress = false,
): MembershipPlan | null {
  const targeted = breaks.has("reconfig-joiner-votes-early");
  if (!targeted && !stress && !prng.chance(0.5)) return null;
  const starts = new Map<string, number[]>();
  for (const group of groups) {
    const count = stress ? prng.int(3, 6) : targeted ? prng.int(1, 2) : prng.pick([0, 1, 1, 2, 3]);
    const times: number[] = [];
    for (let i = 0; i < count; i++) times.push(prng.int(20, faultPhaseMs));
    if (times.length > 0) starts.set(group, times.sort((a, b) => a - b));
  }
  return { spares: replicas === 3 ? 2 : 3, starts, majorityFirst: targeted, routeNewRate: prng.pick([0, 0.3, 0.7]) };
}

/**
 * The next configuration of a group, from `current` (size 3 to 5) and the nodes free to join
 * (`available`: members of neither it nor any copy not yet dropped). In a random order: the
 * first replica owns the fast round when the proposer of the previous value left.
 */
export function planChange(
  prng: Prng,
  current: readonly NodeId[],
  available: readonly NodeId[],
  majority: boolean,
): { kind: ChangeKind; replicas: NodeId[] } | null {
  const s = current.length;
  const kinds: ChangeKind[] = [];
  const k = Math.floor(s / 2) + 1;
  if (majority && available.length >= k) kinds.push("replace a majority");
  else {
    if (available.length >= 1) kinds.push("replace one");
    if (available.length >= 2) kinds.push("replace two");
    if (available.length >= 1 && s < 5) kinds.push("add");
    if (s > 3) kinds.push("remove");
  }
  if (kinds.length === 0) return null;
  const kind = prng.pick(kinds);
  const out = prng.shuffle(current);
  const joiners = prng.shuffle(available);
  const replace = (n: number): void => {
    out.splice(0, n);
    out.push(...joiners.slice(0, n));
  };
  switch (kind) {
    case "replace one":
      replace(1);
      break;
    case "replace two":
      replace(2);
      break;
    case "replace a majority":
      replace(k);
      break;
    case "add":
      out.push(joiners[0]!);
      break;
    case "remove":
      out.splice(0, 1);
      break;
  }
  return { kind, replicas: prng.shuffle(out) };
}
