// The fast round: round 0 skips Prepare, which is safe only if at most one node ever uses it
// at a (group, index), with one value (DESIGN.md: "two nodes skipping prepare at one index
// loses chosen values"). Checked on every round-0 Accept the driver releases: the first one
// names the node and value of that instance's fast round; any other node or value objects.
// This catches the cause directly, before (or without) the two chosen values agreement sees.

import type { PeerMessage } from "../../../src/protocol/messages.js";
import { fail } from "./failure.js";

export class FastRoundChecker {
  /** "group#index" -> the node and value of its round-0 Accepts. */
  private readonly rounds = new Map<string, { node: string; valueId: string; at: number }>();

  onRelease(sender: string, msg: PeerMessage, now: number): void {
    if (msg.type !== "accept" || msg.ballot.round !== 0) return;
    if (msg.ballot.node !== sender) {
      fail("fast-round", `t=${now} ${sender} sent a round-0 Accept at ${msg.group}#${msg.index} under ${msg.ballot.node}'s ballot`);
    }
    const key = `${msg.group}#${msg.index}`;
    const first = this.rounds.get(key);
    if (first === undefined) {
      this.rounds.set(key, { node: sender, valueId: msg.value.id, at: now });
      return;
    }
    if (first.node !== sender || first.valueId !== msg.value.id) {
      fail(
        "fast-round",
        `t=${now} ${sender} skipped Prepare at ${key} with value ${msg.value.id}, but ${first.node} already did there with ${first.valueId} (t=${first.at})`,
      );
    }
  }
}
