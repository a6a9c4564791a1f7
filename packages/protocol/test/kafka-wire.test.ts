/** The shared Kafka-wire primitives: round trips, nulls, and typed errors for malformed input. */
import { KafkaReader, KafkaWriter, StrandError } from '../src';

test('round-trips every primitive, nulls included', () => {
  const bytes = new KafkaWriter().int16(-2).int32(70000).int64(2 ** 40 + 5).string('héllo').string(null).bytes(Buffer.from([1, 2, 3])).bytes(null).bytes(new Uint8Array([9])).int32(2).done();
  const r = new KafkaReader(bytes);
  expect(r.int16()).toBe(-2);
  expect(r.int32()).toBe(70000);
  expect(r.int64()).toBe(2 ** 40 + 5);
  expect(r.string()).toBe('héllo');
  expect(r.nullableString()).toBeNull();
  expect([...r.bytes()]).toEqual([1, 2, 3]);
  expect(r.nullableBytes()).toBeNull();
  expect([...r.bytes()]).toEqual([9]);
  expect(r.count(10)).toBe(2);
  expect(r.remaining).toBe(0);
  r.end();
});

test('malformed input throws the error the caller names, with the format in the message', () => {
  const fail = (f: (r: KafkaReader) => unknown, bytes: Buffer): StrandError => {
    try {
      f(new KafkaReader(bytes, 'INCONSISTENT_GROUP_PROTOCOL', 'consumer protocol bytes'));
    } catch (e: unknown) {
      if (e instanceof StrandError) return e;
      throw e;
    }
    throw new Error('no error thrown');
  };
  const truncated = fail((r) => r.string(), new KafkaWriter().string('abc').done().subarray(0, 4));
  expect(truncated.errorName).toBe('INCONSISTENT_GROUP_PROTOCOL');
  expect(truncated.message).toMatch(/consumer protocol bytes: truncated/);
  expect(fail((r) => r.string(), new KafkaWriter().string(null).done()).message).toMatch(/null where a string/);
  expect(fail((r) => r.bytes(), new KafkaWriter().int32(-5).done()).message).toMatch(/negative bytes length/);
  expect(fail((r) => r.count(10), new KafkaWriter().int32(11).done()).message).toMatch(/implausible array length 11/);
  expect(fail((r) => r.int64(), new KafkaWriter().int32(0x7fffffff).int32(0).done()).message).toMatch(/safe range/);
  expect(fail((r) => (r.int16(), r.end()), new KafkaWriter().int32(1).done()).message).toMatch(/2 trailing bytes/);
  expect(new KafkaReader(Buffer.alloc(1)).remaining).toBe(1);
  expect(() => new KafkaReader(Buffer.alloc(1)).int16()).toThrow(expect.objectContaining({ errorName: 'CORRUPT_MESSAGE' }));
  expect(() => new KafkaWriter().string('x'.repeat(40000))).toThrow(/does not fit an int16 length/);
});

test('bytes read are copies, not views of the input', () => {
  const input = new KafkaWriter().bytes(Buffer.from('abc')).done();
  const out = new KafkaReader(input).bytes();
  input.fill(0);
  expect(out.toString()).toBe('abc');
});
