/**
 * RecordBatch v2 codec. Checks our bytes against fixtures produced independently of our encoder:
 * (1) a batch written out by hand from Kafka's published layout, with the CRC from a bitwise
 * reference CRC-32C; (2) kafkajs' own RecordBatch encoder and decoder, run in the test.
 * Then round-trip property tests (fast-check), validation of malformed input with typed errors,
 * in-place stamping, and the compactor's key-only walk checked against the full decoder.
 */
import fc from 'fast-check';
import Long = require('kafkajs/src/utils/long');
import { RecordBatch as KafkaJsRecordBatch } from 'kafkajs/src/protocol/recordBatch/v0';
import KafkaJsRecord = require('kafkajs/src/protocol/recordBatch/record/v0');
import kafkaJsDecode = require('kafkajs/src/protocol/recordBatch/v0/decoder');
import KafkaJsDecoder = require('kafkajs/src/protocol/decoder');
import {
  CompressionType,
  RECORD_BATCH_OVERHEAD,
  StrandError,
  TimestampType,
  crc32c,
  decodeRecordBatch,
  encodeEmptyRecordBatch,
  encodeRecordBatch,
  readBatchHeader,
  stampBatch,
  validateBatch,
  validateBatches,
  walkRecordKeys,
  type RecordInput,
} from '../src';

/** Bitwise CRC-32C (reflected polynomial 0x82F63B78): slow, obviously correct, independent. */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function expectError(fn: () => unknown, name: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e: unknown) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(StrandError);
  expect((thrown as StrandError).errorName).toBe(name);
}

describe('crc32c', () => {
  it('matches the standard check value and the bitwise reference', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => crc32c(b) === referenceCrc32c(b)));
  });
});

describe('hand-written fixture', () => {
  // One record: key "k", value "hello", one header ("h" -> "v"), timestamp 1700000000000,
  // baseOffset 5, leader epoch 3, idempotent producer 42/1, baseSequence 7.
  const body = Buffer.from([
    // attributes int16 = 0 (no compression, CreateTime)
    0x00, 0x00,
    // lastOffsetDelta int32 = 0
    0x00, 0x00, 0x00, 0x00,
    // baseTimestamp int64 = 1700000000000 = 0x0000018BCFE56800
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,
    // maxTimestamp int64 (same)
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00,
    // producerId int64 = 42
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,
    // producerEpoch int16 = 1
    0x00, 0x01,
    // baseSequence int32 = 7
    0x00, 0x00, 0x00, 0x07,
    // recordsCount int32 = 1
    0x00, 0x00, 0x00, 0x01,
    // record: length varint = zigzag(16) = 32 = 0x20 (1 attr + 1 ts + 1 offset + 2 key + 6 value + 5 headers)
    0x20,
    // attributes int8, timestampDelta varlong 0, offsetDelta varint 0
    0x00, 0x00, 0x00,
    // key: length zigzag(1) = 2, "k"
    0x02, 0x6b,
    // value: length zigzag(5) = 10, "hello"
    0x0a, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
    // headers count zigzag(1) = 2; key len 2 "h"; value len 2 "v"
    0x02, 0x02, 0x68, 0x02, 0x76,
  ]);
  const crc = referenceCrc32c(body);
  const prefix = Buffer.alloc(21);
  prefix.writeBigInt64BE(5n, 0); // baseOffset
  prefix.writeInt32BE(body.length + 9, 8); // batchLength: epoch(4) + magic(1) + crc(4) + body
  prefix.writeInt32BE(3, 12); // partitionLeaderEpoch
  prefix.writeInt8(2, 16); // magic
  prefix.writeUInt32BE(crc, 17);
  const fixture = Buffer.concat([prefix, body]);

  it('is what our encoder writes', () => {
    const ours = encodeRecordBatch({
      baseOffset: 5,
      partitionLeaderEpoch: 3,
      producerId: 42,
      producerEpoch: 1,
      baseSequence: 7,
      records: [{ key: Buffer.from('k'), value: Buffer.from('hello'), headers: [{ key: 'h', value: Buffer.from('v') }], timestamp: 1_700_000_000_000 }],
    });
    expect(ours.toString('hex')).toBe(fixture.toString('hex'));
  });

  it('decodes to the fields written by hand', () => {
    const b = decodeRecordBatch(fixture);
    expect(b).toMatchObject({ baseOffset: 5, partitionLeaderEpoch: 3, magic: 2, producerId: 42, producerEpoch: 1, baseSequence: 7, recordsCount: 1, lastOffsetDelta: 0, baseTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_000_000, compression: CompressionType.None, timestampType: TimestampType.CreateTime, isTransactional: false, isControl: false });
    expect(b.records).toHaveLength(1);
    const r = b.records[0]!;
    expect(r.offset).toBe(5);
    expect(r.timestamp).toBe(1_700_000_000_000);
    expect(r.key?.toString()).toBe('k');
    expect(r.value?.toString()).toBe('hello');
    expect(r.headers.map((h) => [h.key, h.value && Buffer.from(h.value).toString()])).toEqual([['h', 'v']]);
  });
});

describe('kafkajs as an independent peer', () => {
  async function kafkaJsBatch(records: RecordInput[], baseTimestamp: number, compression: number, extra: { producerId?: number; producerEpoch?: number; firstSequence?: number; partitionLeaderEpoch?: number; firstOffset?: number } = {}): Promise<Buffer> {
    const encoded = await KafkaJsRecordBatch({
      compression,
      firstOffset: Long.fromValue(extra.firstOffset ?? 0),
      firstTimestamp: baseTimestamp,
      maxTimestamp: Math.max(...records.map((r) => r.timestamp ?? baseTimestamp)),
      partitionLeaderEpoch: extra.partitionLeaderEpoch ?? 0,
      lastOffsetDelta: records.length - 1,
      producerId: Long.fromValue(extra.producerId ?? -1),
      producerEpoch: extra.producerEpoch ?? 0,
      firstSequence: extra.firstSequence ?? 0,
      records: records.map((r, i) =>
        KafkaJsRecord({
          offsetDelta: i,
          timestampDelta: (r.timestamp ?? baseTimestamp) - baseTimestamp,
          key: r.key ? Buffer.from(r.key) : null,
          value: r.value ? Buffer.from(r.value) : null,
          headers: Object.fromEntries((r.headers ?? []).map((h) => [h.key, Buffer.from(h.value ?? [])])),
        }),
      ),
    });
    return encoded.buffer;
  }

  const records: RecordInput[] = [
    { key: Buffer.from('user-1'), value: Buffer.from('{"a":1}'), timestamp: 1_650_000_000_000 },
    { key: null, value: Buffer.from('no key'), timestamp: 1_650_000_000_123, headers: [{ key: 'trace', value: Buffer.from('abc') }] },
    { key: Buffer.from('k3'), value: Buffer.alloc(300, 7), timestamp: 1_649_999_999_000 },
  ];

  it('byte-identical for an uncompressed idempotent batch', async () => {
    const theirs = await kafkaJsBatch(records, 1_650_000_000_000, 0, { producerId: 9001, producerEpoch: 2, firstSequence: 100, partitionLeaderEpoch: 4, firstOffset: 77 });
    const ours = encodeRecordBatch({ records, baseTimestamp: 1_650_000_000_000, producerId: 9001, producerEpoch: 2, baseSequence: 100, partitionLeaderEpoch: 4, baseOffset: 77 });
    expect(ours.toString('hex')).toBe(theirs.toString('hex'));
    validateBatch(theirs);
  });

  it('byte-identical for an empty batch (the header compaction keeps for a producer\'s last batch)', async () => {
    const T = 1_650_000_000_000;
    const encoded = await KafkaJsRecordBatch({ compression: 0, firstOffset: Long.fromValue(77), firstTimestamp: T, maxTimestamp: T, partitionLeaderEpoch: 4, lastOffsetDelta: 2, producerId: Long.fromValue(9001), producerEpoch: 2, firstSequence: 100, records: [] });
    // A gzip batch with a delete horizon: the empty one is uncompressed and has none (Kafka's writeEmptyHeader).
    const ours = encodeEmptyRecordBatch({ baseOffset: 77, lastOffsetDelta: 2, partitionLeaderEpoch: 4, attributes: CompressionType.Gzip | 0x40, maxTimestamp: T, producerId: 9001, producerEpoch: 2, baseSequence: 100 });
    expect(ours.toString('hex')).toBe(encoded.buffer.toString('hex'));
    expect(validateBatch(ours)).toMatchObject({ baseOffset: 77, lastOffsetDelta: 2, recordsCount: 0, attributes: 0, baseSequence: 100 });
    expect(decodeRecordBatch(ours).records).toEqual([]);
  });

  it('decodes a kafkajs gzip batch', async () => {
    const theirs = await kafkaJsBatch(records, 1_650_000_000_000, CompressionType.Gzip);
    const b = decodeRecordBatch(theirs);
    expect(b.compression).toBe(CompressionType.Gzip);
    expect(b.records.map((r) => [r.key?.toString() ?? null, r.value?.toString('hex'), r.timestamp])).toEqual(
      records.map((r) => [r.key ? Buffer.from(r.key).toString() : null, Buffer.from(r.value!).toString('hex'), r.timestamp]),
    );
  });

  it('kafkajs decodes our gzip batch', async () => {
    const ours = encodeRecordBatch({ records, baseTimestamp: 1_650_000_000_000, compression: CompressionType.Gzip, baseOffset: 10 });
    const decoded = await kafkaJsDecode(new KafkaJsDecoder(ours));
    expect(decoded.records.map((r) => [r.offset, r.key?.toString() ?? null, r.value?.toString('hex'), r.timestamp])).toEqual(
      records.map((r, i) => [String(10 + i), r.key ? Buffer.from(r.key).toString() : null, Buffer.from(r.value!).toString('hex'), String(r.timestamp)]),
    );
    expect(decoded.records[1]!.headers['trace']!.toString()).toBe('abc');
  });
});

const recordArb: fc.Arbitrary<RecordInput> = fc.record({
  key: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
  value: fc.option(fc.uint8Array({ maxLength: 200 }), { nil: null }),
  headers: fc.array(fc.record({ key: fc.string({ maxLength: 10 }), value: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }) }), { maxLength: 3 }),
  timestamp: fc.integer({ min: 0, max: 4_000_000_000_000 }),
});

describe('round trip (property)', () => {
  it('decode(encode(x)) === x for any records, compression and header fields', () => {
    fc.assert(
      fc.property(
        fc.array(recordArb, { minLength: 1, maxLength: 20 }),
        fc.constantFrom(CompressionType.None, CompressionType.Gzip),
        fc.integer({ min: 0, max: 2 ** 48 }),
        fc.integer({ min: -1, max: 2 ** 31 - 1 }),
        fc.boolean(),
        (records, compression, baseOffset, epoch, transactional) => {
          const buf = encodeRecordBatch({ records, compression, baseOffset, partitionLeaderEpoch: epoch, isTransactional: transactional, producerId: 5, producerEpoch: 0, baseSequence: 0 });
          const b = decodeRecordBatch(buf);
          expect(b.baseOffset).toBe(baseOffset);
          expect(b.partitionLeaderEpoch).toBe(epoch);
          expect(b.isTransactional).toBe(transactional);
          expect(b.recordsCount).toBe(records.length);
          expect(b.maxTimestamp).toBe(Math.max(...records.map((r) => r.timestamp!)));
          b.records.forEach((r, i) => {
            const want = records[i]!;
            expect(r.offset).toBe(baseOffset + i);
            expect(r.timestamp).toBe(want.timestamp);
            expect(r.key === null ? null : Buffer.from(r.key).toString('hex')).toBe(want.key == null ? null : Buffer.from(want.key).toString('hex'));
            expect(r.value === null ? null : Buffer.from(r.value).toString('hex')).toBe(want.value === null ? null : Buffer.from(want.value).toString('hex'));
            expect(r.headers.map((h) => [h.key, h.value === null ? null : Buffer.from(h.value).toString('hex')])).toEqual(
              (want.headers ?? []).map((h) => [h.key, h.value === null ? null : Buffer.from(h.value).toString('hex')]),
            );
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('stamping keeps the CRC valid and changes only offset and epoch', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 2 ** 50 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (records, offset, epoch) => {
        const buf = encodeRecordBatch({ records });
        const before = Buffer.from(buf);
        stampBatch(buf, 0, offset, epoch);
        const h = validateBatch(buf);
        expect(h.baseOffset).toBe(offset);
        expect(h.partitionLeaderEpoch).toBe(epoch);
        expect(buf.subarray(16).equals(before.subarray(16))).toBe(true);
      }),
    );
  });
});

describe('validation of bad input', () => {
  const good = encodeRecordBatch({ records: [{ key: null, value: Buffer.from('x'.repeat(100)) }], baseTimestamp: 1 });

  it('accepts a concatenation of valid batches', () => {
    const two = Buffer.concat([good, good]);
    expect(validateBatches(two).map((v) => v.position)).toEqual([0, good.length]);
  });
  it('rejects a wrong magic with UNSUPPORTED_VERSION', () => {
    const b = Buffer.from(good);
    b[16] = 1;
    expectError(() => validateBatch(b), 'UNSUPPORTED_VERSION');
  });
  it('rejects a flipped bit with CORRUPT_MESSAGE (CRC)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 21 * 8, max: good.length * 8 - 1 }), (bit) => {
        const b = Buffer.from(good);
        b[bit >> 3]! ^= 1 << (bit & 7);
        expectError(() => validateBatch(b), 'CORRUPT_MESSAGE');
      }),
    );
  });
  it('rejects a length past the end of the data', () => {
    expectError(() => validateBatch(good.subarray(0, good.length - 1)), 'CORRUPT_MESSAGE');
    const b = Buffer.from(good);
    b.writeInt32BE(good.length * 2, 8);
    expectError(() => validateBatch(b), 'CORRUPT_MESSAGE');
    expectError(() => validateBatches(Buffer.concat([good, good.subarray(0, 30)])), 'CORRUPT_MESSAGE');
  });
  it('rejects a length smaller than a header', () => {
    const b = Buffer.from(good);
    b.writeInt32BE(10, 8);
    expectError(() => validateBatch(b), 'CORRUPT_MESSAGE');
  });
  it('rejects a batch over max.message.bytes with MESSAGE_TOO_LARGE', () => {
    expectError(() => validateBatch(good, 0, { maxBatchBytes: good.length - 1 }), 'MESSAGE_TOO_LARGE');
    expect(validateBatch(good, 0, { maxBatchBytes: good.length }).recordsCount).toBe(1);
  });
  it('rejects malformed records inside a batch with a valid CRC', () => {
    // Corrupt the record length, then re-checksum so only record parsing can catch it.
    const b = Buffer.from(good);
    b[RECORD_BATCH_OVERHEAD] = 0x7e; // a record length far past the end
    b.writeUInt32BE(crc32c(b.subarray(21)), 17);
    expectError(() => decodeRecordBatch(b), 'CORRUPT_MESSAGE');
  });
  it('rejects an unsupported codec with UNSUPPORTED_COMPRESSION_TYPE', () => {
    const b = Buffer.from(good);
    b.writeInt16BE(CompressionType.Zstd, 21);
    b.writeUInt32BE(crc32c(b.subarray(21)), 17);
    expect(readBatchHeader(b).attributes).toBe(CompressionType.Zstd);
    expectError(() => decodeRecordBatch(b), 'UNSUPPORTED_COMPRESSION_TYPE');
  });
  it('rejects an empty batch on encode', () => {
    expectError(() => encodeRecordBatch({ records: [] }), 'INVALID_RECORD');
  });
});

describe('walkRecordKeys (the compactor\'s key-only walk) against decodeRecordBatch', () => {
  interface Visit {
    key: string | null;
    offset: number;
    valueIsNull: boolean;
  }
  /** What the walk reports, keys as hex. */
  const walk = (buf: Buffer, stopAfter = Infinity): { visits: Visit[]; complete: boolean } => {
    const visits: Visit[] = [];
    const complete = walkRecordKeys(buf, 0, (block, keyStart, keyLength, offset, valueIsNull) => {
      visits.push({ key: keyLength < 0 ? null : block.toString('hex', keyStart, keyStart + keyLength), offset, valueIsNull });
      return visits.length < stopAfter;
    });
    return { visits, complete };
  };
  /** What the full decoder says of the same records. */
  const decoded = (buf: Buffer): Visit[] =>
    decodeRecordBatch(buf).records.map((r) => ({ key: r.key === null ? null : r.key.toString('hex'), offset: r.offset, valueIsNull: r.value === null }));

  /** Batches as the compactor meets them: compressed or not, offset gaps, a delete horizon. */
  const batchArb = fc
    .record({
      records: fc.array(recordArb, { maxLength: 20 }),
      gaps: fc.array(fc.nat(5), { minLength: 20, maxLength: 20 }),
      compression: fc.constantFrom(CompressionType.None, CompressionType.Gzip),
      baseOffset: fc.integer({ min: 0, max: 2 ** 48 }),
      horizon: fc.option(fc.integer({ min: 0, max: 4_000_000_000_000 }), { nil: undefined }),
      extraLastDelta: fc.nat(3),
    })
    .map(({ records, gaps, compression, baseOffset, horizon, extraLastDelta }) => {
      if (records.length === 0) return encodeEmptyRecordBatch({ baseOffset, lastOffsetDelta: extraLastDelta, partitionLeaderEpoch: 0, attributes: 0, maxTimestamp: 1, producerId: 3, producerEpoch: 0, baseSequence: 0 });
      let delta = -1;
      const withDeltas = records.map((r, i) => {
        delta += 1 + (gaps[i] ?? 0);
        return { ...r, offsetDelta: delta };
      });
      return encodeRecordBatch({ records: withDeltas, compression, baseOffset, deleteHorizonMs: horizon, lastOffsetDelta: delta + extraLastDelta });
    });

  it('reports each record\'s key bytes, offset and null value as decodeRecordBatch decodes them (null keys, tombstones, headers, gzip, offset gaps)', () => {
    fc.assert(
      fc.property(batchArb, (buf) => {
        const { visits, complete } = walk(buf);
        expect(complete).toBe(true);
        expect(visits).toEqual(decoded(buf));
      }),
      { numRuns: 300 },
    );
  });

  it('stops when the visitor returns false, having visited the records up to it', () => {
    fc.assert(
      fc.property(batchArb, fc.nat(25), (buf, stopAfter) => {
        const all = decoded(buf);
        const { visits, complete } = walk(buf, stopAfter + 1);
        expect(complete).toBe(stopAfter + 1 > all.length);
        expect(visits).toEqual(all.slice(0, stopAfter + 1));
      }),
    );
  });

  it('rejects a corrupt records section exactly when decodeRecordBatch does, with the same error', () => {
    const errorOf = (fn: () => unknown): string | null => {
      try {
        fn();
        return null;
      } catch (e: unknown) {
        expect(e).toBeInstanceOf(StrandError);
        return (e as StrandError).errorName;
      }
    };
    fc.assert(
      fc.property(
        batchArb.filter((b) => b.length > RECORD_BATCH_OVERHEAD && readBatchHeader(b).attributes === 0),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        (good, edits) => {
          // Bytes of the records section changed, the CRC recomputed: only record parsing can tell.
          const b = Buffer.from(good);
          for (const [at, byte] of edits) b[RECORD_BATCH_OVERHEAD + (at % (b.length - RECORD_BATCH_OVERHEAD))] = byte;
          b.writeUInt32BE(crc32c(b.subarray(21)), 17);
          const expected = errorOf(() => decodeRecordBatch(b));
          expect(errorOf(() => walk(b))).toBe(expected);
          if (expected === null) expect(walk(b).visits).toEqual(decoded(b));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('checks the CRC unless told to skip it, and an unknown codec as decodeRecordBatch does', () => {
    const good = encodeRecordBatch({ records: [{ key: Buffer.from('k'), value: null }], baseTimestamp: 1 });
    const flipped = Buffer.from(good);
    flipped[17]! ^= 1; // the stored CRC
    expectError(() => walkRecordKeys(flipped, 0, () => true), 'CORRUPT_MESSAGE');
    expect(walkRecordKeys(flipped, 0, () => true, { skipCrc: true })).toBe(true);
    const zstd = Buffer.from(good);
    zstd.writeInt16BE(CompressionType.Zstd, 21);
    zstd.writeUInt32BE(crc32c(zstd.subarray(21)), 17);
    expectError(() => walkRecordKeys(zstd, 0, () => true), 'UNSUPPORTED_COMPRESSION_TYPE');
  });
});
