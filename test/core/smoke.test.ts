import { describe, expect, it } from "vitest";
import { Harness } from "./harness.js";

describe("core, lossless network", () => {
  it("a put through one replica is read linearizably through every other", () => {
    const h = new Harness(3);
    const w = h.put("n1", "k", "v1");
    h.run();
    expect(h.answers.get(w)?.outcome).toMatchObject({ kind: "write", result: { type: "put", version: 1 } });
    for (const r of h.replicas) {
      const g = h.get(r, "k");
      h.run();
      expect(h.value(g)).toBe("v1");
    }
  });

  it("the owner of the next instance writes in one round trip (round 0)", () => {
    const h = new Harness(3);
    h.put("n2", "a", "1");
    h.run();
    const before = h.states.get("n2")!.chosen!;
    expect(before.ballot.node).toBe("n2");
    h.put("n2", "a", "2");
    h.run();
    expect(h.states.get("n2")!.chosen!.ballot.round).toBe(0);
  });

  it("a retried request id is applied once and answered with the first result", () => {
    const h = new Harness(5);
    const a = h.put("n1", "k", "x", "req-1");
    h.run();
    const b = h.put("n3", "k", "y", "req-1");
    h.run();
    expect(h.answers.get(a)!.outcome).toEqual(h.answers.get(b)!.outcome);
    const g = h.get("n4", "k");
    h.run();
    expect(h.value(g)).toBe("x");
  });

  it("a replica that missed writes catches up (entry and data)", () => {
    const h = new Harness(3);
    h.down.add("n3");
    for (let i = 0; i < 5; i++) { h.put("n1", `k${i}`, `v${i}`); h.run(); }
    h.restart("n3");
    const g = h.get("n3", "k4");
    h.run();
    expect(h.value(g)).toBe("v4");
    expect(h.states.get("n3")!.chosen!.index).toBe(5);
  });
});
