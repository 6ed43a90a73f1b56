// Majority quorums: any two majorities of the same replica set intersect, which is what
// carries a promise or an accepted value from one ballot to the next.

import type { NodeId } from "./ballot.js";

export function quorumSize(replicas: readonly NodeId[]): number {
  return Math.floor(replicas.length / 2) + 1;
}

export function isQuorum(votes: number, replicas: readonly NodeId[]): boolean {
  return votes >= quorumSize(replicas);
}
