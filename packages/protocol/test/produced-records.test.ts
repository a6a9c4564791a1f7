/**
 * The leader's record-level checks of a producer's batch (Kafka's LogValidator): every record
 * parses exactly within its length, offset deltas count 0, 1, 2, ..., the records fill the batch,
 * compacted topics get keys, CreateTime timestamps stay within bounds. Malformed record bytes are
 * built by hand under a valid batch CRC, as a hostile or buggy client would send them.
 */
import {
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  ATTRIBUTES_OFFSET,
  CompressionType,
  LAST_OFFSET_DELTA_OFFSET,
  NO_TIMESTAMP,
  RECORDS_COUNT_OFFSET,
  RECORD_BATCH_OVERHEAD,
  LOG_OVERHEAD,
  StrandError,
  TimestampType,
  compressionCodec,
  crc32c,
  decodeRecordBatch,
  encodeRecordBatch,
  readBatchHeader,
  recompressRecordBatch,
  setCreateTimeMaxTimestamp,
  setLogAppendTime,
  validateBatch,
  validateBatches,
  validateProducedRecords,
  type BatchView,
  type ProducedRecordsOptions,
} from '../src';

const T = 1_700_000_000_000;

function errorName(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e: unknown) {
    if (e instanceof StrandError) return e.errorName;
    throw e;
  }
  return undefined;
}

function zigzag(n: number): number[] {
  let v = ((n << 1) ^ (n >> 31)) >>> 0;
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** One record's bytes, length prefix included; `body` overrides the body (for malformed ones). */
function rawRecord(fields: { tsDelta?: number; offsetDelta: number; key?: string | null; value?: string; extra?: number[]; length?: number }): number[] {
  const bytes = (s: string | null | undefined): number[] => (s === null || s === undefined ? zigzag(-1) : [...zigzag(s.length), ...Buffer.from(s)]);
  const body = [0, ...zigzag(fields.tsDelta ?? 0), ...zigzag(fields.offsetDelta), ...bytes(fields.key), ...bytes(fields.value ?? 'v'), ...zigzag(0), ...(fields.extra ?? [])];
  return [...zigzag(fields.length ?? body.length), ...body];
}

/** A batch whose records section is `block` (as declared with `count` records), with a valid CRC. */
function batchOf(block: number[], count: number, compression = CompressionType.None): Buffer {
  const header = encodeRecordBatch({ records: [{ value: Buffer.from('x') }], baseTimestamp: T, compression }).subarray(0, RECORD_BATCH_OVERHEAD);
  const payload = compression === CompressionType.None ? Buffer.from(block) : compressionCodec(compression).compress(Buffer.from(block));
  const buf = Buffer.concat([header, payload]);
  buf.writeInt32BE(buf.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  buf.writeInt32BE(count - 1, LAST_OFFSET_DELTA_OFFSET);
  buf.writeInt32BE(count, RECORDS_COUNT_OFFSET);
  buf.writeUInt32BE(crc32c(buf.subarray(ATTRIBUTES_OFFSET)), CRC_OFFSET);
  return buf;
}

function check(buf: Buffer, options: ProducedRecordsOptions = {}): number {
  const [view] = validateBatches(buf) as [BatchView];
  return validateProducedRecords(buf, view, options);
}

describe('validateProducedRecords', () => {
  it('accepts what the encoder writes, plain and gzip, and returns the largest record timestamp', () => {
    for (const compression of [CompressionType.None, CompressionType.Gzip]) {
      const buf = encodeRecordBatch({
        records: [
          { key: Buffer.from('a'), value: Buffer.from('1'), timestamp: T + 5, headers: [{ key: 'h', value: Buffer.from('x') }, { key: 'n', value: null }] },
          { key: Buffer.from('b'), value: null, timestamp: T + 9 },
          { key: Buffer.from('c'), value: Buffer.alloc(300, 1), timestamp: T + 2 },
        ],
        compression,
      });
      expect(check(buf, { requireKeys: true, timestampBounds: { nowMs: T, beforeMaxMs: 10, afterMaxMs: 10 } })).toBe(T + 9);
    }
    expect(check(batchOf([...rawRecord({ offsetDelta: 0 }), ...rawRecord({ offsetDelta: 1, tsDelta: 7 })], 2))).toBe(T + 7);
  });

  it('refuses offset deltas that do not count 0, 1, 2, ... (duplicate or skipped offsets)', () => {
    expect(errorName(() => check(batchOf([...rawRecord({ offsetDelta: 0 }), ...rawRecord({ offsetDelta: 0 })], 2)))).toBe('INVALID_RECORD');
    expect(errorName(() => check(batchOf([...rawRecord({ offsetDelta: 1 }), ...rawRecord({ offsetDelta: 0 })], 2)))).toBe('INVALID_RECORD');
  });

  it('refuses records that do not parse within their length, and records missing or left over', () => {
    // A stray byte after the headers, inside the record's length.
    expect(errorName(() => check(batchOf([...rawRecord({ offsetDelta: 0, extra: [7] }), ...rawRecord({ offsetDelta: 1 })], 2)))).toBe('INVALID_RECORD');
    // A value length running past the record.
    const body = [0, 0, ...zigzag(0), ...zigzag(-1), ...zigzag(50), 1, 2, 3, 0];
    expect(errorName(() => check(batchOf([...zigzag(body.length), ...body], 1)))).toBe('INVALID_RECORD');
    // The batch declares three records but holds two.
    expect(errorName(() => check(batchOf([...rawRecord({ offsetDelta: 0 }), ...rawRecord({ offsetDelta: 1 })], 3)))).toBe('INVALID_RECORD');
    // The batch declares one record but holds two: bytes left over.
    expect(errorName(() => check(batchOf([...rawRecord({ offsetDelta: 0 }), ...rawRecord({ offsetDelta: 1 })], 1)))).toBe('INVALID_RECORD');
    // A negative header count, a null header key.
    const negHeaders = [0, 0, ...zigzag(0), ...zigzag(-1), ...zigzag(1), 9, ...zigzag(-2)];
    expect(errorName(() => check(batchOf([...zigzag(negHeaders.length), ...negHeaders], 1)))).toBe('INVALID_RECORD');
    const nullHeaderKey = [0, 0, ...zigzag(0), ...zigzag(-1), ...zigzag(1), 9, ...zigzag(1), ...zigzag(-1), ...zigzag(-1)];
    expect(errorName(() => check(batchOf([...zigzag(nullHeaderKey.length), ...nullHeaderKey], 1)))).toBe('INVALID_RECORD');
    // The same checks apply inside a compressed batch.
    expect(errorName(() => check(batchOf([...rawRecord({ offsetDelta: 0 }), ...rawRecord({ offsetDelta: 0 })], 2, CompressionType.Gzip)))).toBe('INVALID_RECORD');
    // A compressed block that does not decompress.
    const garbage = batchOf([1, 2, 3], 1);
    garbage.writeInt16BE(CompressionType.Gzip, ATTRIBUTES_OFFSET);
    garbage.writeUInt32BE(crc32c(garbage.subarray(ATTRIBUTES_OFFSET)), CRC_OFFSET);
    expect(errorName(() => check(garbage))).toBe('INVALID_RECORD');
  });

  it('refuses a keyless record only when keys are required (compacted topics)', () => {
    const keyless = batchOf([...rawRecord({ offsetDelta: 0, key: 'k' }), ...rawRecord({ offsetDelta: 1, key: null })], 2);
    expect(check(keyless)).toBe(T);
    expect(errorName(() => check(keyless, { requireKeys: true }))).toBe('INVALID_RECORD');
  });

  it('refuses CreateTime timestamps outside [now - before, now + after]; a record without a timestamp passes', () => {
    const at = (ts: number): Buffer => encodeRecordBatch({ records: [{ value: Buffer.from('v'), timestamp: ts }] });
    const bounds = { nowMs: T, beforeMaxMs: 1000, afterMaxMs: 100 };
    expect(check(at(T - 1000), { timestampBounds: bounds })).toBe(T - 1000);
    expect(check(at(T + 100), { timestampBounds: bounds })).toBe(T + 100);
    expect(errorName(() => check(at(T - 1001), { timestampBounds: bounds }))).toBe('INVALID_TIMESTAMP');
    expect(errorName(() => check(at(T + 101), { timestampBounds: bounds }))).toBe('INVALID_TIMESTAMP');
    expect(check(at(NO_TIMESTAMP), { timestampBounds: bounds })).toBe(NO_TIMESTAMP);
  });
});

describe('batch rewrites on the leader', () => {
  it('setCreateTimeMaxTimestamp corrects a forged maxTimestamp and clears LogAppendTime, keeping the CRC valid', () => {
    const buf = encodeRecordBatch({ records: [{ value: Buffer.from('v'), timestamp: T }] });
    setLogAppendTime(buf, 0, T + 1e9);
    expect(readBatchHeader(buf).maxTimestamp).toBe(T + 1e9);
    setCreateTimeMaxTimestamp(buf, 0, T);
    const h = validateBatch(buf);
    expect(h.maxTimestamp).toBe(T);
    expect(decodeRecordBatch(buf).timestampType).toBe(TimestampType.CreateTime);
  });

  it('recompressRecordBatch changes the codec and keeps records, offsets and producer fields', () => {
    const original = encodeRecordBatch({
      records: [
        { key: Buffer.from('k'), value: Buffer.from('one'), timestamp: T, headers: [{ key: 'h', value: Buffer.from('x') }] },
        { key: null, value: Buffer.from('two'), timestamp: T + 3 },
      ],
      baseOffset: 40,
      producerId: 7,
      producerEpoch: 2,
      baseSequence: 11,
    });
    const gz = recompressRecordBatch(original, 0, CompressionType.Gzip);
    const back = recompressRecordBatch(gz, 0, CompressionType.None);
    expect(back.equals(original)).toBe(true);
    const d = decodeRecordBatch(gz);
    expect(d.compression).toBe(CompressionType.Gzip);
    expect([d.baseOffset, d.producerId, d.producerEpoch, d.baseSequence, d.lastOffsetDelta, d.maxTimestamp]).toEqual([40, 7, 2, 11, 1, T + 3]);
    expect(d.records.map((r) => [r.offset, r.key?.toString() ?? null, r.value?.toString(), r.timestamp])).toEqual([[40, 'k', 'one', T], [41, null, 'two', T + 3]]);
  });

  it('recompressRecordBatch keeps a LogAppendTime batch\'s append time', () => {
    const buf = encodeRecordBatch({ records: [{ value: Buffer.from('v'), timestamp: T }] });
    setLogAppendTime(buf, 0, T + 5000);
    const d = decodeRecordBatch(recompressRecordBatch(buf, 0, CompressionType.Gzip));
    expect([d.timestampType, d.maxTimestamp, d.records[0]?.timestamp]).toEqual([TimestampType.LogAppendTime, T + 5000, T]);
  });
});
