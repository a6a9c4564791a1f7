/**
 * The compactor's offset map, as Kafka's SkimpyOffsetMap: a fixed-size open-addressing table from
 * a 128-bit hash of each key to the latest offset seen for it. Keys are never stored, so a pass
 * costs 24 bytes per distinct key outside the JavaScript heap (two typed arrays, sized once)
 * instead of a Map of key strings, whose garbage collection stalled the event loop for 130-310 ms
 * with 1.25M keys, and whose size had no bound.
 *
 * Two keys with the same 128-bit hash would look like one (the older one's latest record would be
 * dropped); Kafka takes the same risk with MD5. The hash is MurmurHash3 x86_128 (Austin Appleby's
 * reference algorithm, 32-bit arithmetic only, so it is fast in JavaScript: ~10x crypto's MD5 for
 * short keys).
 */

/** Bytes per slot: four 32-bit hash words and a float64 offset. */
export const OFFSET_MAP_SLOT_BYTES = 24;

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function word(b: Uint8Array, i: number): number {
  return (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24);
}

/** The tail's bytes [from, to) as a little-endian word (what the reference's switch builds). */
function tailWord(b: Uint8Array, from: number, to: number): number {
  let k = 0;
  for (let i = to - 1; i >= from; i--) k = (k << 8) | (b[i] as number);
  return k;
}

/**
 * MurmurHash3 x86_128 of `key[start, end)` (default: all of it) with `seed`, into `out` (h1..h4 as
 * signed 32-bit integers). A range, so the compactor hashes keys where they lie in a batch
 * without a view object per key.
 */
export function murmur3x86128(key: Uint8Array, seed: number, out: Int32Array, start = 0, end = key.length): void {
  const len = end - start;
  const blocksEnd = end - (len % 16);
  let h1 = seed | 0;
  let h2 = seed | 0;
  let h3 = seed | 0;
  let h4 = seed | 0;
  for (let i = start; i < blocksEnd; i += 16) {
    let k1 = word(key, i);
    let k2 = word(key, i + 4);
    let k3 = word(key, i + 8);
    let k4 = word(key, i + 12);
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  const rest = end - blocksEnd;
  if (rest > 12) h4 ^= Math.imul(rotl(Math.imul(tailWord(key, blocksEnd + 12, end), C4), 18), C1);
  if (rest > 8) h3 ^= Math.imul(rotl(Math.imul(tailWord(key, blocksEnd + 8, Math.min(end, blocksEnd + 12)), C3), 17), C4);
  if (rest > 4) h2 ^= Math.imul(rotl(Math.imul(tailWord(key, blocksEnd + 4, Math.min(end, blocksEnd + 8)), C2), 16), C3);
  if (rest > 0) h1 ^= Math.imul(rotl(Math.imul(tailWord(key, blocksEnd, Math.min(end, blocksEnd + 4)), C1), 15), C2);
  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  out[0] = h1;
  out[1] = (h2 + h1) | 0;
  out[2] = (h3 + h1) | 0;
  out[3] = (h4 + h1) | 0;
}

/** Key hash -> latest offset, for at most `capacity` distinct keys. */
export class OffsetMap {
  private readonly words: Int32Array;
  /**
   * Offset + 1 of each slot's key; 0 marks an empty slot, so a new table needs no fill (a large
   * zeroed typed array costs next to nothing until written: filling 5M slots took ~190 ms).
   */
  private readonly offsets: Float64Array;
  private readonly slots: number;
  private entries = 0;
  private readonly hash = new Int32Array(4);

  /**
   * A table for `capacity` keys filled at most to `loadFactor` (Kafka's
   * log.cleaner.io.buffer.load.factor): it takes capacity / loadFactor slots.
   */
  constructor(
    readonly capacity: number,
    loadFactor: number,
  ) {
    this.slots = Math.max(1, Math.ceil(capacity / loadFactor), capacity + 1);
    this.words = new Int32Array(this.slots * 4);
    this.offsets = new Float64Array(this.slots);
  }

  /** Distinct keys held. */
  get size(): number {
    return this.entries;
  }

  get isFull(): boolean {
    return this.entries >= this.capacity;
  }

  /**
   * Records `offset` as the latest of the key `key[start, end)` (default: all of `key`); the
   * larger one wins if the key is there.
   */
  put(key: Uint8Array, offset: number, start = 0, end = key.length): void {
    const i = this.find(key, start, end);
    const held = (this.offsets[i] as number) - 1;
    if (held < 0) {
      // A bug if reached: the compactor checks isFull before each segment's keys go in.
      if (this.entries >= this.capacity) throw new Error('offset map: full');
      const h = this.hash;
      const w = this.words;
      const at = i * 4;
      w[at] = h[0] as number;
      w[at + 1] = h[1] as number;
      w[at + 2] = h[2] as number;
      w[at + 3] = h[3] as number;
      this.entries++;
    }
    if (offset > held) this.offsets[i] = offset + 1;
  }

  /** The latest offset of the key `key[start, end)` (default: all of `key`), or -1 when the map does not hold it. */
  get(key: Uint8Array, start = 0, end = key.length): number {
    return (this.offsets[this.find(key, start, end)] as number) - 1;
  }

  /** The slot holding the key's hash, or the empty slot where it would go (linear probing). */
  private find(key: Uint8Array, start: number, end: number): number {
    const h = this.hash;
    murmur3x86128(key, 0, h, start, end);
    const w = this.words;
    let i = (h[0] as number) >>> 0;
    i %= this.slots;
    for (;;) {
      if (this.offsets[i] === 0) return i;
      const at = i * 4;
      if (w[at] === h[0] && w[at + 1] === h[1] && w[at + 2] === h[2] && w[at + 3] === h[3]) return i;
      i = i + 1 === this.slots ? 0 : i + 1;
    }
  }
}
