/**
 * The compactor's offset map: MurmurHash3 x86_128 as the reference computes it (vectors from the
 * murmurhash3js-revisited package, which follows Appleby's C++), and the table's semantics
 * (latest offset wins, absent keys, probing past occupied slots, capacity), keys given as a range
 * of a larger buffer.
 */
import fc from 'fast-check';
import { OffsetMap, murmur3x86128 } from '../src/offset-map';

const hex = (key: string, seed: number): string => {
  const out = new Int32Array(4);
  murmur3x86128(Buffer.from(key), seed, out);
  return [...out].map((w) => (w >>> 0).toString(16).padStart(8, '0')).join('');
};

test.each([
  ['', 0, '00000000000000000000000000000000'],
  ['a', 0, 'a794933c5556b01b5556b01b5556b01b'],
  ['abc', 0, '75cdc6d1a2b006a5a2b006a5a2b006a5'],
  ['The quick brown fox jumps over the lazy dog', 0, '2f1583c3ecee2c675d7bf66ce5e91d2c'],
  ['0123456789abcdef', 0, 'fb7d440936aed30a48ad1d9b572b3bfd'],
  ['0123456789abcdefX', 0, '1c4db7771a9aa2d3c20e16245b179223'],
  ['0123456789abcdef0123456789abcd', 7, 'f0f4a64135f90e286257054753968e29'],
  ['0123456789abc', 42, 'e7974dc13b512cbc0a987eb079adcaca'],
])('murmur3 x86_128(%j, seed %d) = %s', (key, seed, expected) => {
  expect(hex(key, seed)).toBe(expected);
});

test('holds the latest offset of each key, like a Map, up to its capacity', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.nat(1_000_000)), { maxLength: 200 }), (puts) => {
      const model = new Map<string, number>();
      for (const [k, o] of puts) model.set(k, Math.max(o, model.get(k) ?? -1));
      // As full as it may get: every slot but the ones the load factor keeps free is probed past.
      const map = new OffsetMap(Math.max(1, model.size), 0.9);
      for (const [k, o] of puts) map.put(Buffer.from(k), o);
      expect(map.size).toBe(model.size);
      for (const [k, o] of model) expect(map.get(Buffer.from(k))).toBe(o);
      expect(map.get(Buffer.from('\u0000absent'))).toBe(-1);
    }),
  );
});

test('is full at its capacity: an existing key still updates, a new one is refused', () => {
  const map = new OffsetMap(2, 1);
  map.put(Buffer.from('a'), 1);
  map.put(Buffer.from('b'), 2);
  expect(map.isFull).toBe(true);
  map.put(Buffer.from('a'), 3);
  expect(map.get(Buffer.from('a'))).toBe(3);
  expect(() => map.put(Buffer.from('c'), 4)).toThrow('offset map: full');
});

test('hashes a key where it lies in a larger buffer as it hashes the key alone', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), fc.integer(), (before, key, after, seed) => {
      const alone = new Int32Array(4);
      const inPlace = new Int32Array(4);
      murmur3x86128(key, seed, alone);
      murmur3x86128(Buffer.concat([before, key, after]), seed, inPlace, before.length, before.length + key.length);
      expect([...inPlace]).toEqual([...alone]);
    }),
  );
});

test('put and get take a key as a range of a buffer, the same key as a buffer of its own', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.nat(1_000_000), fc.string({ maxLength: 5 })), { maxLength: 100 }), (puts) => {
      const whole = new OffsetMap(Math.max(1, puts.length), 0.9);
      const ranged = new OffsetMap(Math.max(1, puts.length), 0.9);
      for (const [k, o, pad] of puts) {
        whole.put(Buffer.from(k), o);
        const p = Buffer.byteLength(pad);
        const buf = Buffer.from(pad + k + pad);
        ranged.put(buf, o, p, buf.length - p);
      }
      expect(ranged.size).toBe(whole.size);
      for (const [k, , pad] of puts) {
        const p = Buffer.byteLength(pad);
        const buf = Buffer.from(pad + k + pad);
        expect(ranged.get(buf, p, buf.length - p)).toBe(whole.get(Buffer.from(k)));
      }
    }),
  );
});
