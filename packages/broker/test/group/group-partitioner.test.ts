/**
 * Group -> __consumer_offsets partition is Kafka's `Utils.abs(groupId.hashCode()) % n`: checked
 * against well-known Java String.hashCode values ("hello", the "Aa"/"BB" collision, the
 * string hashing to Integer.MIN_VALUE) and Kafka's abs of MIN_VALUE.
 */
import { groupPartitionFor, javaStringHashCode, kafkaAbs } from '../../src/group/group-partitioner';

test('javaStringHashCode matches Java', () => {
  expect(javaStringHashCode('')).toBe(0);
  expect(javaStringHashCode('a')).toBe(97);
  expect(javaStringHashCode('hello')).toBe(99162322);
  expect(javaStringHashCode('Aa')).toBe(2112);
  expect(javaStringHashCode('BB')).toBe(2112);
  // Overflows wrap in int32 as in Java: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
  expect(javaStringHashCode('polygenelubricants')).toBe(-2147483648);
  // UTF-16 code units, not code points or bytes: "é" is one unit (233).
  expect(javaStringHashCode('é')).toBe(233);
});

test('Kafka Utils.abs maps MIN_VALUE to 0 and partitions are abs % n', () => {
  expect(kafkaAbs(-2147483648)).toBe(0);
  expect(kafkaAbs(-5)).toBe(5);
  expect(groupPartitionFor('polygenelubricants', 50)).toBe(0);
  expect(groupPartitionFor('Aa', 50)).toBe(2112 % 50);
  expect(groupPartitionFor('BB', 50)).toBe(groupPartitionFor('Aa', 50));
  expect(groupPartitionFor('hello', 7)).toBe(99162322 % 7);
  expect(() => groupPartitionFor('g', 0)).toThrow(RangeError);
});
