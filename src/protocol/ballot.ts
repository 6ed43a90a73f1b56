// Ballots order Paxos attempts. A ballot is (round, node), compared lexicographically, so two
// nodes never share a ballot and any node can always pick one higher than all it has seen.
//
// Round 0 is the fast round: at instance i only the owner (the node that proposed the value
// chosen at i-1) may use it, and it skips Prepare. Because at most one node owns an instance,
// at most one value is ever proposed at round 0 there, which is what makes skipping Prepare
// safe (see fastRound.ts).

export type NodeId = string;

export interface Ballot {
  readonly round: number;
  readonly node: NodeId;
}

export const FAST_ROUND = 0;

/** Negative when a < b, zero when equal, positive when a > b. `null` is below every ballot. */
export function compareBallots(a: Ballot | null, b: Ballot | null): number {
  if (a === null) return b === null ? 0 : -1;
  if (b === null) return 1;
  if (a.round !== b.round) return a.round - b.round;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

export function ballotEquals(a: Ballot | null, b: Ballot | null): boolean {
  return compareBallots(a, b) === 0;
}

export function ballotToString(b: Ballot | null): string {
  return b === null ? "none" : `${b.round}.${b.node}`;
}
