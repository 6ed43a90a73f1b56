// The simulation's virtual clock and pending events: a binary min-heap ordered by
// (time, insertion order). Ties break by insertion order so that a run is a pure function of
// its seed, never of heap internals.

export interface Scheduled<E> {
  readonly at: number;
  readonly seq: number;
  readonly event: E;
}

export class EventQueue<E> {
  private readonly heap: Scheduled<E>[] = [];
  private seq = 0;
  /** Virtual time in ms: the time of the event being handled. Never goes backwards. */
  now = 0;

  get size(): number {
    return this.heap.length;
  }

  schedule(at: number, event: E): void {
    if (!(at >= this.now)) throw new Error(`EventQueue: scheduled in the past (${at} < ${this.now})`);
    const item: Scheduled<E> = { at, seq: this.seq++, event };
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  }

  /** Removes the next event and advances the clock to it; null when nothing is pending. */
  pop(): Scheduled<E> | null {
    const heap = this.heap;
    if (heap.length === 0) return null;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(heap[r]!, heap[l]!) ? r : l;
        if (!before(heap[c]!, last)) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
    }
    this.now = top.at;
    return top;
  }

  peekTime(): number | null {
    return this.heap.length === 0 ? null : this.heap[0]!.at;
  }
}

function before<E>(a: Scheduled<E>, b: Scheduled<E>): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
