/**
 * Checks the partitioners. murmur2 against Apache Kafka's own UtilsTest.testMurmur2 vectors, and
 * `toPositive(murmur2(key)) % n` against partitions computed independently by a straight Python
 * port of Java's Utils.murmur2 (explicit 32-bit wrapping), so a key lands where the Java client
 * puts it. The sticky partitioner is checked with a seeded random source.
 */
import { StickyPartitioner, murmur2, partitionForKey, toPositive } from '../../src/producer/partitioner';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

describe('murmur2', () => {
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
    ['', 275646681],
  ])('hashes %j like Kafka (%d)', (input, expected) => {
    expect(murmur2(b(input))).toBe(expected);
  });

  it('handles bytes above 0x7f like Java signed bytes masked with 0xff', () => {
    expect(murmur2(Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]))).toBe(-868190774);
  });

  it('toPositive clears the sign bit (not Math.abs)', () => {
    expect(toPositive(-2147483648)).toBe(0);
    expect(toPositive(-1)).toBe(2147483647);
  });
});

describe('partitionForKey (Java default partitioner)', () => {
  // [key, partitions for n = 3, 6, 12, 50, 100]
  it.each([
    ['21', [0, 0, 0, 40, 40]],
    ['foobar', [0, 0, 6, 16, 66]],
    ['abc', [0, 3, 3, 7, 7]],
    ['key', [1, 1, 1, 31, 81]],
    ['a-little-bit-long-string', [2, 2, 8, 12, 12]],
    ['user-42', [1, 4, 4, 10, 60]],
  ] as [string, number[]][])('places %j as the Java client does', (key, expected) => {
    expect([3, 6, 12, 50, 100].map((n) => partitionForKey(b(key), n))).toEqual(expected);
  });
});

describe('StickyPartitioner', () => {
  function seeded(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 4294967296;
    };
  }

  it('sticks to one partition until batch.size bytes went there, then moves to another', () => {
    const sp = new StickyPartitioner(1000, seeded(7));
    const all = [0, 1, 2, 3];
    const first = sp.partition('t', 400, 4, all);
    expect(sp.partition('t', 400, 4, all)).toBe(first);
    expect(sp.partition('t', 400, 4, all)).toBe(first); // 1200 >= 1000 after this one
    const next = sp.partition('t', 400, 4, all);
    expect(next).not.toBe(first);
  });

  it('only picks partitions that have a leader, and keeps topics apart', () => {
    const sp = new StickyPartitioner(10, seeded(1));
    for (let i = 0; i < 50; i++) expect([1, 3]).toContain(sp.partition('a', 20, 4, [1, 3]));
    expect(sp.partition('b', 1, 1, [0])).toBe(0);
  });

  it('partitionFromMetadata makes the same choices from partition metadata and moves off a partition that lost its leader', () => {
    const parts = [0, 1, 2, 3].map((partition) => ({ partition, leaderId: partition === 2 ? -1 : 7 }));
    const a = new StickyPartitioner(1000, seeded(3));
    const b = new StickyPartitioner(1000, seeded(3));
    for (let i = 0; i < 40; i++) expect(b.partitionFromMetadata('t', 300, parts)).toBe(a.partition('t', 300, 4, [0, 1, 3]));
    const current = b.partitionFromMetadata('t', 1, parts);
    (parts[current] as { leaderId: number }).leaderId = -1;
    const moved = b.partitionFromMetadata('t', 1, parts);
    expect(moved).not.toBe(current);
    expect((parts[moved] as { leaderId: number }).leaderId).toBe(7);
  });
});
