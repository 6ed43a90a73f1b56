// Reads `perf report --no-children --sort comm,dso,sym -g none --stdio` lines on stdin and sums
// their shares by kind of work (bench/cpuTime.sh). The kinds are coarse on purpose: which part
// of the stack the CPUs run, not which function.
import { createInterface } from "node:readline";

const GC = /Scaveng|MarkCompact|Sweep|Marking|Heap::|Evacuat|GCTracer|MinorM|Compactor|GlobalHandles|MemoryAllocator|BasicMemoryChunk|Page::|Marker/;
const ALLOC = /^(_int_malloc|_int_free|malloc|free|cfree@|malloc_consolidate|unlink_chunk|__libc_calloc|calloc|realloc|_int_realloc|tcache)/;
const kinds = new Map();
const add = (k, v) => kinds.set(k, (kinds.get(k) ?? 0) + v);

for await (const line of createInterface({ input: process.stdin })) {
  const m = /^\s*([\d.]+)%\s+(\S+)\s+(\[JIT\] tid \d+|\[[^\]]+\]|\S+)\s+\[([.k])\]\s+(.*)$/.exec(line);
  if (m === null) continue;
  const [, pct, comm, dso, , sym] = m;
  const v = Number(pct);
  if (comm === "swapper") add("idle", v);
  else if (comm === "nats-server") add("nats-server (all of it)", v);
  else if (comm !== "node") add("other processes (kernel threads, bench tooling)", v);
  else if (dso === "[kernel.kallsyms]") add("node: kernel (syscalls, context switches, TCP loopback, fsync)", v);
  else if (dso.startsWith("[JIT]")) add("node: optimised JavaScript (ours and libraries)", v);
  else if (dso === "classic-level.node" || dso.startsWith("libstdc++")) add("node: LevelDB (memtable, WAL, compaction, snappy, crc)", v);
  else if (dso === "libc.so.6" && ALLOC.test(sym)) add("node: malloc/free", v);
  else if (dso === "libc.so.6") add("node: libc other (memcpy, syscall wrappers, futex)", v);
  else if (dso === "node" && GC.test(sym)) add("node: garbage collection", v);
  else if (dso === "node" && /^Builtins_/.test(sym)) add("node: V8 builtins (interpreter, promises, Map, typed arrays, calls)", v);
  else if (dso === "node") add("node: V8 runtime and Node/libuv C++", v);
  else add(`node: ${dso}`, v);
}
for (const [k, v] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`${v.toFixed(1).padStart(6)}%  ${k}`);
