// A tiny seeded PRNG (xorshift32) for retry jitter. The core never calls Math.random, so a
// run is a pure function of its inputs and its seed, and the simulation replays exactly.

/** Mixes a seed into a non-zero xorshift32 state. */
export function seedRng(seed: number): number {
  let x = (seed ^ 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x === 0 ? 0x6d2b79f5 : x;
}

/** Advances the state; returns [next state, a float in [0, 1)]. */
export function nextRandom(rng: number): [number, number] {
  let x = rng;
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  x >>>= 0;
  return [x, x / 0x100000000];
}
