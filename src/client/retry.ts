// The client's retry policy, as pure functions: which error codes are worth another attempt,
// how long one attempt may take, and how long to wait before the next. client.ts does the I/O.
//
// Why these numbers:
// - An attempt gets at most half the call's deadline while other replicas remain, so a call
//   whose first replica died mid-request (kill -9: the request was delivered, no answer will
//   ever come) still has time to be retried on another.
// - The node is told a slightly shorter deadline than the attempt's (PaxosStore-Timeout-Ms),
//   so that it answers `timeout` itself, before the NATS request gives up: an answer says more
//   than silence.
// - The first pass over a group's replicas goes without waiting (a dead node answers "no
//   responders" at once, and the next replica is healthy); after that, exponential backoff
//   with jitter, so that clients retrying together do not stay in step.
// - An attempt not answered within a few typical latencies is hedged: the same request (same
//   request id) goes to the next replica too, and the first decided answer wins. A paused node
//   (SIGSTOP) keeps its NATS subscriptions, so "no responders" never comes: only time tells,
//   and waiting a whole attempt budget for it would stall every call on its groups.

import type { WireErrorCode } from "../protocol/errors.js";

/** Codes that mean "not here, not now": another attempt (same request id) may succeed. */
export const RETRYABLE_CODES: ReadonlySet<WireErrorCode> = new Set<WireErrorCode>(["unavailable", "timeout", "not_replica"]);

export function isRetryable(code: WireErrorCode): boolean {
  return RETRYABLE_CODES.has(code);
}

/** An attempt never gets less than this (unless the deadline leaves less). */
export const ATTEMPT_MS_MIN = 250;
export const BACKOFF_MS_BASE = 20;
export const BACKOFF_MS_MAX = 500;
/** How long a node that did not answer is tried last. */
export const SUSPECT_MS = 2_000;
/** After a suspicion, one call at a time tries the node again; a trial without a verdict in this long makes room for another. */
export const TRIAL_MS = 1_000;

/** How long attempt may wait for an answer, given the time left and the call's whole deadline. */
export function attemptBudgetMs(remainingMs: number, callTimeoutMs: number, othersLeft: boolean): number {
  const remaining = Math.max(1, Math.floor(remainingMs));
  if (!othersLeft) return remaining;
  return Math.min(remaining, Math.max(ATTEMPT_MS_MIN, Math.ceil(callTimeoutMs / 2)));
}

/**
 * Whether to retry after waiting `waitMs`, with `leftMs` of the call's deadline left: only if the
 * retry still gets ATTEMPT_MS_MIN. A shorter attempt mostly ends unanswered on a loaded machine,
 * and an unanswered write attempt would turn the definite refusals so far (`unavailable`: not
 * applied) into an unknown outcome (`timeout`). The first attempt always goes.
 */
export function retryWorthStarting(waitMs: number, leftMs: number): boolean {
  return waitMs + ATTEMPT_MS_MIN <= leftMs;
}

/** The deadline the node is given for an attempt of `budgetMs`: a little less, so it answers first. */
export function nodeDeadlineMs(budgetMs: number): number {
  const margin = Math.min(250, Math.floor(budgetMs / 5));
  return Math.max(1, budgetMs - margin);
}

/**
 * How long to wait before attempt number `attempt` (1 is the first retry), given how many
 * distinct targets there are. `random` is in [0, 1).
 */
export function backoffMs(attempt: number, targets: number, random: number): number {
  if (attempt < Math.max(1, targets)) return 0;
  const round = attempt - Math.max(1, targets);
  const cap = Math.min(BACKOFF_MS_MAX, BACKOFF_MS_BASE * 2 ** Math.min(round, 10));
  return Math.floor(cap * (0.5 + random / 2));
}

export const HEDGE_MS_MIN = 75;
export const HEDGE_MS_MAX = 250;

/** How long an attempt waits before a hedged copy goes to another replica: 4x the usual latency, bounded. */
export function hedgeDelayMs(latencyEwmaMs: number): number {
  return Math.round(Math.min(HEDGE_MS_MAX, Math.max(HEDGE_MS_MIN, 4 * latencyEwmaMs)));
}
