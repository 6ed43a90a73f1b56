// The storage layer's public surface: the interface, both engines, the group-commit writer
// and the typed errors callers branch on.

export type { Storage } from "./storage.js";
export { assertStorableBatch } from "./storage.js";
export { MemoryStorage } from "./memory.js";
export { LevelStorage, LAYOUT_VERSION } from "./leveldb.js";
export { StorageWriter, type StorageWriterOptions, type StorageWriterStats, type BatchReport } from "./writer.js";
export * from "./errors.js";
