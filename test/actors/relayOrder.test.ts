import { describe, expect, it } from "vitest";
import { relayOrder } from "../../src/actors/relayOrder.js";

const replicas = ["n1", "n2", "n3"];
const alive = (...nodes: string[]) => (n: string) => nodes.includes(n);

describe("relayOrder: where a queue write goes first", () => {
  it("the live replicas in preference order when the owner is unknown", () => {
    expect(relayOrder({ replicas, self: "n3", selfSettled: true, peerAlive: alive("n1", "n2"), owner: null })).toEqual(["n1", "n2", "n3"]);
    expect(relayOrder({ replicas, self: "n3", selfSettled: true, peerAlive: alive("n2"), owner: null })).toEqual(["n2", "n3"]);
  });

  it("the fast-round owner first when it is live: a survivor keeps the group when the preferred replica returns", () => {
    expect(relayOrder({ replicas, self: "n3", selfSettled: true, peerAlive: alive("n1", "n2"), owner: "n2" })).toEqual(["n2", "n1", "n3"]);
    expect(relayOrder({ replicas, self: "n2", selfSettled: true, peerAlive: alive("n1", "n3"), owner: "n2" })).toEqual(["n2", "n1", "n3"]);
  });

  it("a dead or silent owner is passed over", () => {
    expect(relayOrder({ replicas, self: "n3", selfSettled: true, peerAlive: alive("n2"), owner: "n1" })).toEqual(["n2", "n3"]);
  });

  it("a node that has just started does not propose for itself while a peer replica is live", () => {
    expect(relayOrder({ replicas, self: "n1", selfSettled: false, peerAlive: alive("n2", "n3"), owner: "n1" })).toEqual(["n2", "n3"]);
    // alone: nobody to relay to (the caller proposes itself)
    expect(relayOrder({ replicas, self: "n1", selfSettled: false, peerAlive: alive(), owner: null })).toEqual([]);
  });
});
