// The storage conformance suite: every engine runs it (after abstract-level's test/index.js),
// so the memory engine the simulation trusts behaves exactly like LevelDB. The reference for
// every test is applyPersist, the protocol's own definition of a Persist record.

import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Persist } from "../../src/protocol/durable.js";
import { StorageClosedError, StorageInvalidError, isStorageError } from "../../src/storage/errors.js";
import type { Storage } from "../../src/storage/storage.js";
import { ALL_BYTES, Model, bytes, collect, entry, meta, persist, request, sortedEntries } from "./records.js";

export interface StorageHarness {
  readonly storage: Storage;
  /** Opens the same data again after `storage` was closed: what a restarted node sees. */
  readonly reopen?: () => Promise<Storage>;
  /** Closes whatever is open and removes the data. */
  cleanup(): Promise<void>;
}

export function storageConformance(name: string, makeStorage: () => Promise<StorageHarness>): void {
  describe(`${name}: storage conformance`, () => {
    let harness: StorageHarness;
    let storage: Storage;

    beforeEach(async () => {
      harness = await makeStorage();
      storage = harness.storage;
    });

    afterEach(async () => {
      await harness.cleanup();
    });

    /** Loads every group the model knows (and one it does not) and compares with the model. */
    async function expectMatches(model: Model, groups: Iterable<string> = model.groups.keys()): Promise<void> {
      for (const group of groups) {
        const loaded = await storage.loadGroup(group);
        const expected = model.expected(group);
        expect(loaded, `group ${JSON.stringify(group)}`).toEqual(expected);
        if (loaded !== null && expected !== null) {
          // Map equality ignores order; request order is part of the contract.
          expect(loaded.requests.map((r) => r.requestId)).toEqual(expected.requests.map((r) => r.requestId));
        }
      }
    }

    describe("empty storage", () => {
      it("loads null for a group never written", async () => {
        expect(await storage.loadGroup("never")).toBeNull();
        expect(await storage.loadGroup("")).toBeNull();
      });

      it("lists no groups", async () => {
        expect(await collect(storage.listGroups())).toEqual([]);
      });

      it("accepts an empty batch and writes nothing", async () => {
        await storage.commit([]);
        expect(await collect(storage.listGroups())).toEqual([]);
      });
    });

    describe("round trip", () => {
      it("keeps a group's configuration and joining mark in its meta (membership changes, issue 13)", async () => {
        const config = { epoch: 3, replicas: ["n4", "n1", "n2"] };
        const base = meta(7, "accepted");
        const reconfigured = { ...base, chosen: { ...base.chosen!, value: { id: "n1/x/9", commands: [], config } }, config };
        await storage.commit([persist("moved", { meta: reconfigured }), persist("joining", { meta: { chosen: null, promised: null, accepted: null, config, joining: ["n1", "n2", "n3"] } })]);
        expect((await storage.loadGroup("moved"))!.meta).toEqual(reconfigured);
        expect((await storage.loadGroup("joining"))!.meta).toEqual({ chosen: null, promised: null, accepted: null, config, joining: ["n1", "n2", "n3"] });
        if (harness.reopen !== undefined) {
          await storage.close();
          storage = await harness.reopen();
          expect((await storage.loadGroup("moved"))!.meta).toEqual(reconfigured);
          expect((await storage.loadGroup("joining"))!.meta.joining).toEqual(["n1", "n2", "n3"]);
        }
      });

      it("reads a group's meta record alone, as loadGroup gives it (a lost disk's peers list configurations)", async () => {
        const config = { epoch: 2, replicas: ["n4", "n1", "n2"] };
        const reconfigured = { ...meta(5, "accepted"), config };
        await storage.commit([persist("moved", { meta: reconfigured, keys: [["k", entry(1, bytes(1))]] }), persist("born", { meta: meta(2) })]);
        expect(await storage.loadMeta("moved")).toEqual((await storage.loadGroup("moved"))!.meta);
        expect((await storage.loadMeta("moved"))!.config).toEqual(config);
        expect(await storage.loadMeta("born")).toEqual(meta(2));
        expect(await storage.loadMeta("never")).toBeNull();
        await storage.dropGroup("moved");
        expect(await storage.loadMeta("moved")).toBeNull();
      });

      it("drops every record of one group and no other's (a copy moved away, issue 13)", async () => {
        const full = { meta: meta(3, "accepted"), keys: [["a", entry(1, bytes(1))], ["b", entry(2, bytes(2))]] as [string, ReturnType<typeof entry>][], requests: [request("r1", 1)] };
        await storage.commit([persist("g", full), persist("g2", full), persist("g\u0000x", full)]);
        await storage.dropGroup("g");
        expect(await storage.loadGroup("g")).toBeNull();
        expect((await collect(storage.listGroups())).sort()).toEqual(["g2", "g\u0000x"].sort());
        expect(sortedEntries((await storage.loadGroup("g2"))!)).toHaveLength(2);
        expect((await storage.loadGroup("g\u0000x"))!.requests).toHaveLength(1);
        // Written again after the drop: a fresh group.
        await storage.commit([persist("g", { meta: meta(1) })]);
        expect(sortedEntries((await storage.loadGroup("g"))!)).toEqual([]);
      });

      it("returns meta, keys with binary values and requests as committed", async () => {
        const record = persist("user:42", {
          meta: meta(5, "accepted"),
          keys: [
            ["profile", entry(5, ALL_BYTES)],
            ["empty", entry(3, new Uint8Array(0))],
            ["large", entry(4, new Uint8Array(64 * 1024).map((_, i) => (i * 31) & 0xff))],
            ["contacts/17", entry(2, bytes(0, 0, 0))],
          ],
          requests: [request("req-a", 1), request("req-b", 2), request("req-c", 3), request("req-d", 4)],
        });
        await storage.commit([record]);

        const loaded = await storage.loadGroup("user:42");
        expect(loaded).not.toBeNull();
        expect(loaded!.meta).toEqual(record.meta);
        expect(sortedEntries(loaded!)).toEqual([
          ["contacts/17", entry(2, bytes(0, 0, 0))],
          ["empty", entry(3, new Uint8Array(0))],
          ["large", record.keys[2]![1]],
          ["profile", entry(5, ALL_BYTES)],
        ]);
        expect(loaded!.requests).toEqual(record.requests);
      });

      it("gives values back as Uint8Array, byte for byte, in data and in meta", async () => {
        await storage.commit([persist("g", { meta: meta(1, "accepted"), keys: [["k", entry(1, ALL_BYTES)]] })]);
        const loaded = (await storage.loadGroup("g"))!;
        const value = loaded.keys.get("k")!.value;
        expect(value).toBeInstanceOf(Uint8Array);
        expect(Array.from(value)).toEqual(Array.from(ALL_BYTES));
        const accepted = loaded.meta.accepted!.value.commands[0]!.op;
        expect(accepted.op === "put" && Array.from(accepted.value)).toEqual(Array.from(ALL_BYTES));
        const cas = loaded.meta.chosen!.value.commands[1]!.op;
        expect(cas.op === "cas" && cas.value).toBeInstanceOf(Uint8Array);
      });

      it("stores names with any Unicode, NUL and separators in groups, keys and request ids", async () => {
        const names = ["", "\u0000", "a\u0000b", "/", "ключ", "😀 emoji", "\uffff", "x".repeat(1000)];
        const model = new Model();
        const batch = names.map((group, i) =>
          persist(group, {
            meta: meta(i + 1),
            keys: names.map((key, j) => [key, entry(j + 1)] as const),
            requests: names.map((id, j) => request(id, j + 1)),
          }),
        );
        await storage.commit(batch);
        model.apply(batch);
        await expectMatches(model);
        expect((await collect(storage.listGroups())).sort()).toEqual(names.slice().sort());
      });

      it("replaces the whole meta record on every commit", async () => {
        await storage.commit([persist("g", { meta: meta(1, "accepted") })]);
        await storage.commit([persist("g", { meta: meta(2) })]);
        expect((await storage.loadGroup("g"))!.meta).toEqual(meta(2));
      });

      it("writes a group with meta only", async () => {
        await storage.commit([persist("g", { meta: meta(0, "promised") })]);
        expect(await storage.loadGroup("g")).toEqual({ meta: meta(0, "promised"), keys: new Map(), requests: [] });
        expect(await collect(storage.listGroups())).toEqual(["g"]);
      });
    });

    describe("deletes", () => {
      it("removes a key deleted by a later commit and ignores deleting an absent key", async () => {
        await storage.commit([persist("g", { keys: [["a", entry(1)], ["b", entry(1)]] })]);
        await storage.commit([persist("g", { meta: meta(2), keys: [["a", null], ["never", null]] })]);
        const loaded = (await storage.loadGroup("g"))!;
        expect([...loaded.keys.keys()]).toEqual(["b"]);
      });

      it("applies a record's keys in order: the last change of a key wins", async () => {
        await storage.commit([
          persist("g", {
            keys: [["a", entry(1)], ["a", null], ["b", null], ["b", entry(2)], ["c", entry(1)], ["c", entry(3)]],
          }),
        ]);
        const loaded = (await storage.loadGroup("g"))!;
        expect(sortedEntries(loaded)).toEqual([
          ["b", entry(2)],
          ["c", entry(3)],
        ]);
      });

      it("applies several records of one group in one batch in order", async () => {
        const batch = [
          persist("g", { meta: meta(1), keys: [["a", entry(1)], ["b", entry(1)]] }),
          persist("g", { meta: meta(2), keys: [["a", null], ["c", entry(2)]] }),
          persist("g", { meta: meta(3), keys: [["a", entry(3)]] }),
        ];
        await storage.commit(batch);
        const model = new Model();
        model.apply(batch);
        await expectMatches(model);
        expect((await storage.loadGroup("g"))!.meta).toEqual(meta(3));
      });
    });

    describe("reset", () => {
      it("drops every key and request of the group before applying the record", async () => {
        await storage.commit([
          persist("g", { keys: [["old1", entry(1)], ["old2", entry(1)], ["kept", entry(1)]], requests: [request("r1", 1)] }),
          persist("other", { keys: [["old1", entry(1)]], requests: [request("r1", 1)] }),
        ]);
        await storage.commit([
          persist("g", { meta: meta(9), reset: true, keys: [["kept", entry(9)], ["new", entry(9)]], requests: [request("r9", 9)] }),
        ]);
        const loaded = (await storage.loadGroup("g"))!;
        expect(loaded.meta).toEqual(meta(9));
        expect(sortedEntries(loaded)).toEqual([
          ["kept", entry(9)],
          ["new", entry(9)],
        ]);
        expect(loaded.requests).toEqual([request("r9", 9)]);
        // Another group is untouched.
        const other = (await storage.loadGroup("other"))!;
        expect([...other.keys.keys()]).toEqual(["old1"]);
        expect(other.requests).toEqual([request("r1", 1)]);
      });

      it("drops what earlier records of the same batch wrote", async () => {
        await storage.commit([persist("g", { keys: [["disk", entry(1)]], requests: [request("rd", 1)] })]);
        const batch = [
          persist("g", { meta: meta(2), keys: [["early", entry(2)]], requests: [request("re", 2)] }),
          persist("g", { meta: meta(5), reset: true, keys: [["snap", entry(5)]], requests: [request("rs", 3)] }),
          persist("g", { meta: meta(6), keys: [["late", entry(6)]] }),
          persist("g", { meta: meta(7), reset: true, keys: [["final", entry(7)]] }),
        ];
        await storage.commit(batch);
        const loaded = (await storage.loadGroup("g"))!;
        expect(sortedEntries(loaded)).toEqual([["final", entry(7)]]);
        expect(loaded.requests).toEqual([]);
        expect(loaded.meta).toEqual(meta(7));
      });

      it("resets a group never written", async () => {
        await storage.commit([persist("fresh", { reset: true, keys: [["k", entry(1)]] })]);
        expect(sortedEntries((await storage.loadGroup("fresh"))!)).toEqual([["k", entry(1)]]);
      });

      it("resets a large group", async () => {
        const keys = Array.from({ length: 3000 }, (_, i) => [`key/${i}`, entry(1)] as const);
        await storage.commit([persist("big", { keys })]);
        await storage.commit([persist("big", { reset: true, keys: [["only", entry(2)]] })]);
        expect(sortedEntries((await storage.loadGroup("big"))!)).toEqual([["only", entry(2)]]);
      });
    });

    describe("many groups", () => {
      it("commits many groups in one batch and loads each on its own", async () => {
        const batch = Array.from({ length: 60 }, (_, i) =>
          persist(`group-${i}`, {
            meta: meta(i + 1),
            keys: [[`k${i}`, entry(i + 1, bytes(i, i, i))], ["shared", entry(i + 1)]],
            requests: [request(`r${i}`, i + 1)],
          }),
        );
        await storage.commit(batch);
        const model = new Model();
        model.apply(batch);
        await expectMatches(model);
        expect((await collect(storage.listGroups())).sort()).toEqual(batch.map((p) => p.group).sort());
      });

      it("keeps groups whose names are prefixes of each other apart", async () => {
        // A naive "group + separator + key" layout mixes these up.
        const groups = ["a", "ab", "a\u0000", "a\u0000b", "a\u0001", "a/b", "a/", "", "b"];
        const batch = groups.map((group, i) =>
          persist(group, {
            meta: meta(i + 1),
            keys: [
              [`only-${i}`, entry(i + 1)],
              ["b", entry(i + 1)],
              ["\u0000", entry(i + 1)],
              ["b/c", entry(i + 1)],
            ],
            requests: [request(`req-${i}`, i + 1), request("b", 100 + i)],
          }),
        );
        await storage.commit(batch);
        const model = new Model();
        model.apply(batch);
        await expectMatches(model);
        expect((await collect(storage.listGroups())).sort()).toEqual(groups.slice().sort());

        // A reset of "a" must not reach into "ab" or "a\u0000".
        const reset = [persist("a", { meta: meta(50), reset: true })];
        await storage.commit(reset);
        model.apply(reset);
        await expectMatches(model);
        expect((await storage.loadGroup("a"))!.keys.size).toBe(0);
      });

      it("lists each group once however many records it has", async () => {
        await storage.commit([
          persist("x", { keys: Array.from({ length: 50 }, (_, i) => [`k${i}`, entry(1)] as const) }),
          persist("y", { requests: Array.from({ length: 50 }, (_, i) => request(`r${i}`, i)) }),
          persist("z"),
        ]);
        expect((await collect(storage.listGroups())).sort()).toEqual(["x", "y", "z"]);
      });
    });

    describe("request records", () => {
      it("loads requests sorted by seq, whatever their ids and commit order", async () => {
        await storage.commit([persist("g", { requests: [request("z", 5), request("a", 7), request("m", 1)] })]);
        await storage.commit([persist("g", { requests: [request("r10", 10), request("r9", 9), request("b", 2)] })]);
        const loaded = (await storage.loadGroup("g"))!;
        expect(loaded.requests.map((r) => [r.requestId, r.seq])).toEqual([
          ["m", 1],
          ["b", 2],
          ["z", 5],
          ["a", 7],
          ["r9", 9],
          ["r10", 10],
        ]);
      });

      it("refuses a persist that adds and forgets one request id (the outcome would depend on write order)", async () => {
        await storage.commit([persist("g", { requests: [request("r1", 1)] })]);
        for (const bad of [
          persist("g", { requests: [request("r2", 2)], forgetRequests: ["r2"] }),
          persist("g", { requests: [request("r2", 2), request("r2", 3)] }),
        ]) {
          await expect(storage.commit([bad])).rejects.toMatchObject({ code: "STORAGE_INVALID" });
        }
        expect((await storage.loadGroup("g"))!.requests.map((r) => r.requestId)).toEqual(["r1"]);
      });

      it("keys request records by id: an add replaces, a forget removes, across the persists of a batch", async () => {
        const model = new Model();
        const steps: Persist[][] = [
          [persist("g", { requests: [request("r1", 1), request("r2", 2)] })],
          // Forgetting an unknown id is a no-op.
          [persist("g", { requests: [request("r3", 3), request("r4", 4)], forgetRequests: ["r1", "unknown"] })],
          // Several records in one batch: the later persist's forget wins over the earlier add.
          [persist("g", { requests: [request("r5", 5)] }), persist("g", { forgetRequests: ["r5", "r2"] })],
          // A forgotten id may be added again later; an add of a stored id replaces its record.
          [persist("g", { requests: [request("r1", 6)] })],
          [persist("g", { requests: [request("r3", 7)] })],
          // Evicted and applied again in one step (a retry past the window): the core sends an add only.
          [persist("g", { requests: [request("r4", 8)] })],
        ];
        for (const batch of steps) {
          await storage.commit(batch);
          model.apply(batch);
          await expectMatches(model);
        }
        expect((await storage.loadGroup("g"))!.requests.map((r) => r.requestId)).toEqual(["r1", "r3", "r4"]);
      });

      it("keeps the whole result of a request", async () => {
        const records = [request("p", 0), request("d", 1), request("c", 2), request("t", 3)];
        await storage.commit([persist("g", { requests: records })]);
        expect((await storage.loadGroup("g"))!.requests).toEqual(records);
      });
    });

    describe("isolation of loaded images", () => {
      it("does not let a caller's changes to a loaded group reach storage", async () => {
        await storage.commit([persist("g", { keys: [["k", entry(1)]], requests: [request("r", 1)] })]);
        const first = (await storage.loadGroup("g"))!;
        first.keys.set("intruder", entry(99));
        first.keys.delete("k");
        first.requests.push(request("fake", 2));
        first.requests.shift();
        first.meta = meta(77);
        const second = (await storage.loadGroup("g"))!;
        expect(sortedEntries(second)).toEqual([["k", entry(1)]]);
        expect(second.requests).toEqual([request("r", 1)]);
        expect(second.meta).toEqual(meta(1));
      });
    });

    describe("invalid input", () => {
      it("rejects an ill-formed name and writes nothing of the batch", async () => {
        const lone = "bad\ud800";
        for (const bad of [
          persist(lone),
          persist("g", { keys: [[lone, entry(1)]] }),
          persist("g", { requests: [request(lone, 1)] }),
          persist("g", { forgetRequests: [lone] }),
        ]) {
          const err = await storage.commit([persist("good", { keys: [["k", entry(1)]] }), bad]).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(StorageInvalidError);
          expect(isStorageError(err, "STORAGE_INVALID")).toBe(true);
        }
        expect(await storage.loadGroup("good")).toBeNull();
        expect(await collect(storage.listGroups())).toEqual([]);
      });
    });

    describe("matches applyPersist on random histories", () => {
      it("for any sequence of batches (property)", async () => {
        const groupNames = ["g", "a", "ab", "a\u0000"];
        const keyNames = ["k1", "k2", "k/3", "", "\u0000"];
        let run = 0;
        const recordArb = fc.record({
          group: fc.constantFrom(...groupNames),
          index: fc.nat(1000),
          open: fc.constantFrom("none" as const, "promised" as const, "accepted" as const),
          // About one record in ten is a data catch-up (reset).
          resetRoll: fc.nat(9),
          keys: fc.array(
            fc.tuple(fc.constantFrom(...keyNames), fc.option(fc.tuple(fc.nat(100), fc.uint8Array({ maxLength: 8 })), { nil: null })),
            { maxLength: 5 },
          ),
          adds: fc.nat(3),
          forgets: fc.array(fc.nat(20), { maxLength: 3 }),
        });
        await fc.assert(
          fc.asyncProperty(fc.array(fc.array(recordArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }), async (history) => {
            // Fresh names per run: the storage is shared by all runs of the property.
            const tag = `run${run++}:`;
            const model = new Model();
            let seq = 0;
            for (const records of history) {
              const batch = records.map((r) => {
                const group = tag + r.group;
                const requests = Array.from({ length: r.adds }, () => {
                  seq++;
                  return request(`${group}#${seq}`, seq);
                });
                return persist(group, {
                  meta: meta(r.index, r.open),
                  reset: r.resetRoll === 0,
                  keys: r.keys.map(([key, change]) => [key, change === null ? null : entry(change[0], change[1])] as const),
                  requests,
                  // Never an id this same persist adds (the core keeps them disjoint; storage refuses it).
                  forgetRequests: r.forgets.map((n) => `${group}#${n}`).filter((id) => !requests.some((q) => q.requestId === id)),
                });
              });
              await storage.commit(batch);
              model.apply(batch);
            }
            await expectMatches(model, groupNames.map((g) => tag + g));
          }),
          { numRuns: 40 },
        );
      });
    });

    describe("node records", () => {
      it("reads undefined for a record never written", async () => {
        expect(await storage.getNodeRecord("identity")).toBeUndefined();
      });

      it("writes, overwrites and deletes records atomically, apart from every group", async () => {
        const identity = { nodeId: "n1", cluster: "c", identityId: "abc", createdAt: 1 };
        await storage.putNodeRecords([["identity", identity], ["members-seen", { n2: { identityId: null, at: 2 } }]]);
        expect(await storage.getNodeRecord("identity")).toEqual(identity);
        expect(await storage.getNodeRecord("members-seen")).toEqual({ n2: { identityId: null, at: 2 } });
        await storage.putNodeRecords([["identity", { ...identity, identityId: "def" }], ["members-seen", undefined]]);
        expect(await storage.getNodeRecord("identity")).toEqual({ ...identity, identityId: "def" });
        expect(await storage.getNodeRecord("members-seen")).toBeUndefined();
        // Node records are no group: listing and loading groups never see them.
        expect(await collect(storage.listGroups())).toEqual([]);
        expect(await storage.loadGroup("identity")).toBeNull();
      });

      it("hands out copies: changing a read record changes nothing stored", async () => {
        await storage.putNodeRecords([["lost-disk", { groups: ["a"] }]]);
        const read = (await storage.getNodeRecord("lost-disk")) as { groups: string[] };
        read.groups.push("b");
        expect(await storage.getNodeRecord("lost-disk")).toEqual({ groups: ["a"] });
      });

      it("keeps node records across close and reopen", async (ctx) => {
        if (harness.reopen === undefined) {
          ctx.skip();
          return;
        }
        await storage.commit([persist("g")]);
        await storage.putNodeRecords([["identity", { nodeId: "n1" }]]);
        await storage.close();
        storage = await harness.reopen();
        expect(await storage.getNodeRecord("identity")).toEqual({ nodeId: "n1" });
        expect(await collect(storage.listGroups())).toEqual(["g"]);
      });

      it("refuses node records after close with STORAGE_CLOSED", async () => {
        await storage.close();
        await expect(storage.getNodeRecord("identity")).rejects.toMatchObject({ code: "STORAGE_CLOSED" });
        await expect(storage.putNodeRecords([["identity", {}]])).rejects.toMatchObject({ code: "STORAGE_CLOSED" });
      });
    });

    describe("lifecycle", () => {
      it("refuses work after close with STORAGE_CLOSED", async () => {
        await storage.commit([persist("g")]);
        await storage.close();
        await expect(storage.loadGroup("g")).rejects.toBeInstanceOf(StorageClosedError);
        await expect(storage.commit([persist("g")])).rejects.toMatchObject({ code: "STORAGE_CLOSED" });
        await expect(collect(storage.listGroups())).rejects.toMatchObject({ code: "STORAGE_CLOSED" });
        await storage.close(); // idempotent
      });

      it("keeps everything across close and reopen", async (ctx) => {
        if (harness.reopen === undefined) {
          ctx.skip();
          return;
        }
        const model = new Model();
        const batches = [
          [
            persist("g", { meta: meta(3, "accepted"), keys: [["k", entry(3, ALL_BYTES)], ["d", entry(1)]], requests: [request("r1", 1), request("r2", 2)] }),
            persist("ab", { keys: [["x", entry(1)]] }),
          ],
          [persist("g", { meta: meta(4), keys: [["d", null]], forgetRequests: ["r1"] })],
          [persist("a", { reset: true, keys: [["y", entry(1)]] })],
        ];
        for (const batch of batches) {
          await storage.commit(batch);
          model.apply(batch);
        }
        await storage.close();
        storage = await harness.reopen();
        await expectMatches(model);
        expect((await collect(storage.listGroups())).sort()).toEqual(["a", "ab", "g"]);
        // And it keeps working after the restart.
        const more = [persist("g", { meta: meta(5), keys: [["after", entry(5)]] })];
        await storage.commit(more);
        model.apply(more);
        await expectMatches(model);
      });
    });
  });
}
