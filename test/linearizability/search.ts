// Wing & Gong's search for a linearization, with Lowe's memoisation (as in Knossos and
// Porcupine), over the ops of one key-group.
//
// The history becomes a doubly linked list of events in time order: an op's call at its
// invocation, and for an op answered ok its return at its completion. At any point the ops
// that may be linearized next are those whose call comes before the first return still in the
// list (an op cannot take effect before it was invoked, and the op of that first return must
// take effect before it completed). Placing one removes its call and return (lift), pushes a
// frame, and starts again from the head; a return reached with nothing placeable backtracks.
// The cache holds every (set of placed ops, model state) pair already explored: reaching one
// again cannot succeed where it failed before, which is what keeps the search polynomial on
// the histories real systems produce.
//
// Ops whose outcome is unknown have no return: they may take effect at any point after
// invocation, or never; the search succeeds once every ok op is placed. They are tried only
// after every ok op that could go at the same point: most never took effect where the search
// stands, and placing them first would explore (and cache) states nobody needs.
//
// A write with an unknown outcome whose version nothing revealed ("lazy": the model gives it
// no log position) is only worth placing right before an op that it changes: if that next op
// could go in the state before the lazy write and would leave the same state, the write is
// absorbed (a put overwritten before anyone saw it) and "never took effect" is the same
// linearization, explored anyway. This keeps timed-out writes that nobody observed from
// multiplying the search. The memo key of a state reached by a lazy write names that write,
// since what may follow it is restricted.
//
// A linearizable get that can go now, while no other op left to place has a lower log
// position (model.ts: no write at a version <= its index, no get at a lower index), goes now
// and nothing else is tried in its place: any linearization that places it later can place it
// here instead (it reads the same entry, since values are unique and nothing can bring its
// value back; and what follows it sits at higher positions, so the floor it sets stops
// nothing). Without this, c concurrent gets make 2^c subsets for the memo to tell apart.

import type { GroupState, ModelOp } from "./model.js";
import { initialState, step } from "./model.js";

export interface SearchOp extends ModelOp {
  /** Answered ok: must take effect between invocation and completion. */
  readonly mustTakeEffect: boolean;
}

/** The furthest the search got: the longest linearizable prefix and the op it could not place. */
export interface Deepest {
  /** Indexes into the ops, in linearization order. */
  readonly linearized: readonly number[];
  readonly state: GroupState;
  /** The op whose completion came before it could be placed. */
  readonly blocked: number;
  /** The ops not placed whose call came before that completion: the ones that could go next. */
  readonly candidates: readonly number[];
}

export type SearchResult =
  | { readonly kind: "linearizable"; readonly steps: number; readonly linearized: readonly number[] }
  | { readonly kind: "violation"; readonly steps: number; readonly deepest: Deepest }
  | { readonly kind: "budget"; readonly steps: number; readonly deepest: Deepest | null };

const CALL = 0;
const RETURN = 1;

interface Frame {
  readonly node: number;
  readonly pass: number;
  readonly op: number;
  readonly before: GroupState;
  readonly hash1: number;
  readonly hash2: number;
  readonly alternatives: readonly GroupState[];
  readonly alternative: number;
  /** Placed as the only op worth trying here (see above): undoing it undoes this state too. */
  readonly forced: boolean;
}

/** `budget`: the most model steps to try before giving up (a "budget" result, never a hang). */
export function search(ops: readonly SearchOp[], budget: number): SearchResult {
  const list = buildList(ops);
  const { next, prev, kind, opOf, returnOf, head } = list;
  const end = -1;
  const lift = (call: number) => {
    unlink(call);
    const r = returnOf[call]!;
    if (r >= 0) unlink(r);
  };
  const unlift = (call: number) => {
    const r = returnOf[call]!;
    if (r >= 0) relink(r);
    relink(call);
  };
  function unlink(n: number) {
    const p = prev[n]!;
    const x = next[n]!;
    next[p] = x;
    if (x !== end) prev[x] = p;
  }
  function relink(n: number) {
    const p = prev[n]!;
    const x = next[n]!;
    next[p] = n;
    if (x !== end) prev[x] = n;
  }

  // Zobrist hashing of the set of placed ops: two random 32-bit words per op, XORed in and
  // out in O(1); 64 bits make a collision (which would wrongly prune) negligible.
  const zobrist1 = new Int32Array(ops.length);
  const zobrist2 = new Int32Array(ops.length);
  let seed = 0x9e3779b9;
  const random = () => {
    // xorshift32: deterministic, so a run replays exactly.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed | 0;
  };
  for (let i = 0; i < ops.length; i++) {
    zobrist1[i] = random();
    zobrist2[i] = random();
  }

  const lazy = ops.map((o) => !o.mustTakeEffect && o.version === null);

  const positions = new Positions(ops, () => true);
  // An ok op whose position is below the floor can never be placed any more (the floor only
  // rises): a state that leaves one behind is a dead end now, not at that op's completion,
  // perhaps hundreds of placements later, which would be searched in between for nothing.
  const required = new Positions(ops, (o) => o.mustTakeEffect);
  const isEager = (op: number) => {
    const o = ops[op]!.op;
    return o.call.f === "get" && positions.lowerThan(positionOf(ops[op]!)!) === 0;
  };

  const cache = new Set<string>();
  const stack: Frame[] = [];
  let state = initialState;
  let hash1 = 0;
  let hash2 = 0;
  const mustTotal = ops.filter((o) => o.mustTakeEffect).length;
  let remaining = mustTotal;
  let deepestOk = -1;
  let steps = 0;
  let deepest: Deepest | null = null;

  /** Places ops[op] with the first of its alternative states not seen before. */
  const place = (node: number, pass: number, op: number, alternatives: readonly GroupState[], from: number, forced = false): boolean => {
    const h1 = hash1 ^ zobrist1[op]!;
    const h2 = hash2 ^ zobrist2[op]!;
    required.remove(op);
    for (let a = from; a < alternatives.length; a++) {
      const after = alternatives[a]!;
      if (required.lowerThan(after.floor) > 0) continue;
      const key = lazy[op] ? `${h1}:${h2}:${after.id}|${op}` : `${h1}:${h2}:${after.id}`;
      if (cache.has(key)) continue;
      cache.add(key);
      stack.push({ node, pass, op, before: state, hash1, hash2, alternatives, alternative: a, forced });
      state = after;
      positions.remove(op);
      hash1 = h1;
      hash2 = h2;
      lift(node);
      if (ops[op]!.mustTakeEffect) remaining--;
      return true;
    }
    required.add(op);
    return false;
  };

  // pass 1 tries the ok ops before the first return, pass 2 the unknown ones.
  let node = next[head]!;
  let pass = 1;
  for (;;) {
    if (remaining === 0) return { kind: "linearizable", steps, linearized: stack.map((f) => f.op) };
    if (node === end || kind[node] === RETURN) {
      if (pass === 1) {
        pass = 2;
        node = next[head]!;
        continue;
      }
      // Nothing placeable before this completion: backtrack.
      // Furthest by ok ops placed: writes of unknown outcome placed in passing are no progress.
      if (deepest === null || mustTotal - remaining > deepestOk) {
        deepest = snapshot(node);
        deepestOk = mustTotal - remaining;
      }
      for (;;) {
        const frame = stack.pop();
        if (frame === undefined) return { kind: "violation", steps, deepest: deepest! };
        unlift(frame.node);
        positions.add(frame.op);
        required.add(frame.op);
        state = frame.before;
        hash1 = frame.hash1;
        hash2 = frame.hash2;
        if (ops[frame.op]!.mustTakeEffect) remaining++;
        if (place(frame.node, frame.pass, frame.op, frame.alternatives, frame.alternative + 1, frame.forced)) {
          node = next[head]!;
          pass = 1;
          break;
        }
        if (frame.forced) continue; // nothing else can succeed from that state: back up further
        // Lowe: try the ops after the one undone, in the same pass.
        node = next[frame.node]!;
        pass = frame.pass;
        break;
      }
      continue;
    }
    const op = opOf[node]!;
    if ((pass === 1) !== ops[op]!.mustTakeEffect) {
      node = next[node]!;
      continue;
    }
    const top = stack[stack.length - 1];
    const afterLazy = top !== undefined && lazy[top.op]!;
    if (++steps > budget) return { kind: "budget", steps, deepest: deepest ?? snapshot(node) };
    const result = step(state, ops[op]!, false);
    if (result.ok && !(afterLazy && absorbs(top.before, op, result.states)) && place(node, pass, op, result.states, 0, isEager(op))) {
      node = next[head]!;
      pass = 1;
    } else {
      node = next[node]!;
    }
  }

  /** Whether ops[op] placed without the lazy write before it gives the same states. */
  function absorbs(before: GroupState, op: number, states: readonly GroupState[]): boolean {
    const without = step(before, ops[op]!, false);
    return without.ok && without.states.length === states.length && without.states.every((s, i) => s.id === states[i]!.id);
  }

  function snapshot(at: number): Deepest {
    // The first return still in the list is the op that had to be placed by then.
    let blockedNode = at;
    while (blockedNode !== end && kind[blockedNode] !== RETURN) blockedNode = next[blockedNode]!;
    const candidates: number[] = [];
    for (let n = next[head]!; n !== end && n !== blockedNode; n = next[n]!) if (kind[n] === CALL) candidates.push(opOf[n]!);
    const blocked = blockedNode === end ? (candidates[0] ?? -1) : opOf[blockedNode]!;
    // Lazy writes placed last only tried to help and failed: report the state before them.
    let kept = stack.length;
    while (kept > 0 && lazy[stack[kept - 1]!.op]) kept--;
    const before = kept === stack.length ? state : stack[kept]!.before;
    return { linearized: stack.slice(0, kept).map((f) => f.op), state: before, blocked, candidates: candidates.filter((c) => c !== blocked) };
  }
}

interface EventList {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  readonly kind: Uint8Array;
  readonly opOf: Int32Array;
  /** For a call node: its return node, or -1 (unknown outcome). */
  readonly returnOf: Int32Array;
  readonly head: number;
}

function buildList(ops: readonly SearchOp[]): EventList {
  const events: { time: number; kind: number; op: number }[] = [];
  ops.forEach((o, i) => {
    events.push({ time: o.op.invokedAt, kind: CALL, op: i });
    if (o.mustTakeEffect) events.push({ time: o.op.completedAt!, kind: RETURN, op: i });
  });
  // At equal times calls go first: ops that touch in time are treated as concurrent, so a
  // clock's resolution never manufactures a violation.
  events.sort((a, b) => a.time - b.time || a.kind - b.kind || a.op - b.op);
  const n = events.length;
  const head = n;
  const next = new Int32Array(n + 1);
  const prev = new Int32Array(n + 1);
  const kind = new Uint8Array(n + 1);
  const opOf = new Int32Array(n + 1);
  const returnOf = new Int32Array(n + 1).fill(-1);
  const callNode = new Int32Array(ops.length);
  events.forEach((e, i) => {
    kind[i] = e.kind;
    opOf[i] = e.op;
    if (e.kind === CALL) callNode[e.op] = i;
    else returnOf[callNode[e.op]!] = i;
  });
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i === 0 ? head : i - 1;
  }
  next[head] = n > 0 ? 0 : -1;
  prev[head] = -1;
  return { next, prev, kind, opOf, returnOf, head };
}

/** The log position an op is known to take (model.ts), or null when it has none. */
export function positionOf(o: SearchOp): number | null {
  const r = o.op.result;
  if (r?.f === "get") return 2 * r.index + 1;
  return o.version === null ? null : 2 * o.version;
}

/** Counts of the ops not yet placed by log position (a Fenwick tree over the positions used). */
class Positions {
  private readonly rank: Int32Array;
  private readonly tree: Int32Array;

  constructor(ops: readonly SearchOp[], counted: (o: SearchOp) => boolean) {
    const known = ops.map((o) => (counted(o) ? positionOf(o) : null));
    const sorted = [...new Set(known.filter((p): p is number => p !== null))].sort((a, b) => a - b);
    const rankOf = new Map(sorted.map((p, i) => [p, i + 1]));
    this.rank = Int32Array.from(known, (p) => (p === null ? 0 : rankOf.get(p)!));
    this.tree = new Int32Array(sorted.length + 1);
    this.sorted = sorted;
    for (let i = 0; i < ops.length; i++) this.add(i);
  }

  private readonly sorted: number[];

  add(op: number): void {
    this.update(this.rank[op]!, 1);
  }

  remove(op: number): void {
    this.update(this.rank[op]!, -1);
  }

  /** How many ops not placed have a position below `position`. */
  lowerThan(position: number): number {
    // The number of used positions below it is the rank to sum up to.
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]! < position) lo = mid + 1;
      else hi = mid;
    }
    let sum = 0;
    for (let i = lo; i > 0; i -= i & -i) sum += this.tree[i]!;
    return sum;
  }

  private update(rank: number, delta: number): void {
    if (rank === 0) return;
    for (let i = rank; i < this.tree.length; i += i & -i) this.tree[i]! += delta;
  }
}
