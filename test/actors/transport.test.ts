// The transport's liveness view, which routes client requests (never Paxos): who is trusted
// with requests after a start, a silence, a death. The NATS connection is a stand-in that
// hands frames straight to the transport: what is tested is the bookkeeping, with the clock
// stepped by hand; the real links are in the integration and failover tests.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { Transport } from "../../src/actors/transport.js";
import { encodePeerFrame } from "../../src/protocol/peerCodec.js";

const SILENCE_MS = 300;
const REJOIN_MS = 1_000;

/** Time passes in heartbeat steps, each listed peer sending a frame every step. */
function steady(frameFrom: (peer: string) => void, ms: number, ...peers: string[]): void {
  for (let t = 0; t < ms; t += 50) {
    vi.advanceTimersByTime(50);
    for (const p of peers) frameFrom(p);
  }
}

function transportOf(self: string): { transport: Transport; frameFrom: (peer: string) => void } {
  let deliverFrame: ((data: Uint8Array) => void) | null = null;
  const nc = {
    subscribe: (_subject: string, opts: { callback: (err: Error | null, msg: { data: Uint8Array }) => void }) => {
      deliverFrame = (data) => opts.callback(null, { data });
      return { unsubscribe: () => undefined };
    },
    publish: () => undefined,
  } as unknown as NatsConnection;
  const transport = new Transport({
    nc,
    prefix: "paxosstore.t",
    cluster: "t",
    self,
    members: ["n1", "n2", "n3"],
    maxFrameBytes: 1 << 20,
    silenceMs: SILENCE_MS,
    rejoinMs: REJOIN_MS,
    deliver: () => undefined,
  });
  transport.start();
  return { transport, frameFrom: (peer) => deliverFrame!(encodePeerFrame({ from: peer, cluster: "t", messages: [] })) };
}

describe("transport liveness", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it("a node that has just started trusts peers at their first frame, but not itself until it has been up rejoinMs", () => {
    const { transport, frameFrom } = transportOf("n1");
    expect(transport.isAlive("n2")).toBe(false); // never heard
    frameFrom("n2");
    expect(transport.isAlive("n2")).toBe(true); // up while we were not: no rejoin wait
    expect(transport.selfSettled()).toBe(false); // we are the one coming back behind
    vi.advanceTimersByTime(REJOIN_MS);
    expect(transport.selfSettled()).toBe(true);
  });

  it("a peer back from silence is trusted only after rejoinMs of steady frames", () => {
    const { transport, frameFrom } = transportOf("n1");
    frameFrom("n2");
    frameFrom("n3");
    steady(frameFrom, SILENCE_MS + 50, "n3"); // n2 silent: paused or cut off; n3 up
    expect(transport.isAlive("n2")).toBe(false);
    frameFrom("n2");
    expect(transport.isAlive("n2")).toBe(false); // back, but behind
    steady(frameFrom, REJOIN_MS, "n2", "n3");
    expect(transport.isAlive("n2")).toBe(true);
    expect(transport.selfSettled()).toBe(true);
  });

  it("a peer NATS reports down is not alive until it is heard again and has rejoined", () => {
    const { transport, frameFrom } = transportOf("n1");
    frameFrom("n2");
    frameFrom("n3");
    expect(transport.isAlive("n3")).toBe(true);
    steady(frameFrom, REJOIN_MS, "n2", "n3");
    transport.markDown("n3");
    expect(transport.isAlive("n3")).toBe(false);
    steady(frameFrom, 100, "n2");
    frameFrom("n3"); // restarted
    expect(transport.isAlive("n3")).toBe(false);
    steady(frameFrom, REJOIN_MS, "n2", "n3");
    expect(transport.isAlive("n3")).toBe(true);
  });

  it("a node cut off from a majority is the one coming back: it trusts its peers at once and is unsettled for rejoinMs", () => {
    const { transport, frameFrom } = transportOf("n1");
    frameFrom("n2");
    frameFrom("n3");
    steady(frameFrom, REJOIN_MS, "n2", "n3");
    expect(transport.selfSettled()).toBe(true);
    vi.advanceTimersByTime(2_000); // n1 hears nobody: cut off
    expect(transport.isAlive("n2")).toBe(false);
    frameFrom("n2"); // healed
    vi.advanceTimersByTime(40);
    frameFrom("n3");
    expect(transport.isAlive("n2")).toBe(true);
    expect(transport.isAlive("n3")).toBe(true);
    expect(transport.selfSettled()).toBe(false);
    steady(frameFrom, REJOIN_MS, "n2", "n3");
    expect(transport.selfSettled()).toBe(true);
  });

  it("one silent peer among live ones is not this node's return: it waits rejoinMs, and this node stays settled", () => {
    const { transport, frameFrom } = transportOf("n1");
    frameFrom("n2");
    frameFrom("n3");
    steady(frameFrom, REJOIN_MS, "n2", "n3");
    steady(frameFrom, 1_000, "n2"); // n3 is silent (paused)
    frameFrom("n3");
    expect(transport.isAlive("n3")).toBe(false);
    expect(transport.selfSettled()).toBe(true);
  });
  it("back from hearing no peer for a second or more, requests are NATS's backlog for 250 ms (STALE_BURST_MS); a shorter silence, a silent peer or a start is not that", () => {
    const { transport, frameFrom } = transportOf("n1");
    frameFrom("n2");
    expect(transport.returningFromCut()).toBe(false); // a start: no backlog (a new connection)
    frameFrom("n3");
    steady(frameFrom, REJOIN_MS, "n2", "n3");
    vi.advanceTimersByTime(SILENCE_MS + 200); // nobody heard for 500 ms: cut off, but briefly
    frameFrom("n2");
    expect(transport.selfSettled()).toBe(false);
    expect(transport.returningFromCut()).toBe(false);
    steady(frameFrom, REJOIN_MS, "n2", "n3");
    steady(frameFrom, 1_500, "n2"); // n3 silent, n2 up: n1 is not the one cut off
    frameFrom("n3");
    expect(transport.returningFromCut()).toBe(false);
    steady(frameFrom, REJOIN_MS, "n2", "n3");
    vi.advanceTimersByTime(1_000); // nobody heard for a second: cut off (or paused)
    frameFrom("n3");
    expect(transport.returningFromCut()).toBe(true);
    vi.advanceTimersByTime(249);
    frameFrom("n2");
    expect(transport.returningFromCut()).toBe(true);
    vi.advanceTimersByTime(1);
    expect(transport.returningFromCut()).toBe(false);
    expect(transport.selfSettled()).toBe(false); // still unsettled: that lasts rejoinMs
  });
});
