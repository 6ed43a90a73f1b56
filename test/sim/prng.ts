// A seeded PRNG for the simulation. Nothing in test/sim may use Math.random: a failing seed
// must replay exactly, so every random choice (network, disk, faults, workload, node seeds)
// comes from a stream derived from the seed.
//
// sfc32 seeded through splitmix32: fast, good enough statistically for fault injection, and
// independent streams come from forking with a label, so adding a draw to the workload does
// not shift every network decision of the same seed.

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      // splitmix32
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    // Warm up so nearby seeds diverge at once.
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    if (max < min) throw new Error(`Prng.int: empty range [${min}, ${max}]`);
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Prng.pick: no items");
    return items[this.int(0, items.length - 1)]!;
  }

  /** A random subset order: Fisher-Yates on a copy. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const tmp = out[i]!;
      out[i] = out[j]!;
      out[j] = tmp;
    }
    return out;
  }

  /** An independent stream for one concern, derived from this one's seed and a label. */
  fork(label: string): Prng {
    let h = this.nextU32() ^ 0x811c9dc5;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new Prng(h);
  }
}

/** The stream roots of one seed: forking from a fresh root keeps each concern's stream stable. */
export function seedStreams(seed: number) {
  const root = new Prng(seed);
  return {
    network: root.fork("network"),
    disk: root.fork("disk"),
    faults: root.fork("faults"),
    workload: root.fork("workload"),
    nodes: root.fork("nodes"),
    ticks: root.fork("ticks"),
    tuning: root.fork("tuning"),
    // Forked last: the streams above stay what they were before membership changes existed.
    membership: root.fork("membership"),
  };
}
