// What the core answers a write it gives up on. `unavailable` is a promise about the request
// id (docs/API.md: never applied, retry with any id), so the core may answer it only for a
// write whose id is fresh (made by the node for this call: no other attempt can exist) and
// that never went out in any Accept; everything else is `timeout` (outcome unknown). Issue 8,
// defect 1: a recovering replica and an expired, unsent write answered `unavailable` for a
// client's own id, which an earlier attempt elsewhere may have had applied.

import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, DEFAULT_TIMING, type GroupConfig } from "../../src/protocol/config.js";
import { restoreReplica, step } from "../../src/protocol/core.js";
import { emptyDurableGroup } from "../../src/protocol/durable.js";
import type { Answer, Input } from "../../src/protocol/io.js";
import type { Value } from "../../src/protocol/ops.js";
import type { GroupState } from "../../src/protocol/state.js";

const REPLICAS = ["n1", "n2", "n3"];
let seed = 0;
const config = (self: string): GroupConfig => ({ group: "g", self, replicas: REPLICAS, incarnation: `i${++seed}`, seed, timing: DEFAULT_TIMING, limits: DEFAULT_LIMITS });
const put = (requestId: string) => ({ requestId, op: { op: "put" as const, key: "k", value: new TextEncoder().encode(requestId) } });

function propose(state: GroupState, call: number, requestId: string, fresh: boolean, now = 0): readonly Answer[] {
  const input: Input = { type: "propose", call, command: put(requestId), deadline: now + 1000, fresh };
  return step(state, now, input).answers;
}

const codeOf = (answers: readonly Answer[], call: number): string | undefined => {
  const a = answers.find((x) => x.call === call);
  return a?.outcome.kind === "error" ? a.outcome.code : a?.outcome.kind;
};

describe("a write the core gives up on", () => {
  it("a recovering replica refuses writes: unavailable for a fresh id, timeout for a client's own id", () => {
    const recovering = restoreReplica(config("n1"), emptyDurableGroup(), { lost: true });
    expect(codeOf(propose(recovering, 1, "node-made", true), 1)).toBe("unavailable");
    expect(codeOf(propose(recovering, 2, "client-chosen", false), 2)).toBe("timeout");
  });

  it("an unsent write at its deadline: unavailable only when its id is fresh", () => {
    // n2 does not own the fast round of instance 1 (n1 does): it prepares, and with no
    // promises back its writes never go out.
    const n2 = restoreReplica(config("n2"), emptyDurableGroup());
    propose(n2, 1, "node-made", true);
    propose(n2, 2, "client-chosen", false);
    expect(n2.queue.every((w) => !w.sent)).toBe(true);
    const answers = step(n2, 1000, { type: "tick" }).answers;
    expect(codeOf(answers, 1)).toBe("unavailable");
    expect(codeOf(answers, 2)).toBe("timeout");
  });

  it("a queued write carried by an adopted value counts as sent: timeout at its deadline", () => {
    const n2 = restoreReplica(config("n2"), emptyDurableGroup());
    // Queued here; an earlier attempt with the same id was accepted at n3 in n3's value.
    const input: Input = { type: "propose", call: 1, command: put("retried"), deadline: 1000, fresh: false };
    const prepared = step(n2, 0, input);
    const ballot = n2.proposer.ballot!;
    // Our own promise comes back to our proposer once durable, like a peer's.
    const own = prepared.send.find((o) => o.to === "n2" && o.msg.type === "promise")!;
    step(n2, 1, { type: "message", from: "n2", msg: own.msg });
    const earlier: Value = { id: "n3/x/1", commands: [put("retried")] };
    step(n2, 1, { type: "message", from: "n3", msg: { type: "promise", group: "g", index: 1, ballot, accepted: { ballot: { round: 1, node: "n3" }, value: earlier } } });
    expect(n2.proposer.value?.id).toBe(earlier.id); // adopted, and its Accept is out
    expect(n2.queue[0]!.sent).toBe(true);
    expect(codeOf(step(n2, 1000, { type: "tick" }).answers, 1)).toBe("timeout");
  });
});
