// Persist before send: an acceptor's Promise or Accepted reveals a promise or an accept, and
// a proposer counts it toward a quorum, so it may leave only once the acceptor's disk shows
// it; otherwise a crash forgets a vote that already decided something. Checked at the moment
// the simulated driver releases the message onto the network, against the sender's DURABLE
// image (what a crash right then would leave).

import { compareBallots } from "../../../src/protocol/ballot.js";
import type { DurableGroup } from "../../../src/protocol/durable.js";
import type { PeerMessage } from "../../../src/protocol/messages.js";
import { fail } from "./failure.js";
import { ballotText } from "./format.js";

export function checkPersistBeforeSend(sender: string, to: string, msg: PeerMessage, durable: DurableGroup | undefined, now: number): void {
  if (msg.type !== "promise" && msg.type !== "accepted") return;
  const meta = durable?.meta;
  const chosen = meta?.chosen?.index ?? 0;
  // The instance is decided on disk: the vote no longer matters to anyone's safety.
  if (chosen >= msg.index) return;
  // The durable promise and accept are about instance chosen+1 only.
  if (meta !== undefined && chosen === msg.index - 1) {
    if (msg.type === "promise" && compareBallots(meta.promised, msg.ballot) >= 0) return;
    if (msg.type === "accepted" && meta.accepted !== null && compareBallots(meta.accepted.ballot, msg.ballot) === 0) return;
  }
  const onDisk = meta === undefined
    ? "nothing"
    : `chosen ${chosen}, promised ${ballotText(meta.promised)}, accepted ${meta.accepted === null ? "none" : ballotText(meta.accepted.ballot)}`;
  fail(
    "persist-before-send",
    `t=${now} ${sender} released ${msg.type} ${msg.group}#${msg.index} ballot ${ballotText(msg.ballot)} to ${to}, but its disk shows only: ${onDisk}`,
  );
}
