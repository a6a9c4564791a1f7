/**
 * The compactor's offset map, as Kafka's SkimpyOffsetMap: a fixed-size open-addressing table from
 * a 128-bit hash of each key to the latest offset seen for it. Keys are never stored, so a pass
 * costs 24 bytes per distinct key outside the JavaScript heap (two typed arrays, sized once)
 * instead of a Map of key strings, whose garbage collection stalled the event loop for 130-310 ms
 * with 1.25M keys, and whose size had no bound.
 *
 * Two keys with the same 128-bit hash look like one: the older one's latest record would be
 * dropped, an acknowledged write lost. Kafka takes that risk with MD5, and this map took it with
 * MurmurHash3 (seed 0): colliding keys can be crafted for both, for MurmurHash3 whatever its seed
 * (Aumasson, Bernstein, Boßlet, "Hash-flooding DoS reloaded", 2012), so any client allowed to
 * produce to a compacted topic could make the cleaner delete someone else's latest value. The
 * hash is therefore a keyed PRF: SipHash-2-4 with 128-bit output (the reference's `siphash` with
 * outlen 16; its authors designed SipHash against this very attack) under a secret random key per map.
 * The compactor draws one per pass and never logs or persists it, so what anyone learnt of one
 * pass tells nothing of the next. Without the key, the chance that n keys, however chosen, hold
 * two with one hash is about n^2/2^129, as for a random function (below 2^-68 for a billion keys);
 * and no one can aim keys at one probe chain either (the slot is the hash's low word).
 */

/** Bytes per slot: four 32-bit hash words and a float64 offset. */
export const OFFSET_MAP_SLOT_BYTES = 24;

/** Bytes of an offset map's hash key (SipHash's 128-bit key). */
export const OFFSET_MAP_HASH_KEY_BYTES = 16;

/**
 * A SipHash key, prepared: SipHash-2-4-128's initial state v0..v3 (each as low, high 32-bit
 * word), the key xored with the constants ("somepseudorandomlygeneratedbytes") and v1 with 0xee.
 */
export type SipHashKey = Int32Array;

function le32(b: Uint8Array, i: number): number {
  return (b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24);
}

/** The state of `key` (16 bytes: k0, k1 little-endian) before any message word. */
export function sipHashKey(key: Uint8Array): SipHashKey {
  if (key.length !== OFFSET_MAP_HASH_KEY_BYTES) throw new Error(`siphash: a key has 16 bytes, not ${key.length}`);
  const k0l = le32(key, 0);
  const k0h = le32(key, 4);
  const k1l = le32(key, 8);
  const k1h = le32(key, 12);
  return Int32Array.of(k0l ^ 0x70736575, k0h ^ 0x736f6d65, k1l ^ 0x6e646f6d ^ 0xee, k1h ^ 0x646f7261, k0l ^ 0x6e657261, k0h ^ 0x6c796765, k1l ^ 0x79746573, k1h ^ 0x74656462);
}

/**
 * SipHash-2-4 with 128-bit output (the reference's `siphash(in, inlen, k, out, 16)`) of
 * `data[start, end)` (default: all of it) under `key`, into `out`: the 16 output bytes as four
 * little-endian 32-bit words (signed). A range, so the compactor hashes keys where they lie in a
 * batch without a view object per key.
 *
 * 64-bit words are kept as pairs of 32-bit halves (JavaScript has no fast 64-bit integers: BigInt
 * allocates): additions carry from the low half to the high one, rotations exchange bits between
 * them. The state lives in locals, the rounds inline, so a call allocates nothing.
 */
export function siphash128(key: SipHashKey, data: Uint8Array, out: Int32Array, start = 0, end = data.length): void {
  let v0l = key[0] as number;
  let v0h = key[1] as number;
  let v1l = key[2] as number;
  let v1h = key[3] as number;
  let v2l = key[4] as number;
  let v2h = key[5] as number;
  let v3l = key[6] as number;
  let v3h = key[7] as number;
  let s: number;
  let t: number;
  const len = end - start;
  const blocksEnd = end - (len & 7);
  // Phases: each message word (2 rounds), the last word with the length (2 rounds), then two
  // finalizations (4 rounds each), one per 64-bit half of the output.
  let i = start;
  let ml = 0;
  let mh = 0;
  for (let phase = 0; phase < 4; ) {
    let rounds = 2;
    if (phase === 0) {
      if (i < blocksEnd) {
        ml = le32(data, i);
        mh = le32(data, i + 4);
        i += 8;
      } else {
        // The last word: the 0-7 remaining bytes, and the length's low byte as its top byte.
        ml = 0;
        mh = (len & 0xff) << 24;
        const rest = end - i;
        for (let j = rest - 1; j >= 4; j--) mh |= (data[i + j] as number) << ((j - 4) * 8);
        for (let j = Math.min(rest, 4) - 1; j >= 0; j--) ml |= (data[i + j] as number) << (j * 8);
        phase = 1;
      }
      v3l ^= ml;
      v3h ^= mh;
    } else if (phase === 2) {
      v2l ^= 0xee;
      rounds = 4;
    } else {
      v1l ^= 0xdd;
      rounds = 4;
    }
    for (let r = 0; r < rounds; r++) {
      // SipRound. a += b as halves: the low sum's carry is the top bit of (a & b) | ((a | b) & ~sum).
      s = (v0l + v1l) | 0;
      v0h = (v0h + v1h + (((v0l & v1l) | ((v0l | v1l) & ~s)) >>> 31)) | 0;
      v0l = s;
      // v1 = rotl(v1, 13) ^ v0
      t = (v1h << 13) | (v1l >>> 19);
      v1l = ((v1l << 13) | (v1h >>> 19)) ^ v0l;
      v1h = t ^ v0h;
      // v0 = rotl(v0, 32)
      t = v0l;
      v0l = v0h;
      v0h = t;
      // v2 += v3
      s = (v2l + v3l) | 0;
      v2h = (v2h + v3h + (((v2l & v3l) | ((v2l | v3l) & ~s)) >>> 31)) | 0;
      v2l = s;
      // v3 = rotl(v3, 16) ^ v2
      t = (v3h << 16) | (v3l >>> 16);
      v3l = ((v3l << 16) | (v3h >>> 16)) ^ v2l;
      v3h = t ^ v2h;
      // v0 += v3
      s = (v0l + v3l) | 0;
      v0h = (v0h + v3h + (((v0l & v3l) | ((v0l | v3l) & ~s)) >>> 31)) | 0;
      v0l = s;
      // v3 = rotl(v3, 21) ^ v0
      t = (v3h << 21) | (v3l >>> 11);
      v3l = ((v3l << 21) | (v3h >>> 11)) ^ v0l;
      v3h = t ^ v0h;
      // v2 += v1
      s = (v2l + v1l) | 0;
      v2h = (v2h + v1h + (((v2l & v1l) | ((v2l | v1l) & ~s)) >>> 31)) | 0;
      v2l = s;
      // v1 = rotl(v1, 17) ^ v2
      t = (v1h << 17) | (v1l >>> 15);
      v1l = ((v1l << 17) | (v1h >>> 15)) ^ v2l;
      v1h = t ^ v2h;
      // v2 = rotl(v2, 32)
      t = v2l;
      v2l = v2h;
      v2h = t;
    }
    if (phase <= 1) {
      v0l ^= ml;
      v0h ^= mh;
      if (phase === 1) phase = 2;
    } else if (phase === 2) {
      out[0] = v0l ^ v1l ^ v2l ^ v3l;
      out[1] = v0h ^ v1h ^ v2h ^ v3h;
      phase = 3;
    } else {
      out[2] = v0l ^ v1l ^ v2l ^ v3l;
      out[3] = v0h ^ v1h ^ v2h ^ v3h;
      phase = 4;
    }
  }
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
  private readonly hashKey: SipHashKey;

  /**
   * A table for `capacity` keys filled at most to `loadFactor` (Kafka's
   * log.cleaner.io.buffer.load.factor): it takes capacity / loadFactor slots. `hashKey` (16
   * bytes) keys the hash: it must be secret and random (the compactor draws one per pass), or
   * colliding keys can be crafted.
   */
  constructor(
    readonly capacity: number,
    loadFactor: number,
    hashKey: Uint8Array,
  ) {
    this.hashKey = sipHashKey(hashKey);
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
    siphash128(this.hashKey, key, h, start, end);
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
