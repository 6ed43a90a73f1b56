// Linearizability per key-group. Paxos gives each group one total order (the chosen log), so
// the check is direct rather than a search: replay the global chosen log through the
// reference model (model.ts), then
//   (a) every write answered ok got the model's result for its request id (its first
//       application: a retried request id must get the same answer, never a second apply,
//       unless the group forgot the id, see model.ts);
//       a write ANY attempt of which was answered "unavailable" is in no chosen value: the
//       API promises that of the request id, not of one attempt (docs/API.md), and a client
//       that believes it retries with a new id (clients here never reuse such an id);
//   (b) every read answered ok equals the model's data at the index it reports (stale reads
//       too: they may be old, never wrong);
//   (c) real time: if A completed before B was invoked then pos(A) <= pos(B), where a
//       write's pos is its index and a linearizable read's is its index + 0.5 (a read at k
//       comes after the writes at k); two writes need index(A) < index(B). Ops with an
//       unknown outcome (timeout, lost) never constrain what follows them, but a write that
//       was applied anyway must still come after everything completed before it was invoked.

import type { History, ReadRecord } from "../history.js";
import { firstOk } from "../history.js";
import type { ChosenLog } from "./agreement.js";
import { fail } from "./failure.js";
import { deepEqual, entryText, show } from "./format.js";
import type { GroupModel } from "./model.js";
import { replayGroup, scanModel } from "./model.js";

/** `requestMemory`: request ids a group remembers for dedupe (GroupConfig.limits). */
export function checkLinearizability(history: History, log: ChosenLog, requestMemory = Infinity): void {
  const groups = new Set<string>([...log.groupNames()]);
  for (const w of history.writes.values()) groups.add(w.group);
  for (const r of history.reads) groups.add(r.group);
  for (const group of [...groups].sort()) checkGroup(group, history, log, requestMemory);
}

function checkGroup(group: string, history: History, log: ChosenLog, requestMemory: number): void {
  const model = replayGroup((i) => log.entry(group, i), requestMemory);
  const last = log.lastIndex(group);
  if (model.lastIndex !== last) {
    fail("linearizability", `group ${group}: chosen log has a gap at index ${model.lastIndex + 1} (last known ${last})`);
  }

  /** Ordering events for (c): [invokedAt, completedAt | null, pos, isWrite, label]. */
  const ops: { invokedAt: number; completedAt: number | null; pos: number; write: boolean; label: string }[] = [];

  for (const w of history.writes.values()) {
    if (w.group !== group) continue;
    const applications = model.applied.get(w.requestId);
    const application = applications?.[0];
    const label = `write ${w.requestId} ${show(w.op)}`;
    let unavailable: (typeof w.attempts)[number] | null = null;
    for (const a of w.attempts) {
      if (a.outcome?.kind === "error" && a.outcome.code === "unavailable") unavailable ??= a;
      if (a.outcome?.kind !== "ok") continue;
      const answered = a.outcome.result;
      if (applications === undefined) {
        fail("linearizability", `${label} answered ${show(answered)} by ${a.node} at t=${a.completedAt}, but it was never applied`);
      }
      if (!applications.some((app) => deepEqual(answered, app.result))) {
        const applied = applications.map((app) => `at index ${app.index} with result ${show(app.result)}`).join("; again ");
        fail("linearizability", `${label} answered ${show(answered)} by ${a.node} at t=${a.completedAt}; the log applied it ${applied}`);
      }
    }
    if (unavailable !== null && application !== undefined) {
      fail(
        "linearizability",
        `${label} was answered "unavailable" (never applied) by ${unavailable.node} at t=${unavailable.completedAt} (attempt ${w.attempts.indexOf(unavailable) + 1} of ${w.attempts.length}), but is applied at index ${application.index}`,
      );
    }
    if (application !== undefined) {
      const ok = firstOk(w);
      ops.push({
        invokedAt: w.attempts[0]!.invokedAt,
        completedAt: ok === null ? null : ok.completedAt,
        pos: application.index,
        write: true,
        label: `${label} (index ${application.index})`,
      });
    }
  }

  for (const r of history.reads) {
    if (r.group !== group || r.outcome?.kind !== "ok") continue;
    checkRead(group, r, model);
    if (r.consistency === "linearizable") {
      ops.push({
        invokedAt: r.invokedAt,
        completedAt: r.completedAt,
        pos: r.outcome.result.index + 0.5,
        write: false,
        label: `${r.consistency} read ${show(r.query)} at ${r.node} (index ${r.outcome.result.index})`,
      });
    }
  }

  checkRealTime(group, ops);
}

function checkRead(group: string, r: ReadRecord, model: GroupModel): void {
  if (r.outcome?.kind !== "ok") return;
  const result = r.outcome.result;
  const label = `${r.consistency} read ${show(r.query)} by ${r.node} (t=${r.invokedAt}..${r.completedAt})`;
  if (result.index > model.lastIndex) {
    fail("linearizability", `${label} reports index ${result.index}, past the last chosen index ${model.lastIndex} of ${group}`);
  }
  const data = model.dataAt(result.index);
  if (r.query.kind === "get") {
    if (result.kind !== "get") fail("linearizability", `${label} answered a ${result.kind}`);
    const expected = data.get(r.query.key) ?? null;
    if (!deepEqual(result.entry, expected)) {
      fail("linearizability", `${label} returned ${entryText(result.entry)} at index ${result.index}; the log has ${entryText(expected)} there`);
    }
    return;
  }
  if (result.kind !== "scan") fail("linearizability", `${label} answered a ${result.kind}`);
  const expected = scanModel(data, r.query.prefix, r.query.after, r.query.limit);
  if (!deepEqual(result.items, expected)) {
    fail("linearizability", `${label} returned ${show(result.items)} at index ${result.index}; the log has ${show(expected)} there`);
  }
  // `next` may be set when more keys may follow; when it is absent, none may follow.
  const beyond = scanModel(data, r.query.prefix, r.query.after, r.query.limit + 1);
  if (result.next === undefined && beyond.length > expected.length) {
    fail("linearizability", `${label} returned no \`next\` at index ${result.index}, but ${beyond[beyond.length - 1]!.key} follows there`);
  }
  if (result.next !== undefined && result.next !== expected[expected.length - 1]?.key) {
    fail("linearizability", `${label} returned next ${JSON.stringify(result.next)}, not its last key ${JSON.stringify(expected[expected.length - 1]?.key)}`);
  }
}

/**
 * Sweep in time order: before each op's invocation, fold in every op that completed strictly
 * earlier; the op must then be at or after all of them.
 */
function checkRealTime(
  group: string,
  ops: { invokedAt: number; completedAt: number | null; pos: number; write: boolean; label: string }[],
): void {
  const completions = ops.filter((o) => o.completedAt !== null).sort((a, b) => a.completedAt! - b.completedAt!);
  const invocations = ops.slice().sort((a, b) => a.invokedAt - b.invokedAt);
  let c = 0;
  let highest: (typeof ops)[number] | null = null;
  for (const b of invocations) {
    while (c < completions.length && completions[c]!.completedAt! < b.invokedAt) {
      const a = completions[c]!;
      if (highest === null || a.pos > highest.pos) highest = a;
      c++;
    }
    if (highest === null) continue;
    // A read at k (pos k+.5) before a write needs the write at > k; a write at k before a
    // write needs > k; anything before a read needs <= its pos.
    const violated = b.write ? highest.pos >= b.pos : highest.pos > b.pos;
    if (violated) {
      fail(
        "linearizability",
        `group ${group}: ${highest.label} completed at t=${highest.completedAt}, before ${b.label} was invoked at t=${b.invokedAt}, yet it is ordered after it`,
      );
    }
  }
}
