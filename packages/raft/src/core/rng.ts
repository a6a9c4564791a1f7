// A small seeded pseudo-random generator. The Raft core takes one from its caller so that a
// whole cluster run is a pure function of one seed (the simulator's contract); production
// drivers seed it from crypto randomness.

/** Source of randomness for the core: an integer in [0, n). */
export interface Rng {
  nextInt(n: number): number;
}

/**
 * sfc32 ("small fast counter"): 128 bits of state, passes PractRand far beyond our needs, and
 * uses only 32-bit integer arithmetic, so it is fast and identical on every platform.
 */
export class SeededRng implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // Spread the seed over the state with splitmix32 so that close seeds diverge at once.
    let s = seed >>> 0;
    const next = (): number => {
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
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  nextInt(n: number): number {
    if (!(n > 0)) throw new Error(`nextInt: n must be positive, got ${n}`);
    return Math.floor((this.nextU32() / 0x1_0000_0000) * n);
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.nextU32() / 0x1_0000_0000 < p;
  }

  /** A child generator, so that one subsystem's draws do not shift another's. */
  fork(): SeededRng {
    return new SeededRng(this.nextU32());
  }
}
