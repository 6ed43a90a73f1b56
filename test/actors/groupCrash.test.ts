// A key-group actor that crashes (an exception in its step: a bug) while its persists are on
// their way to disk. The registry drops it and the next message spawns a new actor that
// reloads the group from LevelDB; that reload must wait until the crashed actor's persists
// landed. Otherwise the new actor starts from a disk that is about to change: here it would
// take the fast round of instance 1 again and send a SECOND value at ballot (0, n1), which
// the crashed actor's Accept already revealed with its own value (two values at one fast-round
// ballot: the safety rule of DESIGN.md "the fast round"). Issue 8, defect 4.
//
// Real parts: a real LevelDB directory and the real storage writer; the only stand-in is a
// gate in front of the commit that holds persists back, as a slow disk would.

import { start as startActorSystem, stop as stopActorSystem } from "nact";
import { afterEach, expect, it } from "vitest";
import { GroupRegistry } from "../../src/actors/groupRegistry.js";
import type { GroupMsg } from "../../src/actors/keyGroup.js";
import { DEFAULT_LIMITS, DEFAULT_TIMING } from "../../src/protocol/config.js";
import type { Persist } from "../../src/protocol/durable.js";
import type { Outcome } from "../../src/protocol/io.js";
import type { PeerMessage } from "../../src/protocol/messages.js";
import { LevelStorage } from "../../src/storage/leveldb.js";
import { StorageWriter } from "../../src/storage/writer.js";
import { tempDir, type TempDir } from "../helpers/tmp.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function waitFor(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

it("a crashed group actor's successor loads the group only after the crashed one's persists landed", async () => {
  const dir: TempDir = await tempDir("group-crash");
  const storage = new LevelStorage(dir.path);
  await storage.open();
  // The disk: commits wait at the gate until the test opens it.
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  const committed: Persist[] = [];
  const writer = new StorageWriter({
    commit: async (batch) => {
      await gate;
      await storage.commit(batch);
      committed.push(...batch);
    },
  });
  const system = startActorSystem();
  cleanups.push(async () => {
    openGate();
    stopActorSystem(system);
    await writer.close().catch(() => undefined);
    await storage.close();
    await dir.cleanup();
  });

  const sent: { to: string; msg: PeerMessage; afterCommits: number }[] = [];
  const answers: Outcome[] = [];
  const loads: { afterCommits: number }[] = [];
  let crashNext = false;
  const loadGroup = storage.loadGroup.bind(storage);
  const crashes: unknown[] = [];
  const registry = new GroupRegistry(
    system,
    {
      nodeId: "n1",
      incarnation: "t",
      timing: DEFAULT_TIMING,
      limits: DEFAULT_LIMITS,
      storage: Object.assign(Object.create(storage) as LevelStorage, {
        loadGroup: (group: string) => {
          loads.push({ afterCommits: committed.length });
          return loadGroup(group);
        },
      }),
      writer,
      // n1 first: the preferred replica owns the fast round of instance 1.
      birth: () => ({ epoch: 0, replicas: ["n1", "n2", "n3"] }),
      foundingBirth: () => ({ epoch: 0, replicas: ["n1", "n2", "n3"] }),
      notHeld: () => undefined,
      dropGroup: () => Promise.resolve(),
      send: (to, msg) => sent.push({ to, msg, afterCommits: committed.length }),
      loopback: (group, msg) => registry.dispatch(group, { type: "message", from: "n1", msg }),
      restarted: false,
      answer: (_call, outcome) => answers.push(outcome),
      dispatchTick: () => undefined,
      onLostGroup: () => undefined,
      fatal: (e) => {
        throw e;
      },
      now: () => performance.now(),
      beforeStep: (_group: string, msg: GroupMsg) => {
        if (crashNext && msg.type === "tick") {
          crashNext = false;
          throw new Error("injected: a bug in step");
        }
      },
    },
    (_group, error) => crashes.push(error),
  );

  const propose = (call: number, requestId: string): void =>
    registry.dispatch("g", { type: "propose", call, command: { requestId, op: { op: "put", key: "k", value: new TextEncoder().encode(requestId) } }, deadline: performance.now() + 30_000 });

  // 1. A write takes the fast round: its self-accept goes to disk (held at the gate); the
  //    Accept carrying it waits for that persist.
  propose(1, "first");
  await waitFor("the first actor to load and step", () => loads.length === 1 && registry.busy());
  // 2. The actor crashes on its next message while that persist is still in flight.
  crashNext = true;
  registry.dispatch("g", { type: "tick" });
  await waitFor("the crash", () => crashes.length === 1);
  // 3. Another write for the group spawns a new actor, which must not read the disk yet.
  propose(2, "second");
  await new Promise((r) => setTimeout(r, 200)); // a chance for a wrong early load to happen
  expect(loads.length === 1 || loads[1]!.afterCommits > 0).toBe(true);
  // 4. The disk catches up: the crashed actor's Accept goes out; the new actor loads after it.
  openGate();
  await waitFor("the new actor to load", () => loads.length === 2);
  expect(loads[1]!.afterCommits).toBeGreaterThan(0);
  await waitFor("both actors' messages", () => sent.filter((s) => s.msg.type === "accept" || s.msg.type === "prepare").length >= 3);
  await new Promise((r) => setTimeout(r, 200));
  // At most one value ever went out at the fast-round ballot (0, n1) of instance 1.
  const fastValues = new Set(
    sent.filter((s) => s.msg.type === "accept" && s.msg.index === 1 && s.msg.ballot.round === 0).map((s) => (s.msg as { value: { id: string } }).value.id),
  );
  expect([...fastValues].length).toBe(1);
  await waitFor("the registry to settle", () => !registry.mailboxesBusy());
  registry.stopAll();
});
