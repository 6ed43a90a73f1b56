// Turning the search's furthest point into what a person needs to see the violation, as
// Porcupine does: the longest linearizable prefix, the op that could not be placed after it
// and why, and the ops that could have gone before it and why they did not help. The window
// keeps only the ops that bear on the blocked op: its keys' last writers in that prefix, the
// op that set the log position it was measured against, the last few ops on its keys, and the
// concurrent candidates on its keys.

import { describeOp, keysOf } from "./describe.js";
import type { HistoryOp } from "./history.js";
import { describeEntry, describeFloor, step } from "./model.js";
import type { Deepest, SearchOp } from "./search.js";
import { positionOf } from "./search.js";

/** How many of the prefix's last ops on the blocked op's keys a window shows. */
const prefixTailMax = 4;
/** How many concurrent candidates a message explains. */
const candidatesMax = 8;

export interface Explanation {
  readonly message: string;
  readonly window: HistoryOp[];
}

export function explainDeepest(ops: readonly SearchOp[], deepest: Deepest, total: number): Explanation {
  const blocked = ops[deepest.blocked]!;
  const keys = new Set(keysOf(blocked.op.call));
  const touches = (i: number) => keysOf(ops[i]!.op.call).some((k) => keys.has(k));
  const state = deepest.state;

  const window = new Map<number, HistoryOp>();
  const add = (op: HistoryOp | undefined) => {
    if (op !== undefined) window.set(op.id, op);
  };
  const byId = new Map(ops.map((o) => [o.op.id, o.op]));
  add(blocked.op);
  for (const k of keys) add(byId.get(state.keys.get(k)?.writer ?? -1));
  if (state.floorBy !== null) add(byId.get(state.floorBy));
  const tail = deepest.linearized.filter(touches).slice(-prefixTailMax);
  for (const i of tail) add(ops[i]!.op);
  // Unknown-outcome writes pending since long ago are concurrent with everything: show them
  // only when they could go here at all.
  const candidates = deepest.candidates.filter((i) => touches(i) && (ops[i]!.mustTakeEffect || step(state, ops[i]!, false).ok)).slice(0, candidatesMax);
  for (const i of candidates) add(ops[i]!.op);

  const placing = step(state, blocked, true);
  let reason = placing.ok ? "every order that places it there leads to states already explored and refused" : placing.reason;
  if (placing.ok) {
    // The search refuses a state that leaves an ok op below the floor (search.ts): say which.
    const placed = new Set(deepest.linearized);
    const after = placing.states[0]!;
    const behind = ops.findIndex((o, i) => o.mustTakeEffect && i !== deepest.blocked && !placed.has(i) && (positionOf(o) ?? Infinity) < after.floor);
    if (behind >= 0) {
      const left = ops[behind]!;
      const why = step(after, left, true);
      add(left.op);
      reason = `placing it leaves behind ${describeOp(left.op)}, which then can never be linearized${why.ok ? "" : `: ${why.reason}`}`;
    }
  }
  const lines = [
    `${describeOp(blocked.op)} cannot be linearized: ${reason}.`,
    `Longest linearizable prefix: ${deepest.linearized.length} of ${total} ops${tail.length > 0 ? `, ending on its keys with ${tail.map((i) => `#${ops[i]!.op.id}`).join(", ")}` : ""}; there ${[...keys].map((k) => describeEntry(k, state.keys.get(k))).join("; ")}; the log is at ${describeFloor(state)}.`,
  ];
  for (const i of candidates) {
    const tried = step(state, ops[i]!, true);
    lines.push(`  concurrent ${describeOp(ops[i]!.op)}: ${tried.ok ? "could go first, but that leads nowhere either" : tried.reason}`);
  }
  return { message: lines.join("\n"), window: [...window.values()].sort((a, b) => a.id - b.id) };
}
