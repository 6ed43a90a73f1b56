// maxActiveGroups: a node holds at most that many key-groups in memory; past it, the least
// recently used quiescent groups are passivated first, and a passivated group reloads from
// LevelDB with its data on its next message. Real LevelDB and storage writer; one replica per
// group, so each write completes on this node alone.

import { start as startActorSystem, stop as stopActorSystem } from "nact";
import { afterEach, expect, it } from "vitest";
import { GroupRegistry } from "../../src/actors/groupRegistry.js";
import { DEFAULT_LIMITS, DEFAULT_TIMING } from "../../src/protocol/config.js";
import type { Outcome } from "../../src/protocol/io.js";
import { LevelStorage } from "../../src/storage/leveldb.js";
import { StorageWriter } from "../../src/storage/writer.js";
import { tempDir } from "../helpers/tmp.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it("keeps at most maxActiveGroups groups in memory, least recently used passivated first", async () => {
  const dir = await tempDir("group-cap");
  const storage = new LevelStorage(dir.path);
  await storage.open();
  const writer = new StorageWriter(storage);
  const system = startActorSystem();
  cleanups.push(async () => {
    stopActorSystem(system);
    await writer.close();
    await storage.close();
    await dir.cleanup();
  });
  const answers = new Map<number, (o: Outcome) => void>();
  const cap = 20;
  const registry = new GroupRegistry(
    system,
    {
      nodeId: "n1",
      incarnation: "t",
      timing: DEFAULT_TIMING,
      limits: DEFAULT_LIMITS,
      storage,
      writer,
      birth: () => ({ epoch: 0, replicas: ["n1"] }),
      foundingBirth: () => ({ epoch: 0, replicas: ["n1"] }),
      notHeld: () => undefined,
      dropGroup: (group) => storage.dropGroup(group),
      send: () => undefined,
      loopback: (group, msg) => registry.dispatch(group, { type: "message", from: "n1", msg }),
      restarted: false,
      answer: (call, outcome) => answers.get(call)?.(outcome),
      dispatchTick: (group) => registry.dispatch(group, { type: "tick" }),
      onLostGroup: () => undefined,
      fatal: (e) => {
        throw e;
      },
      now: () => performance.now(),
    },
    (_group, error) => {
      throw error;
    },
    4,
    cap,
  );
  let nextCall = 0;
  const put = (group: string, value: string): Promise<Outcome> =>
    new Promise((resolve) => {
      const call = ++nextCall;
      answers.set(call, resolve);
      registry.dispatch(group, { type: "propose", call, command: { requestId: `r${call}`, op: { op: "put", key: "k", value: new TextEncoder().encode(value) } }, deadline: performance.now() + 30_000 });
    });
  const get = (group: string): Promise<Outcome> =>
    new Promise((resolve) => {
      const call = ++nextCall;
      answers.set(call, resolve);
      registry.dispatch(group, { type: "read", call, query: { kind: "get", key: "k" }, consistency: "linearizable", deadline: performance.now() + 30_000 });
    });

  let peak = 0;
  for (let i = 0; i < 100; i++) {
    expect((await put(`g${i}`, `v${i}`)).kind).toBe("write");
    // g0 is used again and again: it stays the most recently used, so it is never passivated.
    expect((await get("g0")).kind).toBe("read");
    peak = Math.max(peak, registry.size);
  }
  expect(peak).toBeLessThanOrEqual(cap);
  expect(registry.passivatedOverCap).toBeGreaterThanOrEqual(100 - cap);
  expect(registry.isLive("g0")).toBe(true);
  expect(registry.isLive("g99")).toBe(true);
  expect(registry.isLive("g1")).toBe(false);
  // A passivated group reloads from disk with its data.
  const back = await get("g1");
  expect(back.kind === "read" && back.result.kind === "get" && back.result.entry !== null && new TextDecoder().decode(back.result.entry.value)).toBe("v1");
});
