import { describe, expect, it } from "vitest";
import { StorageClosedError } from "../../src/storage/errors.js";
import { MemoryStorage } from "../../src/storage/memory.js";
import { storageConformance } from "./conformance.js";
import { entry, meta, persist, request } from "./records.js";

storageConformance("MemoryStorage", async () => {
  const storage = new MemoryStorage();
  await storage.open();
  return {
    storage,
    // The memory engine is its own disk: reopening the same object is a restart.
    reopen: async () => {
      await storage.open();
      return storage;
    },
    cleanup: () => storage.close(),
  };
});

describe("MemoryStorage: synchronous face for the simulation", () => {
  it("is open from construction and commits and loads synchronously", () => {
    const storage = new MemoryStorage();
    storage.commitSync([persist("g", { meta: meta(2), keys: [["k", entry(2)]], requests: [request("r", 1)] })]);
    const loaded = storage.loadGroupSync("g")!;
    expect(loaded.meta).toEqual(meta(2));
    expect(loaded.keys.get("k")).toEqual(entry(2));
    expect(loaded.requests).toEqual([request("r", 1)]);
    expect(storage.loadGroupSync("none")).toBeNull();
    expect(storage.listGroupsSync()).toEqual(["g"]);
  });

  it("throws StorageClosedError synchronously when closed", async () => {
    const storage = new MemoryStorage();
    await storage.close();
    expect(() => storage.loadGroupSync("g")).toThrow(StorageClosedError);
    expect(() => storage.commitSync([persist("g")])).toThrow(StorageClosedError);
  });

  it("keeps a synchronously loaded image apart from the stored one", () => {
    const storage = new MemoryStorage();
    storage.commitSync([persist("g", { keys: [["k", entry(1)]], requests: [request("r", 1)] })]);
    const image = storage.loadGroupSync("g")!;
    image.keys.clear();
    image.requests.length = 0;
    // A later commit applies to the stored image, not to the caller's copy.
    storage.commitSync([persist("g", { keys: [["k2", entry(2)]] })]);
    const again = storage.loadGroupSync("g")!;
    expect([...again.keys.keys()].sort()).toEqual(["k", "k2"]);
    expect(again.requests).toEqual([request("r", 1)]);
    expect(image.keys.size).toBe(0);
  });
});
