// Deciding whether an empty data directory is a new node or a lost disk, and the lost-disk
// mode's bookkeeping (src/actors/identity.ts, membersSeen.ts, peerControl.ts, lostDisk.ts), with
// a real nats-server and in-memory storage: three "nodes" in this process, no Paxos.

import { connect, type NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDENTITY_RECORD, IdentityError, newIdentity } from "../../src/actors/identity.js";
import { LOST_DISK_RECORD, LostDiskMode, type LostDiskState } from "../../src/actors/lostDisk.js";
import { resolveIdentity } from "../../src/actors/newOrLost.js";
import { MembersSeen } from "../../src/actors/membersSeen.js";
import { PeerControl } from "../../src/actors/peerControl.js";
import { EMPTY_META } from "../../src/protocol/durable.js";
import type { GroupState } from "../../src/protocol/state.js";
import { MemoryStorage } from "../../src/storage/memory.js";
import type { Storage } from "../../src/storage/storage.js";
import { startNatsServer, type NatsServer } from "../helpers/natsServer.js";

const log = pino({ level: "silent" });
const members = ["n1", "n2", "n3"];
const prefix = "paxosstore.u";
// Groups whose name starts with "x" have no replica n1 (as if placement left it out).
const replicasFor = (group: string): string[] => (group.startsWith("x") ? ["n2", "n3"] : members);

interface Peer {
  readonly storage: MemoryStorage;
  readonly seen: MembersSeen;
  readonly control: PeerControl;
}

describe("lost-disk detection", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  const peers = new Map<string, Peer>();

  async function startPeer(id: string): Promise<Peer> {
    const storage = new MemoryStorage();
    const seen = new MembersSeen(storage, log);
    await seen.load();
    const control = new PeerControl({ nc, prefix, cluster: "u", self: id, members, storage, seen, settings: { requestMemory: 1024 }, replicasFor, log });
    control.start();
    await nc.flush();
    const peer = { storage, seen, control };
    peers.set(id, peer);
    return peer;
  }

  const resolve = (storage: Storage, extra: { newNode?: boolean } = {}) =>
    resolveIdentity({ nc, prefix, cluster: "u", self: "n1", members, log, storage, dataDir: "/data/n1", newNode: extra.newNode ?? false, askTimeoutMs: 300, retryMs: 50 });

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url, noAsyncTraces: true });
  });
  afterAll(async () => {
    for (const p of peers.values()) p.control.stop();
    await nc?.close();
    await nats?.stop();
  });

  it("refuses a directory whose identity names another node or cluster", async () => {
    const storage = new MemoryStorage();
    await storage.putNodeRecords([[IDENTITY_RECORD, newIdentity("n2", "u")]]);
    await expect(resolve(storage)).rejects.toMatchObject({ name: "IdentityError", code: "IDENTITY_MISMATCH" });
    await storage.putNodeRecords([[IDENTITY_RECORD, newIdentity("n1", "other")]]);
    await expect(resolve(storage)).rejects.toBeInstanceOf(IdentityError);
  });

  it("waits while a peer does not answer, never guessing new; then a new node registers with every peer", async () => {
    await startPeer("n2");
    const storage = new MemoryStorage();
    let settled = false;
    const resolving = resolve(storage).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 1_000));
    expect(settled).toBe(false);
    await startPeer("n3");
    const { identity, lostDisk, firstLife } = await resolving;
    expect(lostDisk).toBeNull();
    expect(firstLife).toBe(true); // a new node: no earlier process ran Paxos here
    expect(await storage.getNodeRecord(IDENTITY_RECORD)).toEqual(identity);
    // Both peers remember it, durably, under its identity.
    for (const id of ["n2", "n3"]) {
      expect(peers.get(id)!.seen.get("n1")).toMatchObject({ identityId: identity.identityId });
      const reloaded = new MembersSeen(peers.get(id)!.storage, log);
      await reloaded.load();
      expect(reloaded.get("n1")).toMatchObject({ identityId: identity.identityId });
    }
    // A restart on the same directory is the same node, with no question asked (not its first life).
    expect(await resolve(storage)).toEqual({ identity, lostDisk: null, firstLife: false });
  });

  it("finds a lost disk when a peer has seen the node, and writes identity and lost-disk mode together", async () => {
    const storage = new MemoryStorage();
    const { identity, lostDisk, firstLife } = await resolve(storage);
    expect(lostDisk).toMatchObject({ phase: "listing" });
    expect(firstLife).toBe(false); // its earlier life may have sent Accepts its disk lost
    expect(await storage.getNodeRecord(LOST_DISK_RECORD)).toEqual(lostDisk);
    expect(await resolve(storage)).toEqual({ identity, lostDisk, firstLife: false });
  });

  it("still finds the lost disk when it crashed after asking (the peers already hold its new identity)", async () => {
    const storage = new MemoryStorage();
    // The first try dies before its identity is on disk (after the peers answered).
    const dying: Storage = Object.assign(Object.create(storage) as Storage, {
      putNodeRecords: async (records: readonly (readonly [string, unknown])[]) => {
        if (records.some(([name]) => name === IDENTITY_RECORD)) throw new Error("crash");
        return storage.putNodeRecords(records);
      },
    });
    await expect(resolve(dying)).rejects.toThrow("crash");
    expect((await resolve(storage)).lostDisk).toMatchObject({ phase: "listing" });
  });

  it("--new-node skips the question", async () => {
    const storage = new MemoryStorage();
    peers.get("n2")!.control.stop();
    peers.get("n3")!.control.stop();
    expect((await resolve(storage, { newNode: true })).lostDisk).toBeNull();
    peers.get("n2")!.control.start();
    peers.get("n3")!.control.start();
    await nc.flush();
  });

  it("lists the peers' groups where it is a replica (in pages), recovers exactly those, and ends when all have", async () => {
    // n2 holds many long-named groups (several pages) and one group without n1; n3 one more.
    const n2 = peers.get("n2")!.storage;
    const many = Array.from({ length: 3_000 }, (_, i) => `g${String(i).padStart(4, "0")}-${"p".repeat(120)}`);
    n2.commitSync([...many, "xnot-ours"].map((group) => ({ group, meta: EMPTY_META, reset: false, keys: [], requests: [], forgetRequests: [] })));
    peers.get("n3")!.storage.commitSync([{ group: "only-on-n3", meta: EMPTY_META, reset: false, keys: [], requests: [], forgetRequests: [] }]);

    const storage = new MemoryStorage();
    const state: LostDiskState = { phase: "listing", detectedAt: Date.now() };
    const recovered = new Set<string>();
    const nudged: string[] = [];
    let live = true;
    const mode = new LostDiskMode({
      nc,
      prefix,
      cluster: "u",
      self: "n1",
      members,
      log,
      storage,
      state,
      // Live with a finished recovery, or (while `live` is false for the last group) passivated.
      replicaOf: (g) => (!recovered.has(g) ? ({ recovering: {} } as GroupState) : live || g !== "only-on-n3" ? ({ recovering: null } as GroupState) : null),
      nudge: (g) => nudged.push(g),
      checkEveryMs: 20,
      nudgesPerCheck: 1_000,
      renudgeEveryMs: 300,
    });
    // While listing, every group starts in recovery.
    expect(mode.mustRecover("anything")).toBe(true);
    mode.start();
    try {
      const until = Date.now() + 20_000;
      while (mode.stats().phase !== "recovering" && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(mode.stats()).toMatchObject({ phase: "recovering", groupsListed: many.length + 1 });
      expect(mode.mustRecover("only-on-n3")).toBe(true);
      expect(mode.mustRecover(many[2_999]!)).toBe(true);
      expect(mode.mustRecover("xnot-ours")).toBe(false);
      expect(mode.mustRecover("never-written")).toBe(false);
      expect(await storage.getNodeRecord(LOST_DISK_RECORD)).toMatchObject({ phase: "recovering" });
      while (nudged.length < many.length + 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(new Set(nudged)).toEqual(new Set([...many, "only-on-n3"]));
      // Done only when every listed group has finished recovering.
      for (const g of many) recovered.add(g);
      await new Promise((r) => setTimeout(r, 200));
      expect(mode.active).toBe(true);
      // A group that finished while out of memory (passivated) is nudged again and seen done.
      const nudges = nudged.length;
      live = false;
      recovered.add("only-on-n3");
      while (nudged.length === nudges && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(nudged.slice(nudges)).toEqual(["only-on-n3"]);
      expect(mode.active).toBe(true);
      live = true;
      while (mode.active && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(mode.active).toBe(false);
      await new Promise((r) => setTimeout(r, 50));
      expect(await storage.getNodeRecord(LOST_DISK_RECORD)).toBeUndefined();
    } finally {
      mode.stop();
    }
  }, 60_000);
});
