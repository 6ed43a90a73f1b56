// Deciding whether an empty data directory is a new node or a lost disk, and the lost-disk
// mode's bookkeeping (src/actors/identity.ts, membersSeen.ts, peerControl.ts, lostDisk.ts), with
// a real nats-server and in-memory storage: three "nodes" in this process, no Paxos.

import { connect, type NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDENTITY_RECORD, IdentityError, newIdentity } from "../../src/actors/identity.js";
import { LOST_DISK_RECORD, LostDiskMode, readLostDiskRecord, type LostDiskState } from "../../src/actors/lostDisk.js";
import { resolveIdentity } from "../../src/actors/newOrLost.js";
import { MembersSeen } from "../../src/actors/membersSeen.js";
import { PeerControl } from "../../src/actors/peerControl.js";
import { EMPTY_META, type DurableMeta } from "../../src/protocol/durable.js";
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

// Membership changes (issue 13): a node added later (--join) and groups reconfigured since the
// cluster was founded. Founders n1..n3 (`members`); n4 was added (view version 3, epoch 1).
describe("lost disk after membership changes", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  const vprefix = "paxosstore.v";
  const founders = ["n1", "n2", "n3"];
  const view = { epoch: 1, members: ["n1", "n2", "n3", "n4"], previous: [], phase: "stable" as const, version: 3 };
  const controls: PeerControl[] = [];
  const stores = new Map<string, MemoryStorage>();
  const seens = new Map<string, MembersSeen>();

  /** A peer as a node runs it: it knows the founders and the members of its view. */
  async function startPeer(id: string, opts: { known?: readonly string[]; view?: typeof view | null } = {}): Promise<PeerControl> {
    const storage = stores.get(id) ?? new MemoryStorage();
    stores.set(id, storage);
    const seen = seens.get(id) ?? new MembersSeen(storage, log);
    if (!seens.has(id)) await seen.load();
    seens.set(id, seen);
    const known = new Set(opts.known ?? [...founders, "n4"]);
    const v = opts.view === undefined ? view : opts.view;
    const control = new PeerControl({
      nc,
      prefix: vprefix,
      cluster: "v",
      self: id,
      members: founders,
      known: () => known,
      storage,
      seen,
      settings: { requestMemory: 1024 },
      // Placement: every group on n1, n2, n4 now, except the "x" groups (n2, n3, n4).
      replicasFor: (g) => (g.startsWith("x") ? ["n2", "n3", "n4"] : ["n1", "n2", "n4"]),
      foundingBirth: () => ({ epoch: 0, replicas: founders }),
      ...(v === null ? {} : { view: () => v }),
      log,
    });
    control.start();
    controls.push(control);
    await nc.flush();
    return control;
  }

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url, noAsyncTraces: true });
  });
  afterAll(async () => {
    for (const c of controls) c.stop();
    await nc?.close();
    await nats?.stop();
  });

  const resolveAs = (self: string, storage: Storage, join: boolean, joinWaitMs = 5_000) =>
    resolveIdentity({ nc, prefix: vprefix, cluster: "v", self, members: founders, log, storage, dataDir: `/data/${self}`, newNode: false, join, joinWaitMs, askTimeoutMs: 300, retryMs: 50 });

  it("--join: a node not added yet is new at once (the peers do not count it: not a member)", async () => {
    // The founders do not know n5 (not in their view): each refuses the question as from a non-member.
    for (const id of founders) await startPeer(id, { known: founders });
    const started = Date.now();
    const r = await resolveAs("n5", new MemoryStorage(), true, 20_000);
    expect(r.lostDisk).toBeNull();
    expect(r.firstLife).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000); // not joinWaitMs: every founder answered
    for (const c of controls.splice(0)) c.stop();
  });

  it("--join: the same command line on an empty directory after the node ran is a lost disk", async () => {
    for (const id of ["n1", "n2", "n3"]) await startPeer(id);
    // n4's first life: new (the founders had not seen it), and they remember it now.
    const first = await resolveAs("n4", new MemoryStorage(), true);
    expect(first.lostDisk).toBeNull();
    // Its disk is lost; it restarts with --join again: a founder has seen it.
    const again = await resolveAs("n4", new MemoryStorage(), true);
    expect(again.lostDisk).toMatchObject({ phase: "listing" });
    expect(again.firstLife).toBe(false);
    expect(again.identity.identityId).not.toBe(first.identity.identityId);
  });

  it("--join: founders that do not answer are waited for only joinWaitMs", async () => {
    for (const c of controls.splice(0)) c.stop();
    const known = [...founders, "n4", "n6", "n7"];
    await startPeer("n1", { known }); // n2 and n3 are down
    const started = Date.now();
    const r = await resolveAs("n6", new MemoryStorage(), true, 600);
    expect(r.lostDisk).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    // Without --join the same question waits for every founder.
    let settled = false;
    const plain = resolveAs("n7", new MemoryStorage(), false).finally(() => (settled = true));
    await new Promise((res) => setTimeout(res, 1_000));
    expect(settled).toBe(false);
    await startPeer("n2", { known });
    await startPeer("n3", { known });
    expect((await plain).lostDisk).toBeNull();
  });

  it("lists each group with the highest-epoch configuration the members store, asking the members of the newest view", async () => {
    for (const c of controls.splice(0)) c.stop();
    const cfg1 = { epoch: 1, replicas: ["n1", "n2", "n4"] };
    const away = { epoch: 1, replicas: ["n2", "n3", "n4"] };
    const put = (id: string, group: string, meta: Partial<DurableMeta>) =>
      stores.get(id)!.commitSync([{ group, meta: { ...EMPTY_META, ...meta }, reset: false, keys: [], requests: [], forgetRequests: [] }]);
    for (const id of ["n1", "n2", "n3", "n4"]) stores.set(id, new MemoryStorage());
    // "moved": reconfigured to epoch 1; n3 still holds its copy at epoch 0 (not dropped yet).
    put("n2", "moved", { config: cfg1 });
    put("n3", "moved", {});
    // "only-new": held by n2 and n4 only at epoch 1 (n4 is no founder: it must be asked).
    put("n4", "only-new", { config: cfg1 });
    // "founding": never reconfigured (no configuration stored: the founders' placement).
    put("n2", "founding", {});
    // "xaway": moved away from n1 (n1 is in neither its placement nor its configuration).
    put("n2", "xaway", { config: away });
    // "left": placement still names n1 here, but the group's configuration no longer does.
    put("n2", "left", { config: away });
    // "joining": n4 joins it, nobody else lists it: its configuration is not taken from a joiner.
    put("n4", "joining", { config: cfg1, joining: ["n2"] });
    for (const id of ["n2", "n3"]) await startPeer(id);
    const state: LostDiskState = { phase: "listing", detectedAt: Date.now() };
    const storage = new MemoryStorage();
    const views: number[] = [];
    const mode = new LostDiskMode({
      nc,
      prefix: vprefix,
      cluster: "v",
      self: "n1",
      members: founders,
      peers: () => founders, // its own view is the founders' (the one on its disk is gone)
      onView: (v) => views.push(v.version),
      log,
      storage,
      state,
      replicaOf: () => null,
      nudge: () => undefined,
      checkEveryMs: 20,
      retryMs: 50,
    });
    expect(mode.plan("moved")).toEqual({ kind: "wait" });
    mode.start();
    try {
      // n2 and n3 answered, and their view names n4: the list waits for n4 too.
      await new Promise((res) => setTimeout(res, 500));
      expect(mode.stats().phase).toBe("listing");
      expect(views).toContain(3);
      expect(mode.plan("founding")).toEqual({ kind: "wait" });
      await startPeer("n4");
      const until = Date.now() + 10_000;
      while (mode.stats().phase !== "recovering" && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(mode.stats().phase).toBe("recovering");
      expect(mode.plan("moved")).toEqual({ kind: "recover", config: cfg1 });
      expect(mode.plan("only-new")).toEqual({ kind: "recover", config: cfg1 });
      expect(mode.plan("founding")).toEqual({ kind: "recover", config: { epoch: 0, replicas: founders } });
      expect(mode.plan("joining")).toEqual({ kind: "recover", config: null }); // the birth rule's, as before
      expect(mode.plan("xaway")).toEqual({ kind: "none" });
      expect(mode.plan("left")).toEqual({ kind: "none" }); // it cannot vote there without joining afresh
      expect(mode.plan("never-written")).toEqual({ kind: "none" });
      // The configurations are durable with the list: a restart recovers in the same ones.
      const stored = readLostDiskRecord(await storage.getNodeRecord(LOST_DISK_RECORD));
      const again = new LostDiskMode({ nc, prefix: vprefix, cluster: "v", self: "n1", members: founders, log, storage, state: stored!, replicaOf: () => null, nudge: () => undefined });
      expect(again.plan("moved")).toEqual({ kind: "recover", config: cfg1 });
      expect(again.plan("joining")).toEqual({ kind: "recover", config: null });
    } finally {
      mode.stop();
    }
  }, 30_000);
});
