/**
 * The consumer's RecordBatch v2 decoder: the records of one fetched batch straight into
 * ConsumerRecord objects. It is the consumer's hottest loop, so unlike the general
 * decodeRecordBatch of @strand/protocol it allocates only what the application receives (the
 * record object, its key/value views and headers) and no per-record cursor or intermediate
 * record, and it reads varints with a module-level position instead of a cursor object.
 *
 * The batch header, CRC-32C (unless skipped) and decompression come from @strand/protocol;
 * malformed record data throws CORRUPT_MESSAGE like decodeRecordBatch does. Keys, values and
 * header values are views of the fetched bytes (no copies).
 */
import { CompressionType, StrandError, batchCompression, compressionCodec, DEFAULT_MAX_DECOMPRESSED_BYTES, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD } from '@strand/protocol';
import type { RecordBatchHeader, RecordHeader } from '@strand/protocol';
import type { ConsumerRecord } from './consumer';

const TIMESTAMP_TYPE_BIT = 0x08;

function corrupt(message: string): StrandError {
  return new StrandError('CORRUPT_MESSAGE', `corrupt record batch: ${message}`);
}

// The read position and limit of the record being decoded (one decode runs at a time: no awaits).
let pos = 0;
let end = 0;

function varint(buf: Buffer): number {
  if (pos >= end) throw corrupt('record runs past the end of its batch');
  const b0 = buf[pos++] as number;
  if (b0 < 0x80) return (b0 >>> 1) ^ -(b0 & 1);
  let result = b0 & 0x7f;
  for (let shift = 7; shift < 35; shift += 7) {
    if (pos >= end) throw corrupt('record runs past the end of its batch');
    const b = buf[pos++] as number;
    result |= (b & 0x7f) << shift;
    if (b < 0x80) {
      result >>>= 0;
      return (result >>> 1) ^ -(result & 1);
    }
  }
  throw corrupt('varint is longer than 5 bytes');
}

function varlong(buf: Buffer): number {
  if (pos >= end) throw corrupt('record runs past the end of its batch');
  const b0 = buf[pos++] as number;
  if (b0 < 0x80) return (b0 >>> 1) ^ -(b0 & 1);
  let result = b0 & 0x7f;
  let mul = 128;
  for (let i = 1; i < 10; i++) {
    if (pos >= end) throw corrupt('record runs past the end of its batch');
    const b = buf[pos++] as number;
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    mul *= 128;
  }
  throw corrupt('varlong is longer than 10 bytes');
}

function nullableBytes(buf: Buffer): Buffer | null {
  const length = varint(buf);
  if (length === -1) return null;
  if (length < -1 || pos + length > end) throw corrupt(`invalid field length ${length}`);
  const out = buf.subarray(pos, pos + length);
  pos += length;
  return out;
}

/**
 * Appends the records of the batch at `at` (with `header`, already read) to `out` as
 * ConsumerRecords of `topic`/`partition`.
 */
export function decodeBatchInto(bytes: Buffer, at: number, header: RecordBatchHeader, topic: string, partition: number, out: ConsumerRecord[]): void {
  const batchEnd = at + header.batchLength + LOG_OVERHEAD;
  if (batchEnd > bytes.length) throw corrupt('batch runs past the end of the data');
  let block = bytes;
  let blockStart = at + RECORD_BATCH_OVERHEAD;
  let blockEnd = batchEnd;
  const compression = batchCompression(header.attributes);
  if (compression !== CompressionType.None) {
    try {
      block = compressionCodec(compression).decompress(bytes.subarray(blockStart, blockEnd), DEFAULT_MAX_DECOMPRESSED_BYTES);
    } catch (e: unknown) {
      throw new StrandError('CORRUPT_MESSAGE', `cannot decompress record batch: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    blockStart = 0;
    blockEnd = block.length;
  }
  const logAppendTime = (header.attributes & TIMESTAMP_TYPE_BIT) !== 0;
  const timestampType = logAppendTime ? 'LogAppendTime' : 'CreateTime';
  const { baseOffset, baseTimestamp, maxTimestamp, lastOffsetDelta, partitionLeaderEpoch: leaderEpoch } = header;
  pos = blockStart;
  for (let i = 0; i < header.recordsCount; i++) {
    end = blockEnd;
    const length = varint(block);
    const recordEnd = pos + length;
    if (length < 0 || recordEnd > blockEnd) throw corrupt(`record length ${length} runs past the end of its batch`);
    end = recordEnd;
    pos++; // attributes: unused in v2
    const timestampDelta = varlong(block);
    const offsetDelta = varint(block);
    const key = nullableBytes(block);
    const value = nullableBytes(block);
    const headerCount = varint(block);
    if (headerCount < 0) throw corrupt(`negative header count ${headerCount}`);
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      const hk = nullableBytes(block);
      if (hk === null) throw corrupt('null header key');
      headers.push({ key: hk.toString('utf8'), value: nullableBytes(block) });
    }
    if (pos !== recordEnd) throw corrupt(`record length ${length} does not match its contents`);
    if (offsetDelta < 0 || offsetDelta > lastOffsetDelta) throw new StrandError('INVALID_RECORD', `offsetDelta ${offsetDelta} outside [0, ${lastOffsetDelta}]`);
    out.push({ topic, partition, offset: baseOffset + offsetDelta, key, value, headers, timestamp: logAppendTime ? maxTimestamp : baseTimestamp + timestampDelta, timestampType, leaderEpoch });
  }
  if (pos !== blockEnd) throw corrupt(`${blockEnd - pos} trailing bytes after ${header.recordsCount} records`);
}
