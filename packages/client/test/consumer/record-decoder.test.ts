/**
 * The consumer's own RecordBatch decoder gives exactly what @strand/protocol's decodeRecordBatch
 * gives (keys, values, headers, offsets with gaps, timestamps of both types, compression,
 * large varints), and rejects malformed records with CORRUPT_MESSAGE.
 */
import { CompressionType, RECORD_BATCH_OVERHEAD, TimestampType, decodeRecordBatch, encodeEmptyRecordBatch, encodeRecordBatch, readBatchHeader } from '@strand/protocol';
import type { RecordBatchInput } from '@strand/protocol';
import type { ConsumerRecord } from '../../src/consumer/consumer';
import { decodeBatchInto } from '../../src/consumer/record-decoder';

function viaConsumer(bytes: Buffer, at = 0): ConsumerRecord[] {
  const out: ConsumerRecord[] = [];
  decodeBatchInto(bytes, at, readBatchHeader(bytes, at), 't', 3, out);
  return out;
}

function viaProtocol(bytes: Buffer, at = 0): ConsumerRecord[] {
  const d = decodeRecordBatch(bytes, at);
  const logAppend = d.timestampType === TimestampType.LogAppendTime;
  return d.records.map((r) => ({ topic: 't', partition: 3, offset: r.offset, key: r.key, value: r.value, headers: r.headers, timestamp: logAppend ? d.maxTimestamp : r.timestamp, timestampType: logAppend ? 'LogAppendTime' : 'CreateTime', leaderEpoch: d.partitionLeaderEpoch }));
}

const big = Buffer.alloc(20_000, 7); // a value length needing a 3-byte varint

const inputs: [string, RecordBatchInput][] = [
  ['plain values', { baseOffset: 0, records: [{ value: Buffer.from('a'), timestamp: 1000 }, { value: Buffer.from('bb'), timestamp: 1001 }] }],
  [
    'keys, nulls, headers, offset gaps, far timestamps, a large value',
    {
      baseOffset: 2 ** 40,
      partitionLeaderEpoch: 7,
      records: [
        { key: Buffer.from('k'), value: null, headers: [{ key: 'h1', value: Buffer.from('x') }, { key: 'h2', value: null }], timestamp: 1_700_000_000_000, offsetDelta: 0 },
        { key: null, value: big, timestamp: 1_699_999_000_000, offsetDelta: 5 },
        { key: Buffer.alloc(0), value: Buffer.alloc(0), timestamp: 1_700_000_500_000, offsetDelta: 70_000 },
      ],
    },
  ],
  ['gzip', { baseOffset: 10, compression: CompressionType.Gzip, records: Array.from({ length: 50 }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`value ${i}`), timestamp: 5000 + i })) }],
  ['LogAppendTime', { baseOffset: 3, timestampType: TimestampType.LogAppendTime, records: [{ value: Buffer.from('x'), timestamp: 42 }, { value: Buffer.from('y'), timestamp: 43 }] }],
];

test.each(inputs)('decodes %s exactly like decodeRecordBatch', (_name, input) => {
  const bytes = encodeRecordBatch(input);
  expect(viaConsumer(bytes)).toEqual(viaProtocol(bytes));
  // At an offset inside a larger buffer (a fetch response holds many batches).
  const inside = Buffer.concat([Buffer.alloc(13, 1), bytes, Buffer.alloc(5)]);
  expect(viaConsumer(inside, 13)).toEqual(viaProtocol(inside, 13));
});

test('an empty batch (compaction kept only its header) decodes to no records', () => {
  const bytes = encodeEmptyRecordBatch({ baseOffset: 40, lastOffsetDelta: 3, partitionLeaderEpoch: 2, attributes: 0, maxTimestamp: 1000, producerId: 7, producerEpoch: 1, baseSequence: 9 });
  expect(viaConsumer(bytes)).toEqual([]);
  expect(viaProtocol(bytes)).toEqual([]);
});

test('appends to the records already in the output', () => {
  const out: ConsumerRecord[] = [];
  const a = encodeRecordBatch({ baseOffset: 0, records: [{ value: Buffer.from('a'), timestamp: 1 }] });
  const b = encodeRecordBatch({ baseOffset: 1, records: [{ value: Buffer.from('b'), timestamp: 2 }] });
  decodeBatchInto(a, 0, readBatchHeader(a, 0), 't', 0, out);
  decodeBatchInto(b, 0, readBatchHeader(b, 0), 't', 0, out);
  expect(out.map((r) => [r.offset, r.value?.toString()])).toEqual([
    [0, 'a'],
    [1, 'b'],
  ]);
});

test('malformed records are CORRUPT_MESSAGE or INVALID_RECORD, never a partial result', () => {
  const good = encodeRecordBatch({ baseOffset: 0, records: [{ key: Buffer.from('key'), value: Buffer.from('value'), timestamp: 1 }, { value: Buffer.from('second'), timestamp: 2 }] });
  const first = RECORD_BATCH_OVERHEAD; // the first record's length varint
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };
  // A record length running past the batch.
  expect(() => viaConsumer(mutate((b) => (b[first] = 0x7e)))).toThrow(expect.objectContaining({ errorName: 'CORRUPT_MESSAGE' }));
  // A record length shorter than its fields.
  expect(() => viaConsumer(mutate((b) => (b[first] = (b[first] as number) - 4)))).toThrow(expect.objectContaining({ errorName: 'CORRUPT_MESSAGE' }));
  // The key length (after attributes, timestampDelta, offsetDelta) larger than the record.
  expect(() => viaConsumer(mutate((b) => (b[first + 4] = 0x40)))).toThrow(expect.objectContaining({ errorName: 'CORRUPT_MESSAGE' }));
  // An offsetDelta beyond the batch's lastOffsetDelta.
  expect(() => viaConsumer(mutate((b) => (b[first + 3] = 0x10)))).toThrow(expect.objectContaining({ errorName: 'INVALID_RECORD' }));
  // More records than the batch holds.
  const header = { ...readBatchHeader(good, 0), recordsCount: 3 };
  expect(() => decodeBatchInto(good, 0, header, 't', 0, [])).toThrow(expect.objectContaining({ errorName: 'CORRUPT_MESSAGE' }));
  // A batch longer than the data.
  expect(() => viaConsumer(good.subarray(0, good.length - 1))).toThrow(expect.objectContaining({ errorName: 'CORRUPT_MESSAGE' }));
});
