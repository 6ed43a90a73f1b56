// Recovery of a group that a majority of its replicas lost (two of three failed their
// checksum), after the operator unfenced one of them (src/cli/unfenceCommand.ts): the other
// lost replica must then recover by itself, also when the group is idle by the time the
// unfenced replica first answers its probe (test/integration/lostDisk.test.ts "unfence-group").
import { describe, expect, it } from "vitest";
import { restoreReplica } from "../../src/protocol/core.js";
import { chosenIndex } from "../../src/protocol/state.js";
import { Harness } from "./harness.js";

/** The group's stored copy at `node` failed its checksum: it restarts recovering. */
function lose(h: Harness, node: string, settleRecovery = false): void {
  h.states.set(node, restoreReplica(h.config(node), h.disks.get(node)!, { lost: true, settleRecovery }));
  h.input(node, { type: "tick" });
  h.run();
}

/** `paxosstore unfence-group` on a stopped node, then its restart. */
function unfence(h: Harness, node: string): void {
  const { meta, keys, requests } = h.disks.get(node)!;
  expect(meta.recovering).toBe(true);
  h.disks.set(node, { meta: { chosen: meta.chosen, promised: meta.promised, accepted: meta.accepted }, keys, requests });
  h.restart(node);
}

function write(h: Harness, node: string, key: string, value: string, requestId: string): void {
  const call = h.put(node, key, value, requestId);
  for (let i = 0; i < 100 && !h.answers.has(call); i++) h.tick(10);
  expect(h.answers.get(call)?.outcome).toMatchObject({ kind: "write" });
}

describe("two of three replicas lost a group; one is unfenced", () => {
  it("the other recovers by itself, though the last write was chosen before the unfenced one answered its probe", () => {
    const h = new Harness(3);
    for (let i = 1; i <= 5; i++) write(h, "n1", `k${i}`, `v${i}`, `w${i}`);
    lose(h, "n2");
    h.tick(300);
    lose(h, "n3");
    h.tick(300);
    expect(h.states.get("n3")!.recovering).not.toBeNull();

    // n3 is slow: it hears nothing while n1 and the unfenced n2 write k6 and k7.
    unfence(h, "n2");
    h.down.add("n3");
    write(h, "n1", "k6", "v6", "w6");
    write(h, "n2", "k7", "v7", "w7");
    const last = chosenIndex(h.states.get("n1")!);
    h.down.delete("n3");

    // Nobody writes any more: n3's probe finds n2 at the group's last chosen index.
    for (let i = 0; i < 40; i++) h.tick(250);
    const n3 = h.states.get("n3")!;
    expect(n3.recovering).toBeNull();
    expect(chosenIndex(n3)).toBeGreaterThan(last); // an instance was decided for it (a no-op)
    expect(h.disks.get("n3")!.meta.recovering).toBeUndefined();
    const g = h.get("n3", "k7", "stale");
    expect(h.value(g)).toBe("v7");
  });

  it("a replica that lost an idle group still recovers at the next write, not by itself (docs/OPERATIONS.md)", () => {
    const h = new Harness(3);
    for (let i = 1; i <= 3; i++) write(h, "n1", `k${i}`, `v${i}`, `w${i}`);
    const before = chosenIndex(h.states.get("n1")!);
    lose(h, "n2");
    for (let i = 0; i < 40; i++) h.tick(250);
    expect(h.states.get("n2")!.recovering).not.toBeNull();
    expect(chosenIndex(h.states.get("n1")!)).toBe(before); // nothing proposed for it
    write(h, "n3", "k4", "v4", "w4");
    expect(h.states.get("n2")!.recovering).toBeNull();
  });

  it("with settleRecovery (a group nobody may write to: the membership log) it recovers by itself, and a second loss then leaves a voting majority", () => {
    const h = new Harness(3);
    for (let i = 1; i <= 3; i++) write(h, "n1", `k${i}`, `v${i}`, `w${i}`);
    const before = chosenIndex(h.states.get("n1")!);
    lose(h, "n2", true);
    for (let i = 0; i < 40 && h.states.get("n2")!.recovering !== null; i++) h.tick(250);
    const n2 = h.states.get("n2")!;
    expect(n2.recovering).toBeNull();
    expect(chosenIndex(n2)).toBe(before + 1); // a no-op decided the target for it
    expect(h.disks.get("n2")!.meta.recovering).toBeUndefined();
    expect(h.value(h.get("n2", "k3", "stale"))).toBe("v3");
    // n3 loses it next: n1 and n2 are a majority that votes, so n3 recovers too, and writes go on.
    lose(h, "n3", true);
    for (let i = 0; i < 40 && h.states.get("n3")!.recovering !== null; i++) h.tick(250);
    expect(h.states.get("n3")!.recovering).toBeNull();
    write(h, "n2", "k4", "v4", "w4");
    const read = h.get("n3", "k4");
    for (let i = 0; i < 100 && !h.answers.has(read); i++) h.tick(10);
    expect(h.value(read)).toBe("v4");
  });
});
