// A replica that is behind when a Prepare or Accept reaches it cannot vote at that instance: it
// asks to catch up. Once caught up to the instance it answers the message (core.ts
// answerBehind), as if the network had delayed it. Before, it never answered, and the
// proposer, with the third replica down or cut off, waited out its phase timeout (issue 10:
// one hot group stalled 500 ms at the live nodes after a partition).

import { describe, expect, it } from "vitest";
import { restoreReplica, step } from "../../src/protocol/core.js";
import { DEFAULT_LIMITS, DEFAULT_TIMING, type GroupConfig } from "../../src/protocol/config.js";
import { emptyDurableGroup } from "../../src/protocol/durable.js";
import type { Accept, CatchUpSnapshot, ChosenEntry, Prepare } from "../../src/protocol/messages.js";

const config: GroupConfig = { group: "g", self: "n2", replicas: ["n1", "n2", "n3"], incarnation: "i1", seed: 1, timing: DEFAULT_TIMING, limits: DEFAULT_LIMITS };
const chosen = (index: number): ChosenEntry => ({ index, ballot: { round: 0, node: "n1" }, value: { id: `v${index}`, commands: [] } });
const snapshot = (at: number): CatchUpSnapshot => ({ type: "catchupSnapshot", group: "g", at: chosen(at), after: null, items: [], requests: [], next: null });

describe("a replica behind a Prepare or Accept", () => {
  it("asks to catch up, and answers the Prepare once it holds the instance before it", () => {
    const state = restoreReplica(config, emptyDurableGroup());
    const prepare: Prepare = { type: "prepare", group: "g", index: 3, ballot: { round: 1, node: "n3" }, prev: null };
    const first = step(state, 0, { type: "message", from: "n3", msg: prepare });
    expect(first.send.map((o) => o.msg.type)).toEqual(["catchupRequest"]);
    // The copy comes from n1: chosen 2, so instance 3 is open here and the Prepare is answered.
    const second = step(state, 5, { type: "message", from: "n1", msg: snapshot(2) });
    expect(second.send).toContainEqual({ to: "n3", msg: expect.objectContaining({ type: "promise", index: 3, ballot: prepare.ballot }) });
    expect(second.persist?.meta.promised).toEqual(prepare.ballot);
  });

  it("answers an Accept the same way, and drops one whose instance was decided meanwhile", () => {
    const state = restoreReplica(config, emptyDurableGroup());
    const accept: Accept = { type: "accept", group: "g", index: 2, ballot: { round: 1, node: "n3" }, value: { id: "w", commands: [] }, prev: null } as Accept;
    step(state, 0, { type: "message", from: "n3", msg: accept });
    const caughtUp = step(state, 5, { type: "message", from: "n1", msg: snapshot(1) });
    expect(caughtUp.send).toContainEqual({ to: "n3", msg: expect.objectContaining({ type: "accepted", index: 2 }) });

    const late = restoreReplica(config, emptyDurableGroup());
    step(late, 0, { type: "message", from: "n3", msg: accept });
    const past = step(late, 5, { type: "message", from: "n1", msg: snapshot(2) });
    expect(past.send.filter((o) => o.msg.type === "accepted" || o.msg.type === "reject")).toEqual([]);
    expect(late.catchUp.behind).toBeNull();
  });
});
