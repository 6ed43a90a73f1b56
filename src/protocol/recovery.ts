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
// The flag is durable (DurableMeta.recovering): a crash mid-recovery resumes it, and the target
// is recomputed, which only raises it.

import type { NodeId } from "./ballot.js";
import { requestCatchUp } from "./catchUp.js";
import type { Effects } from "./effects.js";
import type { ReadProbeReply } from "./messages.js";
import { isMember } from "./membership.js";
import { quorumSize } from "./quorum.js";
import { chosenIndex, type GroupState } from "./state.js";

export function beginRecovery(state: GroupState): void {
  state.recovering = { replies: new Map(), probeSentAt: Number.NEGATIVE_INFINITY, target: null };
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
}

export function onRecoveryProbeReply(state: GroupState, fx: Effects, now: number, from: NodeId, m: ReadProbeReply): void {
  const r = state.recovering;
  if (r === null || r.target !== null || from === state.config.self || !state.members.replicas.includes(from)) return;
  r.replies.set(from, { chosen: m.chosen, accepted: m.accepted });
  // A majority of ALL replicas, from the others alone: our own standing is what we forgot.
  if (r.replies.size < quorumSize(state.members.replicas)) return;
  let bound = 0;
  for (const reply of r.replies.values()) bound = Math.max(bound, reply.accepted ? reply.chosen + 1 : reply.chosen);
  r.target = bound + 1;
  progressRecovery(state, fx, now);
}

function furthestAhead(replies: ReadonlyMap<NodeId, { chosen: number }>, chosen: number): { node: NodeId; chosen: number } | null {
  let ahead: { node: NodeId; chosen: number } | null = null;
  for (const [node, r] of replies) if (r.chosen > chosen) ((chosen = r.chosen), (ahead = { node, chosen }));
  return ahead;
}

/** Earliest tick recovery needs. */
export function recoveryWakeAt(state: GroupState): number | null {
  const r = state.recovering;
  if (r === null) return null;
  return r.target === null ? r.probeSentAt + state.config.timing.probeRetryMs : null;
}

/**
 * Must this replica stay out of votes and probe answers? Yes while recovering, and while it is
 * not a member of its open instance's configuration (joining or removed: membership.ts).
 */
export function mute(state: GroupState): boolean {
  if (state.recovering !== null && !(state.config.breaks?.has("vote-while-recovering") ?? false)) return true;
  return !isMember(state);
}
