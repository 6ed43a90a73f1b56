// The acceptor side of one replica: the only code that promises and accepts.
//
// Safety rests on three facts kept here:
//  - a promise at ballot b means: never accept below b at this instance;
//  - an accept is taken only at or above the highest promise, and a ballot carries one value;
//  - both are in this step's Persist, and the caller releases the Promise/Accepted only after
//    that Persist is durable (persist-before-send), so a crash cannot make us forget them.
// An acceptor works only on its open instance chosen+1. A Prepare/Accept carries the chosen
// entry of index-1 (`prev`), so a replica one behind learns it first and then answers.

import { compareBallots } from "./ballot.js";
import type { Effects } from "./effects.js";
import { fastRoundAllowedFrom } from "./fastRound.js";
import { learn } from "./learner.js";
import { yieldToHigherBallot } from "./proposer.js";
import { mute } from "./recovery.js";
import type { Accept, ChosenEntry, Prepare, Reject } from "./messages.js";
import { chosenIndex, type GroupState } from "./state.js";

export type AcceptorVerdict = "answered" | "behind";

export function onPrepare(state: GroupState, fx: Effects, now: number, from: string, m: Prepare): AcceptorVerdict {
  learnPrev(state, fx, now, m.prev);
  const c = chosenIndex(state);
  if (m.index > c + 1) return "behind";
  if (mute(state)) return "answered"; // a replica that forgot its votes does not vote
  if (m.index <= c) {
    fx.sendTo(from, reject(state, m.index, m.ballot));
    return "answered";
  }
  noteRound(state, m.ballot.round);
  const order = compareBallots(m.ballot, state.promised);
  if (order > 0) {
    state.promised = m.ballot;
    fx.metaChanged = true;
    yieldToHigherBallot(state, now, m.ballot);
  }
  if (order >= 0) {
    // A repeated Prepare (order 0) gets the same Promise again: it reveals nothing new.
    fx.sendTo(from, { type: "promise", group: m.group, index: m.index, ballot: m.ballot, accepted: state.accepted });
  } else {
    fx.sendTo(from, reject(state, m.index, m.ballot));
  }
  return "answered";
}

export function onAccept(state: GroupState, fx: Effects, now: number, from: string, m: Accept): AcceptorVerdict {
  learnPrev(state, fx, now, m.prev);
  const c = chosenIndex(state);
  if (m.index > c + 1) return "behind";
  if (mute(state)) return "answered"; // a replica that forgot its votes does not vote
  if (m.index <= c || !acceptable(state, m)) {
    fx.sendTo(from, reject(state, m.index, m.ballot));
    return "answered";
  }
  noteRound(state, m.ballot.round);
  const same = state.accepted !== null && compareBallots(state.accepted.ballot, m.ballot) === 0;
  if (!same) {
    state.promised = m.ballot;
    state.accepted = { ballot: m.ballot, value: m.value };
    fx.metaChanged = true;
  }
  fx.sendTo(from, { type: "accepted", group: m.group, index: m.index, ballot: m.ballot });
  return "answered";
}

function acceptable(state: GroupState, m: Accept): boolean {
  if (compareBallots(m.ballot, state.promised) < 0) return false;
  // Round 0 skips Prepare, so only the owner of the instance may use it (fastRound.ts).
  if (!fastRoundAllowedFrom(state, m.ballot.node, m.ballot.round)) return false;
  // One ballot, one value: a different value under an accepted ballot is a broken proposer.
  const acc = state.accepted;
  if (acc !== null && compareBallots(acc.ballot, m.ballot) === 0 && acc.value.id !== m.value.id) return false;
  return true;
}

function reject(state: GroupState, index: number, ballot: Prepare["ballot"]): Reject {
  const open = index === chosenIndex(state) + 1;
  return {
    type: "reject",
    group: state.config.group,
    index,
    ballot,
    promised: open ? state.promised : null,
    chosen: chosenIndex(state),
  };
}

/** A higher round seen here is a hint for our own proposer's next ballot. */
function noteRound(state: GroupState, round: number): void {
  if (round > state.proposer.maxRoundSeen) state.proposer.maxRoundSeen = round;
}

function learnPrev(state: GroupState, fx: Effects, now: number, prev: ChosenEntry | null): void {
  if (prev !== null && prev.index === chosenIndex(state) + 1) learn(state, fx, now, prev);
}
