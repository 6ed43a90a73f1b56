// Recovering a key-group this replica lost (a stored record failed its checksum, so the group
// is wiped locally and never served from the bad copy).
//
// The danger is not the lost data (peers have it) but the lost promises and accepts: an
// acceptor that forgets them can let two different values be chosen at one instance. So a
// recovering replica is a LEARNER only: it answers no Prepare, Accept or ReadProbe, proposes
// nothing, and counts only other replicas in its own reads. It votes again once it has learned
// a chosen index above every instance it could have voted in before the loss:
//   - it asks a majority of the OTHER replicas where they stand (a ReadProbe numbered
//     `probeBase`, unique to this incarnation, so no stale reply can answer it);
//   - any instance it voted in was at most its old chosen+1, and its old chosen was learned
//     from, and accepted by, a majority, which meets that majority of others; so
//     M = max over them of (chosen, +1 if they hold an accepted value) bounds its old chosen;
//   - target = M + 1; every instance up to it is decided once its chosen index reaches it.
// Instance M + 1 is open at the others when they answer: it is decided by the next write, so a
// group nobody writes stays recovering here (safe; docs/OPERATIONS.md). But the writes chosen
// while the majority was still missing (a peer down or itself recovering: an unfenced replica
// answers only once restarted) are not "the next write": they raise M instead, and the group's
// last write may well come before the last answer (test/core/recovery.test.ts). So when the
// answers show that instances were chosen since the first one (M above that answer's bound),
// the replica asks the replicas that answered, one at a time, to settle their open instance
// (a ReadProbe with `settle`: a no-op if nothing else is proposed there) until it reaches the
// target, and catches up from those whose answers show them ahead. (A no-op is always safe:
// this changes when recovery ends, never what it waits for.) A group restored with
// `settleRecovery` asks so in any case: one that nobody may write to (the node's membership
// log, written only by a membership change) would otherwise stay recovering until the next
// change, and a second replica lost meanwhile would leave it without a majority that votes.
// The flag is durable (DurableMeta.recovering): a crash mid-recovery resumes it, and the target
// is recomputed, which only raises it.

import type { NodeId } from "./ballot.js";
import { requestCatchUp } from "./catchUp.js";
import type { Effects } from "./effects.js";
import type { ReadProbeReply } from "./messages.js";
import { isMember } from "./membership.js";
import { quorumSize } from "./quorum.js";
import { chosenIndex, type GroupState } from "./state.js";

export function beginRecovery(state: GroupState, settleAlways = false): void {
  state.recovering = { replies: new Map(), probeSentAt: Number.NEGATIVE_INFINITY, target: null, firstBound: null, settle: false, settleAlways, nudges: 0 };
}

/** Sends (or re-sends) the recovery probe, asks to catch up, and ends recovery when it may. */
export function progressRecovery(state: GroupState, fx: Effects, now: number): void {
  const r = state.recovering;
  if (r === null) return;
  if (r.target === null) {
    if (now - r.probeSentAt >= state.config.timing.probeRetryMs) {
      r.probeSentAt = now;
      for (const to of state.members.replicas)
        if (to !== state.config.self && !r.replies.has(to)) fx.sendTo(to, { type: "readProbe", group: state.config.group, probe: state.probeBase });
    }
    return;
  }
  if (chosenIndex(state) >= r.target) {
    state.recovering = null;
    fx.metaChanged = true; // the flag leaves the disk with this step's meta
    return;
  }
  const ahead = furthestAhead(r.replies, chosenIndex(state));
  if (ahead !== null) requestCatchUp(state, fx, now, ahead.node, ahead.chosen);
  // No write may come to decide the instances up to the target: ask for them (see the top).
  if (r.settle && now - r.probeSentAt >= state.config.timing.probeRetryMs) {
    r.probeSentAt = now;
    const answered = [...r.replies.keys()];
    const to = answered[r.nudges++ % answered.length]!;
    fx.sendTo(to, { type: "readProbe", group: state.config.group, probe: state.probeBase, settle: r.target });
  }
}

export function onRecoveryProbeReply(state: GroupState, fx: Effects, now: number, from: NodeId, m: ReadProbeReply): void {
  const r = state.recovering;
  if (r === null || from === state.config.self || !state.members.replicas.includes(from)) return;
  if (r.target !== null) {
    // The answer to a request to settle: the target stays; its sender may be ahead of us now.
    const known = r.replies.get(from);
    if (known !== undefined && m.chosen > known.chosen) r.replies.set(from, { chosen: m.chosen, accepted: m.accepted });
    return;
  }
  r.replies.set(from, { chosen: m.chosen, accepted: m.accepted });
  r.firstBound ??= m.accepted ? m.chosen + 1 : m.chosen;
  // A majority of ALL replicas, from the others alone: our own standing is what we forgot.
  if (r.replies.size < quorumSize(state.members.replicas)) return;
  let bound = 0;
  for (const reply of r.replies.values()) bound = Math.max(bound, reply.accepted ? reply.chosen + 1 : reply.chosen);
  r.target = bound + 1;
  r.settle = r.settleAlways || bound > r.firstBound!;
  r.probeSentAt = now; // a write in flight gets one probe interval to decide the target first
  progressRecovery(state, fx, now);
}

function furthestAhead(replies: ReadonlyMap<NodeId, { chosen: number }>, chosen: number): { node: NodeId; chosen: number } | null {
  let ahead: { node: NodeId; chosen: number } | null = null;
  for (const [node, r] of replies) if (r.chosen > chosen) ((chosen = r.chosen), (ahead = { node, chosen }));
  return ahead;
}

/** Earliest tick recovery needs: the next probe, or the next request to settle. */
export function recoveryWakeAt(state: GroupState): number | null {
  const r = state.recovering;
  if (r === null || (r.target !== null && !r.settle)) return null;
  return r.probeSentAt + state.config.timing.probeRetryMs;
}

/**
 * Must this replica stay out of votes and probe answers? Yes while recovering, and while it is
 * not a member of its open instance's configuration (joining or removed: membership.ts).
 */
export function mute(state: GroupState): boolean {
  if (state.recovering !== null && !(state.config.breaks?.has("vote-while-recovering") ?? false)) return true;
  return !isMember(state);
}
