// Persist before send: an acceptor's Promise or Accepted reveals a promise or an accept, and
// a proposer counts it toward a quorum, so it may leave only once the acceptor's disk shows
// it; otherwise a crash forgets a vote that already decided something. That includes the
// vote of a replica's acceptor to its OWN proposer (released to self, like a peer's). Checked
// at the moment the simulated driver releases the message, against the sender's DURABLE image
// (what a crash right then would leave).
//
// A proposal is no vote and may leave before the proposer's own accept is durable, but its
// ballot must be its alone for good: a Prepare, and an Accept at round >= 1, leave only once
// the sender's disk shows a promise at least as high (a restarted proposer prepares above its
// durable promise, so it never sends a second value under that ballot). A round-0 Accept needs
// nothing on disk; its one-value rule across restarts is the fast-round checker's.

import { compareBallots } from "../../../src/protocol/ballot.js";
import type { DurableGroup } from "../../../src/protocol/durable.js";
import type { PeerMessage } from "../../../src/protocol/messages.js";
import { fail } from "./failure.js";
import { ballotText } from "./format.js";

export function checkPersistBeforeSend(sender: string, to: string, msg: PeerMessage, durable: DurableGroup | undefined, now: number): void {
  const proposal = (msg.type === "prepare" || msg.type === "accept") && msg.ballot.round > 0;
  if (msg.type !== "promise" && msg.type !== "accepted" && !proposal) return;
  const meta = durable?.meta;
  const chosen = meta?.chosen?.index ?? 0;
  // The instance is decided on disk: the vote no longer matters to anyone's safety.
  if (chosen >= msg.index) return;
  // The durable promise and accept are about instance chosen+1 only.
  if (meta !== undefined && chosen === msg.index - 1) {
    if (msg.type === "promise" && compareBallots(meta.promised, msg.ballot) >= 0) return;
    if (msg.type === "accepted" && meta.accepted !== null && compareBallots(meta.accepted.ballot, msg.ballot) === 0) return;
    if (proposal && compareBallots(meta.promised, msg.ballot) >= 0) return;
  }
  const onDisk = meta === undefined
    ? "nothing"
    : `chosen ${chosen}, promised ${ballotText(meta.promised)}, accepted ${meta.accepted === null ? "none" : ballotText(meta.accepted.ballot)}`;
  fail(
    "persist-before-send",
    `t=${now} ${sender} released ${msg.type} ${msg.group}#${msg.index} ballot ${ballotText(msg.ballot)} to ${to}, but its disk shows only: ${onDisk}`,
  );
}
