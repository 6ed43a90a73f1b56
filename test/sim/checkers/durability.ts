// Durability: a write answered ok is in the chosen log, at the index its result reports, and is
// never lost: at seed end (network healed, every node restarted from its disk, a final
// linearizable read of every key at every replica) every replica's chosen index has reached it.

import type { History } from "../history.js";
import { resultIndex } from "../history.js";
import type { ChosenLog } from "./agreement.js";
import { fail } from "./failure.js";
import { show } from "./format.js";

export interface ReplicaPosition {
  readonly node: string;
  readonly group: string;
  readonly chosen: number;
}

/** Each answered write against the chosen log (callable any time). */
export function checkAnsweredWritesChosen(history: History, log: ChosenLog): void {
  for (const w of history.writes.values()) {
    for (const a of w.attempts) {
      if (a.outcome?.kind !== "ok") continue;
      const index = resultIndex(a.outcome.result);
      const where = `write ${w.requestId} (${show(w.op)}) answered ${show(a.outcome.result)} by ${a.node} at t=${a.completedAt}`;
      if (index === null) {
        // A failed cas reports no index: it must still be somewhere in the log.
        if (!logContains(log, w.group, w.requestId)) fail("durability", `${where}, but it is in no chosen entry of ${w.group}`);
        continue;
      }
      const entry = log.entry(w.group, index);
      if (entry === undefined) fail("durability", `${where}, but no replica ever chose index ${index} of ${w.group}`);
      if (!entry.value.commands.some((c) => c.requestId === w.requestId)) {
        fail("durability", `${where}, but the value chosen at ${w.group}#${index} (${entry.value.id}) does not carry it`);
      }
    }
  }
}

/** At seed end: no replica is behind an acknowledged write. */
export function checkNoAcknowledgedWriteLost(history: History, log: ChosenLog, positions: readonly ReplicaPosition[]): void {
  checkAnsweredWritesChosen(history, log);
  const highest = new Map<string, { index: number; requestId: string }>();
  for (const w of history.writes.values()) {
    for (const a of w.attempts) {
      if (a.outcome?.kind !== "ok") continue;
      const index = resultIndex(a.outcome.result) ?? 0;
      const h = highest.get(w.group);
      if (h === undefined || index > h.index) highest.set(w.group, { index, requestId: w.requestId });
    }
  }
  for (const p of positions) {
    const h = highest.get(p.group);
    if (h !== undefined && p.chosen < h.index) {
      fail(
        "durability",
        `at seed end ${p.node} holds ${p.group} at chosen ${p.chosen}, below acknowledged write ${h.requestId} at index ${h.index}`,
      );
    }
  }
}

function logContains(log: ChosenLog, group: string, requestId: string): boolean {
  const last = log.lastIndex(group);
  for (let i = 1; i <= last; i++) {
    if (log.entry(group, i)?.value.commands.some((c) => c.requestId === requestId)) return true;
  }
  return false;
}
