// The linearizability checker of `npm run verify`: black-box histories (history.ts) of a real
// cluster, checked per key-group (groups are independent: each is its own Paxos log, so a
// history is linearizable exactly when each group's part is).
//
// Per group:
//   1. observations.ts reads what the reads reveal (the version each write was applied at,
//      the branch a txn ran) and rejects what needs no search (a value nobody wrote, the
//      value of a failed write, one write seen at two versions...); stale gets are checked
//      there only, for what they promise;
//   2. search.ts looks for a linearization of the ok and unknown ops (failed ops never take
//      effect, failed reads say nothing) against model.ts, one group's key -> entry map;
//   3. explain.ts turns a failure into a message and the smallest window it can.
// No I/O: check.ts is the command line.

import { describeOp, keysOf } from "./describe.js";
import type { HistoryOp } from "./history.js";
import { explainDeepest } from "./explain.js";
import { observe } from "./observations.js";
import type { Deepest, SearchOp } from "./search.js";
import { search } from "./search.js";

export { readHistory, HistoryFormatError } from "./readHistory.js";
export { DuplicateValueError } from "./observations.js";

export interface CheckOptions {
  /** progress lines, e.g. every few thousand ops */
  onProgress?: (line: string) => void;
  /**
   * The most model steps the search may take in one group before that group's verdict is
   * "unknown" instead of a hang. Default 2,000,000 (a few seconds).
   */
  searchBudget?: number;
}

/**
 * ok: true       every group is linearizable;
 * ok: false      a violation in `group` (the first group found, in order of first appearance),
 *                with the smallest failing window found;
 * ok: "unknown"  no violation found, but the search in `group` (the first such) ran out of
 *                budget before it could decide: "search budget exceeded for group G"; the
 *                other groups were checked. `window`: the ops it was placing.
 */
export type CheckResult =
  | { ok: true; ops: number; groups: number }
  | {
      ok: false;
      ops: number;
      groups: number;
      group: string;
      message: string;
      /** the smallest failing window found: the ops a reader needs to see the violation, in invocation order */
      window: HistoryOp[];
    }
  | { ok: "unknown"; ops: number; groups: number; group: string; message: string; window: HistoryOp[] };

const searchBudgetDefault = 2_000_000;
/** A progress line at least every this many ops. */
const progressEveryOps = 10_000;

export function checkHistory(ops: readonly HistoryOp[], options: CheckOptions = {}): CheckResult {
  const budget = options.searchBudget ?? searchBudgetDefault;
  const progress = options.onProgress ?? (() => {});
  const groups = groupOps(ops);
  const counts = { ops: ops.length, groups: groups.size };
  progress(`checking ${ops.length} ops in ${groups.size} groups`);

  let undecided: CheckResult | null = null;
  let checked = 0;
  let groupsChecked = 0;
  let lastReport = 0;
  const started = Date.now();
  for (const [group, groupOps] of groups) {
    const verdict = checkGroup(group, groupOps, budget);
    checked += groupOps.length;
    groupsChecked++;
    if (verdict.kind === "violation") {
      progress(`group ${group}: NOT linearizable`);
      return { ok: false, ...counts, group, message: `group ${group}: ${verdict.message}`, window: verdict.window };
    }
    if (verdict.kind === "budget") {
      progress(`group ${group}: search budget exceeded (${budget} steps), left undecided`);
      undecided ??= { ok: "unknown", ...counts, group, message: `search budget exceeded for group ${group}: ${verdict.message}`, window: verdict.window };
    }
    if (checked - lastReport >= progressEveryOps || groupsChecked === groups.size) {
      lastReport = checked;
      progress(`checked ${checked}/${ops.length} ops, ${groupsChecked}/${groups.size} groups (${Date.now() - started} ms)`);
    }
  }
  return undecided ?? { ok: true, ...counts };
}

type GroupVerdict = { kind: "linearizable" } | { kind: "violation" | "budget"; message: string; window: HistoryOp[] };

function checkGroup(group: string, ops: readonly HistoryOp[], groupBudget: number): GroupVerdict {
  let budget = groupBudget;
  const observed = observe(ops);
  if (!observed.ok) return { kind: "violation", message: observed.message, window: observed.window };
  const { versionOf, branchOf } = observed.observations;
  const searchOps: SearchOp[] = [];
  for (const op of ops) {
    if (op.outcome === "fail") continue; // never takes effect; a read of it was rejected above
    if (op.call.f === "get" && (op.outcome !== "ok" || op.call.consistency === "stale")) continue;
    // completedAt null is unknown whatever the outcome says (history.ts).
    const mustTakeEffect = op.outcome === "ok" && op.completedAt !== null;
    searchOps.push({ op, mustTakeEffect, version: versionOf.get(op.id) ?? null, branch: branchOf.get(op.id) ?? null });
  }
  // The witness rounds may spend up to half of the budget; the full search gets the rest.
  const witness = searchWithFewLazyWrites(searchOps, Math.floor(budget / 2));
  if (witness === true) return { kind: "linearizable" };
  budget -= witness === false ? 0 : witness.spent;
  const result = search(searchOps, budget);
  switch (result.kind) {
    case "linearizable":
      return { kind: "linearizable" };
    case "violation": {
      // The search without lazy writes usually got stuck on the same op, and its state has no
      // writes of unknown outcome placed at odd points to explain away: it reads better.
      const plain = witness !== false && witness.deepest !== null && searchOps[result.deepest.blocked] === witness.ops[witness.deepest.blocked] ? witness : null;
      return { kind: "violation", ...(plain !== null ? explainDeepest(plain.ops, plain.deepest!, plain.ops.length) : explainDeepest(searchOps, result.deepest, searchOps.length)) };
    }
    case "budget": {
      const at = result.deepest;
      if (at === null) return { kind: "budget", message: `no progress in ${result.steps} steps`, window: [] };
      const window = [at.blocked, ...at.candidates].filter((i) => i >= 0).map((i) => searchOps[i]!.op);
      window.sort((a, b) => a.id - b.id);
      const first = window[0];
      return {
        kind: "budget",
        message: `${result.steps} steps; furthest: ${at.linearized.length} of ${searchOps.length} ops placed, then ${window.length} ops concurrent${first === undefined ? "" : ` from ${describeOp(first)}`}`,
        window,
      };
    }
  }
}

/** Lazy writes added in the first round for the op the search could not place (doubling after). */
const lazyPerRound = 2;
/** At most this many rounds before the full search. */
const lazyRoundsMax = 40;

/**
 * Writes with an unknown outcome that no read revealed ("lazy": no version, no position) may
 * sit anywhere after their invocation, and that freedom is what makes the search blow up.
 * Leaving one out means it never took effect, which Jepsen allows: so a linearization of the
 * history without some of them is a witness for the whole history. Start with none; each
 * time the search is stuck on an op, add the lazy writes on its keys invoked most recently
 * before its completion (the ones most likely to explain it: a timed-out cas whose version
 * a later cas expects), and search again. True when a witness was found; otherwise the
 * caller goes on to the full search, the only one that can conclude a violation, given the
 * first round's violation (without any lazy write) when there was one, for its message.
 */
function searchWithFewLazyWrites(searchOps: readonly SearchOp[], budget: number): true | false | { ops: SearchOp[]; deepest: Deepest | null; spent: number } {
  const isLazy = (o: SearchOp) => !o.mustTakeEffect && o.version === null;
  const lazy = searchOps.filter(isLazy);
  if (lazy.length === 0) return false; // the full search is the same search
  const chosen = new Set<SearchOp>();
  let first: { ops: SearchOp[]; deepest: Deepest | null } = { ops: [], deepest: null };
  let spent = 0;
  let perRound = lazyPerRound;
  for (let round = 0; round < lazyRoundsMax; round++) {
    const subset = searchOps.filter((o) => !isLazy(o) || chosen.has(o));
    if (spent >= budget) break;
    const result = search(subset, budget - spent);
    spent += result.steps;
    if (result.kind === "linearizable") return true;
    if (round === 0 && result.kind === "violation") first = { ops: subset, deepest: result.deepest };
    const stuck = result.deepest === null ? undefined : subset[result.deepest.blocked];
    if (stuck === undefined) break;
    const keys = keysOf(stuck.op.call);
    const until = stuck.op.completedAt ?? Infinity;
    const add = lazy
      .filter((o) => !chosen.has(o) && o.op.invokedAt <= until && keysOf(o.op.call).some((k) => keys.includes(k)))
      .sort((a, b) => b.op.invokedAt - a.op.invokedAt)
      .slice(0, perRound);
    if (add.length === 0) break;
    for (const o of add) chosen.add(o);
    perRound *= 2; // stuck again and again: converge on the full search in a few rounds
  }
  return { ...first, spent };
}

/** Ops by group, groups in order of first appearance, ops in id (invocation) order. */
function groupOps(ops: readonly HistoryOp[]): Map<string, HistoryOp[]> {
  const groups = new Map<string, HistoryOp[]>();
  for (const op of [...ops].sort((a, b) => a.id - b.id)) {
    let list = groups.get(op.group);
    if (list === undefined) groups.set(op.group, (list = []));
    list.push(op);
  }
  return groups;
}
