// Learning chosen values. A replica learns instance `chosen + 1` only (one at a time, in
// order), or jumps ahead by installing a peer's data (catchUp.ts). Learning applies the value,
// answers this replica's waiting clients, and opens the next instance with a clean promise.

import { ballotEquals } from "./ballot.js";
import { applyOp } from "./apply.js";
import type { Effects } from "./effects.js";
import type { Chosen, ChosenEntry, RequestRecord } from "./messages.js";
import type { WriteResult } from "./ops.js";
import { chosenIndex, type GroupState } from "./state.js";
import { onInstanceDecided } from "./proposer.js";
import { adoptChosenConfig, joinerVotesEarly, settleMembership } from "./membership.js";

/** Applies `entry` if it is the next instance; ignores it otherwise. */
export function learn(state: GroupState, fx: Effects, now: number, entry: ChosenEntry): void {
  if (entry.index !== chosenIndex(state) + 1) return;
  // A joining replica knows no history to apply an entry to: it starts from a copy of the data.
  if (state.joining !== null && !joinerVotesEarly(state)) return;
  const results = new Map<string, WriteResult>();
  for (const { requestId, op } of entry.value.commands) {
    // Dedupe: a request id already applied is answered with its first result, not applied again.
    const known = state.requests.get(requestId);
    if (known !== undefined) {
      results.set(requestId, known.result);
      continue;
    }
    const result = applyOp(state.data, op, entry.index, fx.keyChanged);
    results.set(requestId, result);
    remember(state, fx, { requestId, seq: ++state.requestSeq, index: entry.index, result });
  }
  // The open instance moves on: promises and accepts at the decided one no longer matter.
  state.chosen = entry;
  state.promised = null;
  state.accepted = null;
  const reconfigured = adoptChosenConfig(state, entry);
  fx.metaChanged = true;
  // Caught up with what we knew to exist: no more catch-up requests.
  if (state.catchUp.snapshot === null && entry.index >= state.catchUp.wanted) state.catchUp.asked = null;
  answerApplied(state, fx, results);
  onInstanceDecided(state, now, entry);
  settleMembership(state, fx, reconfigured);
}

function remember(state: GroupState, fx: Effects, record: RequestRecord): void {
  state.requests.set(record.requestId, record);
  fx.rememberRequest(record);
  // Bounded memory: forget the oldest (Map iteration order is insertion order). This is the
  // at-most-once window (docs/API.md): a retry after `requestMemory` later writes is new.
  while (state.requests.size > state.config.limits.requestMemory) {
    const oldest = state.requests.keys().next().value as string;
    state.requests.delete(oldest);
    fx.forgetRequest(oldest);
  }
}

/** Answers and drops every waiting write whose request id has a result now. */
export function answerApplied(state: GroupState, fx: Effects, results: ReadonlyMap<string, WriteResult>): void {
  if (state.queue.length === 0) return;
  let kept = 0;
  for (const pending of state.queue) {
    const result = results.get(pending.command.requestId);
    if (result !== undefined) fx.answerWrite(pending.call, result);
    else state.queue[kept++] = pending;
  }
  state.queue.length = kept;
}

/** A peer says instance `index` is decided; learn it if we can, else ask to catch up. */
/** Returns false when this replica lacks what it needs (it is behind, or lacks the value): the caller asks the sender to catch it up. */
export function onChosen(state: GroupState, fx: Effects, now: number, m: Chosen): boolean {
  const c = chosenIndex(state);
  if (state.joining !== null && !joinerVotesEarly(state)) return false; // a joiner asks for the data
  if (m.index <= c) return true;
  if (m.index > c + 1) return false;
  let value = m.value;
  if (value === null) {
    // The value was not sent because we accepted it: it is ours only under that exact ballot.
    const acc = state.accepted;
    if (acc !== null && ballotEquals(acc.ballot, m.ballot) && acc.value.id === m.valueId) value = acc.value;
  }
  if (value === null || value.id !== m.valueId) return false;
  learn(state, fx, now, { index: m.index, ballot: m.ballot, value });
  return true;
}
