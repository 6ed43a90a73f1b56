// Where the queue subject's relay sends a write first (apiHandler.ts): one proposer per group,
// the same one from every node, so that the group keeps its one-round-trip fast round and no
// two replicas duel for its next instance. Routing only: Paxos is safe whoever proposes, and
// every copy of a relayed write carries one request id (docs/DESIGN.md, "Failover without a gap").

import type { NodeId } from "../protocol/ballot.js";

export interface RelayChoice {
  /** The group's replicas, preferred first (placement.ts). */
  readonly replicas: readonly NodeId[];
  readonly self: NodeId;
  /**
   * This node has been up long enough for its peers to relay to it (transport.ts): until then
   * it is the one coming back behind, and its peers still send the group's writes elsewhere.
   */
  readonly selfSettled: boolean;
  readonly peerAlive: (node: NodeId) => boolean;
  /**
   * The group's fast-round owner, when this node has the group loaded: the node that proposed
   * its last chosen value, which every up-to-date replica names alike.
   */
  readonly owner: NodeId | null;
}

/**
 * The live replicas in the order to try them: the fast-round owner first when it is live,
 * then the rest in preference order. Empty when no replica seems live (the caller proposes
 * itself). Owner first, not preferred first: after a failover the survivor that took a group
 * over keeps it, and a returning preferred replica does not take it back with a Prepare that
 * duels with the writes already on their way to the survivor.
 */
export function relayOrder(c: RelayChoice): NodeId[] {
  const live = c.replicas.filter((r) => (r === c.self ? c.selfSettled : c.peerAlive(r)));
  if (c.owner === null || !live.includes(c.owner)) return live;
  return [c.owner, ...live.filter((r) => r !== c.owner)];
}
