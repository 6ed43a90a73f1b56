import { describe, expect, it } from "vitest";

import { DEFAULT_CLUSTER, defaultPrefix, isValidNodeId, nameProblem, parseSubject, prefixProblem, subjectsFor } from "../../src/protocol/subjects.js";

describe("subjects", () => {
  it("defaults to paxosstore.<cluster>", () => {
    const s = subjectsFor(DEFAULT_CLUSTER);
    expect(DEFAULT_CLUSTER).toBe("dev");
    expect(defaultPrefix("dev")).toBe("paxosstore.dev");
    expect(s.api).toBe("paxosstore.dev.api");
    expect(s.apiQueue).toBe("paxosstore.dev.api");
    expect(s.apiNode("n1")).toBe("paxosstore.dev.api.n1");
    expect(s.peer("n1")).toBe("paxosstore.dev.peer.n1");
    expect(s.apiNodes).toBe("paxosstore.dev.api.>");
    expect(s.peers).toBe("paxosstore.dev.peer.>");
  });

  it("takes a custom prefix", () => {
    const s = subjectsFor("prod", "acme.kv");
    expect(s.api).toBe("acme.kv.api");
    expect(s.peer("node-2")).toBe("acme.kv.peer.node-2");
  });

  it("validates cluster names and node ids as subject tokens", () => {
    for (const ok of ["n1", "node-2", "eu_west_1", "A".repeat(64)]) expect(nameProblem(ok)).toBeNull();
    for (const bad of ["", "a.b", "a b", "*", ">", "a>", "n\t1", "é", "A".repeat(65), 7, null]) {
      expect(nameProblem(bad)).not.toBeNull();
      expect(isValidNodeId(bad)).toBe(false);
    }
    expect(() => subjectsFor("my.cluster")).toThrow(/cluster/);
    expect(() => subjectsFor("dev").peer("bad.node")).toThrow(/node id/);
    expect(() => subjectsFor("dev").apiNode("*")).toThrow(/node id/);
  });

  it("validates prefixes", () => {
    expect(prefixProblem("a.b.c")).toBeNull();
    for (const bad of ["", ".a", "a.", "a..b", "a.*", "a.>", "a b", "a.\u0000"]) expect(prefixProblem(bad)).not.toBeNull();
    expect(() => subjectsFor("dev", "a..b")).toThrow(/prefix/);
  });

  it("parses subjects back", () => {
    const s = subjectsFor("dev");
    expect(parseSubject(s, "paxosstore.dev.api")).toEqual({ kind: "api" });
    expect(parseSubject(s, "paxosstore.dev.api.n2")).toEqual({ kind: "apiNode", node: "n2" });
    expect(parseSubject(s, "paxosstore.dev.peer.n3")).toEqual({ kind: "peer", node: "n3" });
    expect(parseSubject(s, "paxosstore.dev.peer.n3.x")).toBeNull();
    expect(parseSubject(s, "paxosstore.prod.api")).toBeNull();
  });
});
