/**
 * Kafka RecordBatch v2 (magic 2), byte for byte: the format of records on the wire and on disk.
 *
 * Batch (all integers big-endian):
 *
 *   offset  size  field
 *        0     8  baseOffset            int64   stamped by the leader on append
 *        8     4  batchLength           int32   bytes after this field (total size - 12)
 *       12     4  partitionLeaderEpoch  int32   stamped by the leader on append
 *       16     1  magic                 int8    = 2
 *       17     4  crc                   uint32  CRC-32C of bytes [21, end)
 *       21     2  attributes            int16   bits 0-2 compression, 3 timestamp type
 *                                               (0 create, 1 log-append), 4 transactional,
 *                                               5 control, 6 has delete horizon
 *       23     4  lastOffsetDelta       int32
 *       27     8  baseTimestamp         int64   (the delete horizon when bit 6 is set)
 *       35     8  maxTimestamp          int64
 *       43     8  producerId            int64   -1 when not idempotent
 *       51     2  producerEpoch         int16
 *       53     4  baseSequence          int32
 *       57     4  recordsCount          int32
 *       61     …  records               (compressed as one block when compression != 0)
 *
 * Record (varint = zigzag LEB128 int32, varlong = zigzag LEB128 int64):
 *
 *   length varint | attributes int8 (unused, 0) | timestampDelta varlong | offsetDelta varint |
 *   keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value |
 *   headersCount varint | headers: (keyLength varint | key utf8 | valueLength varint | value)*
 *
 * baseOffset and partitionLeaderEpoch lie outside the CRC, which is what lets a leader stamp them
 * in place without re-checksumming. Encoders here never mutate their input; `stampBatch` is the
 * one deliberate in-place writer. 64-bit fields are JS numbers: exact below 2^53, which offsets,
 * timestamps in ms and producer ids stay far under.
 */
import { crc32c } from './crc32c';
import { CompressionType, compressionCodec } from './compression';
import { StrandError } from './errors';

export const MAGIC_V2 = 2;
/** Size of the batch header, up to and including recordsCount. */
export const RECORD_BATCH_OVERHEAD = 61;
/** baseOffset + batchLength: the bytes not counted by batchLength. */
export const LOG_OVERHEAD = 12;

export const BASE_OFFSET_OFFSET = 0;
export const BATCH_LENGTH_OFFSET = 8;
export const PARTITION_LEADER_EPOCH_OFFSET = 12;
export const MAGIC_OFFSET = 16;
export const CRC_OFFSET = 17;
export const ATTRIBUTES_OFFSET = 21;
export const LAST_OFFSET_DELTA_OFFSET = 23;
export const BASE_TIMESTAMP_OFFSET = 27;
export const MAX_TIMESTAMP_OFFSET = 35;
export const PRODUCER_ID_OFFSET = 43;
export const PRODUCER_EPOCH_OFFSET = 51;
export const BASE_SEQUENCE_OFFSET = 53;
export const RECORDS_COUNT_OFFSET = 57;

const COMPRESSION_MASK = 0x07;
const TIMESTAMP_TYPE_BIT = 0x08;
const TRANSACTIONAL_BIT = 0x10;
const CONTROL_BIT = 0x20;
const DELETE_HORIZON_BIT = 0x40;

export enum TimestampType {
  CreateTime = 0,
  LogAppendTime = 1,
}

/** No producer id / epoch / sequence: the batch is not idempotent. */
export const NO_PRODUCER_ID = -1;
export const NO_PRODUCER_EPOCH = -1;
export const NO_SEQUENCE = -1;
/** A record or batch without a timestamp. */
export const NO_TIMESTAMP = -1;

/** Upper bound on a decompressed records block, unless the caller passes a tighter one. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024;

export interface RecordHeader {
  key: string;
  value: Uint8Array | null;
}

/** A record to encode. `timestamp` defaults to the batch's base timestamp. */
export interface RecordInput {
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: readonly RecordHeader[];
  timestamp?: number;
  /** Offset within the batch; defaults to the record's index. Compaction keeps the originals. */
  offsetDelta?: number;
}

export interface RecordBatchInput {
  records: readonly RecordInput[];
  /** Batch timestamps are derived from the records; required when a record has no timestamp. */
  baseTimestamp?: number;
  baseOffset?: number;
  partitionLeaderEpoch?: number;
  compression?: CompressionType;
  timestampType?: TimestampType;
  isTransactional?: boolean;
  isControl?: boolean;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  /** Defaults to the largest record offsetDelta; compaction keeps the original batch's. */
  lastOffsetDelta?: number;
  /** When set, bit 6 is set and baseTimestamp carries the delete horizon (KIP-534). */
  deleteHorizonMs?: number;
  /**
   * LogAppendTime batches: the broker's append time, written as maxTimestamp (the timestamp
   * every record of such a batch reads as). Default: the largest record timestamp. A rewrite of
   * a stored batch (compaction, recompression) passes the original's, as Kafka's filterTo keeps it.
   */
  logAppendTimeMs?: number;
}

/** The fixed-size header of a batch, read without touching the records. */
export interface RecordBatchHeader {
  baseOffset: number;
  batchLength: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordsCount: number;
}

export interface DecodedRecord {
  offset: number;
  offsetDelta: number;
  timestamp: number;
  timestampDelta: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
}

export interface DecodedRecordBatch extends RecordBatchHeader {
  compression: CompressionType;
  timestampType: TimestampType;
  isTransactional: boolean;
  isControl: boolean;
  hasDeleteHorizon: boolean;
  records: DecodedRecord[];
}

// ---------------------------------------------------------------------------------------------
// varints

function varintSize(value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  let n = 1;
  while (v >= 0x80) {
    v >>>= 7;
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, pos: number, value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/** Zigzag for 64-bit values held in a JS number (exact for |value| < 2^52). */
function zigzag64(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

function varlongSize(value: number): number {
  let v = zigzag64(value);
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarlong(buf: Buffer, pos: number, value: number): number {
  let v = zigzag64(value);
  while (v >= 0x80) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

/** A bounds-checked cursor over a records block; malformed input throws CORRUPT_MESSAGE. */
class Cursor {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    /** Reads past this throw; the produced-batch walker moves it record by record. */
    public end: number,
  ) {
    this.pos = start;
  }

  private byte(): number {
    if (this.pos >= this.end) throw corrupt('record runs past the end of its batch');
    return this.buf[this.pos++] as number;
  }

  varint(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        result >>>= 0;
        return (result >>> 1) ^ -(result & 1);
      }
    }
    throw corrupt('varint is longer than 5 bytes');
  }

  varlong(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
      mul *= 128;
    }
    throw corrupt('varlong is longer than 10 bytes');
  }

  int8(): number {
    return (this.byte() << 24) >> 24;
  }

  bytes(length: number): Buffer {
    if (length < 0 || this.pos + length > this.end) throw corrupt('field length runs past the end of its record');
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  /** Skips a varint-prefixed byte field without a view of it; returns its length (-1 for null). */
  skipNullable(): number {
    const length = this.varint();
    if (length < -1) throw corrupt(`invalid field length ${length}`);
    if (length > 0) {
      if (this.pos + length > this.end) throw corrupt('field length runs past the end of its record');
      this.pos += length;
    }
    return length;
  }

  nullableBytes(): Buffer | null {
    const length = this.varint();
    if (length === -1) return null;
    if (length < -1) throw corrupt(`invalid field length ${length}`);
    return this.bytes(length);
  }
}

function corrupt(message: string): StrandError {
  return new StrandError('CORRUPT_MESSAGE', `corrupt record batch: ${message}`);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------------------------------------
// encode

function recordBodySize(r: RecordInput, offsetDelta: number, timestampDelta: number, headerKeys: Buffer[]): number {
  let size = 1 + varlongSize(timestampDelta) + varintSize(offsetDelta);
  const key = r.key ?? null;
  size += key === null ? 1 : varintSize(key.length) + key.length;
  size += r.value === null ? 1 : varintSize(r.value.length) + r.value.length;
  const headers = r.headers ?? [];
  size += varintSize(headers.length);
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i] as RecordHeader;
    const k = headerKeys[i] as Buffer;
    size += varintSize(k.length) + k.length;
    size += h.value === null ? 1 : varintSize(h.value.length) + h.value.length;
  }
  return size;
}

function writeNullable(buf: Buffer, pos: number, bytes: Uint8Array | null | undefined): number {
  if (bytes === null || bytes === undefined) return writeVarint(buf, pos, -1);
  pos = writeVarint(buf, pos, bytes.length);
  buf.set(bytes, pos);
  return pos + bytes.length;
}

/** Encodes the records section (uncompressed) of a batch. */
function encodeRecords(records: readonly RecordInput[], baseTimestamp: number): Buffer {
  const sizes = new Array<number>(records.length);
  const headerKeys: Buffer[][] = new Array<Buffer[]>(records.length);
  let total = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as RecordInput;
    const keys = (r.headers ?? []).map((h) => Buffer.from(h.key, 'utf8'));
    headerKeys[i] = keys;
    const body = recordBodySize(r, r.offsetDelta ?? i, (r.timestamp ?? baseTimestamp) - baseTimestamp, keys);
    sizes[i] = body;
    total += varintSize(body) + body;
  }
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as RecordInput;
    pos = writeVarint(buf, pos, sizes[i] as number);
    buf[pos++] = 0; // record attributes: unused
    pos = writeVarlong(buf, pos, (r.timestamp ?? baseTimestamp) - baseTimestamp);
    pos = writeVarint(buf, pos, r.offsetDelta ?? i);
    pos = writeNullable(buf, pos, r.key);
    pos = writeNullable(buf, pos, r.value);
    const headers = r.headers ?? [];
    pos = writeVarint(buf, pos, headers.length);
    const keys = headerKeys[i] as Buffer[];
    for (let h = 0; h < headers.length; h++) {
      pos = writeNullable(buf, pos, keys[h] as Buffer);
      pos = writeNullable(buf, pos, (headers[h] as RecordHeader).value);
    }
  }
  if (pos !== total) throw new Error(`record encoder size mismatch: wrote ${pos} of ${total} bytes`); // a bug, not input
  return buf;
}

/** Encodes a RecordBatch v2. Returns a fresh buffer; the input is not modified. */
export function encodeRecordBatch(input: RecordBatchInput): Buffer {
  const records = input.records;
  if (records.length === 0) throw new StrandError('INVALID_RECORD', 'a record batch must hold at least one record');
  let minTs = Infinity;
  let maxTs = -Infinity;
  for (const r of records) {
    const ts = r.timestamp ?? input.baseTimestamp;
    if (ts === undefined) throw new StrandError('INVALID_TIMESTAMP', 'record has no timestamp and the batch has no baseTimestamp');
    if (ts < minTs) minTs = ts;
    if (ts > maxTs) maxTs = ts;
  }
  // With a delete horizon, baseTimestamp holds the horizon and record deltas are relative to it
  // (as Kafka's builder does), so record timestamps still decode as base + delta.
  const firstTs = input.deleteHorizonMs ?? input.baseTimestamp ?? minTs;
  let lastOffsetDelta = -1;
  for (let i = 0; i < records.length; i++) {
    const d = (records[i] as RecordInput).offsetDelta ?? i;
    if (d < lastOffsetDelta || d < 0) throw new StrandError('INVALID_RECORD', `record offsetDelta ${d} is negative or not increasing`);
    lastOffsetDelta = d;
  }
  if (input.lastOffsetDelta !== undefined) {
    if (input.lastOffsetDelta < lastOffsetDelta) throw new StrandError('INVALID_RECORD', `lastOffsetDelta ${input.lastOffsetDelta} is below a record's offsetDelta ${lastOffsetDelta}`);
    lastOffsetDelta = input.lastOffsetDelta;
  }
  const compression = input.compression ?? CompressionType.None;
  const plain = encodeRecords(records, firstTs);
  const payload = compression === CompressionType.None ? plain : compressionCodec(compression).compress(plain);

  const size = RECORD_BATCH_OVERHEAD + payload.length;
  const buf = Buffer.allocUnsafe(size);
  let attributes = compression & COMPRESSION_MASK;
  if (input.timestampType === TimestampType.LogAppendTime) attributes |= TIMESTAMP_TYPE_BIT;
  if (input.isTransactional) attributes |= TRANSACTIONAL_BIT;
  if (input.isControl) attributes |= CONTROL_BIT;
  if (input.deleteHorizonMs !== undefined) attributes |= DELETE_HORIZON_BIT;

  writeInt64(buf, BASE_OFFSET_OFFSET, input.baseOffset ?? 0);
  buf.writeInt32BE(size - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  buf.writeInt32BE(input.partitionLeaderEpoch ?? -1, PARTITION_LEADER_EPOCH_OFFSET);
  buf.writeInt8(MAGIC_V2, MAGIC_OFFSET);
  buf.writeInt16BE(attributes, ATTRIBUTES_OFFSET);
  buf.writeInt32BE(lastOffsetDelta, LAST_OFFSET_DELTA_OFFSET);
  writeInt64(buf, BASE_TIMESTAMP_OFFSET, firstTs);
  const logAppendTime = input.timestampType === TimestampType.LogAppendTime ? input.logAppendTimeMs : undefined;
  writeInt64(buf, MAX_TIMESTAMP_OFFSET, logAppendTime ?? maxTs);
  writeInt64(buf, PRODUCER_ID_OFFSET, input.producerId ?? NO_PRODUCER_ID);
  buf.writeInt16BE(input.producerEpoch ?? NO_PRODUCER_EPOCH, PRODUCER_EPOCH_OFFSET);
  buf.writeInt32BE(input.baseSequence ?? NO_SEQUENCE, BASE_SEQUENCE_OFFSET);
  buf.writeInt32BE(records.length, RECORDS_COUNT_OFFSET);
  payload.copy(buf, RECORD_BATCH_OVERHEAD);
  buf.writeUInt32BE(crc32c(buf.subarray(ATTRIBUTES_OFFSET)), CRC_OFFSET);
  return buf;
}

/**
 * A batch header with no records (recordsCount 0, uncompressed), standing for a batch whose
 * records compaction removed: Kafka's cleaner keeps one for the last batch of each producer so
 * that replicas rebuilding producer state from the log still see its last sequence. Offsets
 * (baseOffset, lastOffsetDelta), epoch, timestamp type, transactional flag and producer fields
 * are the original's; both timestamps are its maxTimestamp (Kafka's writeEmptyHeader).
 */
export function encodeEmptyRecordBatch(h: Pick<RecordBatchHeader, 'baseOffset' | 'lastOffsetDelta' | 'partitionLeaderEpoch' | 'attributes' | 'maxTimestamp' | 'producerId' | 'producerEpoch' | 'baseSequence'>): Buffer {
  const buf = Buffer.alloc(RECORD_BATCH_OVERHEAD);
  const attributes = h.attributes & (TIMESTAMP_TYPE_BIT | TRANSACTIONAL_BIT | CONTROL_BIT);
  writeInt64(buf, BASE_OFFSET_OFFSET, h.baseOffset);
  buf.writeInt32BE(RECORD_BATCH_OVERHEAD - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  buf.writeInt32BE(h.partitionLeaderEpoch, PARTITION_LEADER_EPOCH_OFFSET);
  buf.writeInt8(MAGIC_V2, MAGIC_OFFSET);
  buf.writeInt16BE(attributes, ATTRIBUTES_OFFSET);
  buf.writeInt32BE(h.lastOffsetDelta, LAST_OFFSET_DELTA_OFFSET);
  writeInt64(buf, BASE_TIMESTAMP_OFFSET, h.maxTimestamp);
  writeInt64(buf, MAX_TIMESTAMP_OFFSET, h.maxTimestamp);
  writeInt64(buf, PRODUCER_ID_OFFSET, h.producerId);
  buf.writeInt16BE(h.producerEpoch, PRODUCER_EPOCH_OFFSET);
  buf.writeInt32BE(h.baseSequence, BASE_SEQUENCE_OFFSET);
  buf.writeInt32BE(0, RECORDS_COUNT_OFFSET);
  buf.writeUInt32BE(crc32c(buf.subarray(ATTRIBUTES_OFFSET)), CRC_OFFSET);
  return buf;
}

function writeInt64(buf: Buffer, pos: number, value: number): void {
  buf.writeBigInt64BE(BigInt(value), pos);
}

function readInt64(buf: Buffer, pos: number): number {
  // hi * 2^32 + lo; exact for |value| < 2^53, which offsets and timestamps stay under.
  return buf.readInt32BE(pos) * 0x1_0000_0000 + buf.readUInt32BE(pos + 4);
}

// ---------------------------------------------------------------------------------------------
// header, validation, stamping

/**
 * Reads the fixed header of the batch at `pos` without validating it. Requires at least
 * RECORD_BATCH_OVERHEAD bytes at `pos`.
 */
export function readBatchHeader(bytes: Uint8Array, pos = 0): RecordBatchHeader {
  const buf = asBuffer(bytes);
  if (buf.length - pos < RECORD_BATCH_OVERHEAD) throw corrupt(`only ${buf.length - pos} bytes, a batch header needs ${RECORD_BATCH_OVERHEAD}`);
  return {
    baseOffset: readInt64(buf, pos + BASE_OFFSET_OFFSET),
    batchLength: buf.readInt32BE(pos + BATCH_LENGTH_OFFSET),
    partitionLeaderEpoch: buf.readInt32BE(pos + PARTITION_LEADER_EPOCH_OFFSET),
    magic: buf.readInt8(pos + MAGIC_OFFSET),
    crc: buf.readUInt32BE(pos + CRC_OFFSET),
    attributes: buf.readInt16BE(pos + ATTRIBUTES_OFFSET),
    lastOffsetDelta: buf.readInt32BE(pos + LAST_OFFSET_DELTA_OFFSET),
    baseTimestamp: readInt64(buf, pos + BASE_TIMESTAMP_OFFSET),
    maxTimestamp: readInt64(buf, pos + MAX_TIMESTAMP_OFFSET),
    producerId: readInt64(buf, pos + PRODUCER_ID_OFFSET),
    producerEpoch: buf.readInt16BE(pos + PRODUCER_EPOCH_OFFSET),
    baseSequence: buf.readInt32BE(pos + BASE_SEQUENCE_OFFSET),
    recordsCount: buf.readInt32BE(pos + RECORDS_COUNT_OFFSET),
  };
}

/** Total size in bytes (batchLength + 12) of the batch at `pos`, or -1 if fewer than 12 bytes remain. */
export function batchSizeAt(bytes: Uint8Array, pos = 0): number {
  const buf = asBuffer(bytes);
  if (buf.length - pos < LOG_OVERHEAD) return -1;
  return buf.readInt32BE(pos + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
}

export interface ValidateOptions {
  /** Largest total batch size accepted (`max.message.bytes`); larger gives MESSAGE_TOO_LARGE. */
  maxBatchBytes?: number;
}

/**
 * Validates the batch at `pos` without decoding its records: length within the buffer, magic 2,
 * sane header fields, CRC-32C. Returns the header; throws a StrandError (CORRUPT_MESSAGE,
 * UNSUPPORTED_VERSION, MESSAGE_TOO_LARGE, INVALID_RECORD) otherwise.
 */
export function validateBatch(bytes: Uint8Array, pos = 0, options: ValidateOptions = {}): RecordBatchHeader {
  const buf = asBuffer(bytes);
  const remaining = buf.length - pos;
  if (remaining < RECORD_BATCH_OVERHEAD) throw corrupt(`only ${remaining} bytes, a batch header needs ${RECORD_BATCH_OVERHEAD}`);
  const batchLength = buf.readInt32BE(pos + BATCH_LENGTH_OFFSET);
  const size = batchLength + LOG_OVERHEAD;
  if (size < RECORD_BATCH_OVERHEAD) throw corrupt(`batchLength ${batchLength} is smaller than a batch header`);
  if (options.maxBatchBytes !== undefined && size > options.maxBatchBytes) {
    throw new StrandError('MESSAGE_TOO_LARGE', `record batch of ${size} bytes exceeds max.message.bytes ${options.maxBatchBytes}`);
  }
  if (size > remaining) throw corrupt(`batchLength ${batchLength} runs past the end of the data (${remaining} bytes)`);
  const magic = buf.readInt8(pos + MAGIC_OFFSET);
  if (magic !== MAGIC_V2) throw new StrandError('UNSUPPORTED_VERSION', `record batch magic ${magic} is not supported (only v2)`);
  const header = readBatchHeader(buf, pos);
  const computed = crc32c(buf.subarray(pos + ATTRIBUTES_OFFSET, pos + size));
  if (computed !== header.crc) {
    throw corrupt(`CRC-32C mismatch: stored ${header.crc.toString(16)}, computed ${computed.toString(16)}`);
  }
  if (header.recordsCount < 0 || header.lastOffsetDelta < 0) throw new StrandError('INVALID_RECORD', 'negative record count or lastOffsetDelta');
  if (header.recordsCount > 0 && header.lastOffsetDelta < header.recordsCount - 1) {
    throw new StrandError('INVALID_RECORD', `lastOffsetDelta ${header.lastOffsetDelta} is less than recordsCount - 1 (${header.recordsCount - 1})`);
  }
  return header;
}

/**
 * Writes baseOffset and partitionLeaderEpoch into the batch at `pos`, in place. Both fields lie
 * outside the CRC, so the batch stays valid.
 */
export function stampBatch(bytes: Uint8Array, pos: number, baseOffset: number, partitionLeaderEpoch: number): void {
  const buf = asBuffer(bytes);
  writeInt64(buf, pos + BASE_OFFSET_OFFSET, baseOffset);
  buf.writeInt32BE(partitionLeaderEpoch, pos + PARTITION_LEADER_EPOCH_OFFSET);
}

/** A validated batch inside a larger buffer of concatenated batches. */
export interface BatchView {
  /** Position of the batch in the buffer. */
  position: number;
  /** Total size in bytes. */
  size: number;
  header: RecordBatchHeader;
}

/**
 * Validates a buffer of concatenated batches (a produce request's records, or a segment slice).
 * Every batch must be complete and valid; returns their views in order.
 */
export function validateBatches(bytes: Uint8Array, options: ValidateOptions = {}): BatchView[] {
  const buf = asBuffer(bytes);
  const views: BatchView[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const header = validateBatch(buf, pos, options);
    const size = header.batchLength + LOG_OVERHEAD;
    views.push({ position: pos, size, header });
    pos += size;
  }
  return views;
}

// ---------------------------------------------------------------------------------------------
// decode

/** A batch's records section, decompressed (bounded) when needed; a failure is `error`. */
function recordsBlock(block: Buffer, compression: CompressionType, maxBytes: number | undefined, error: 'CORRUPT_MESSAGE' | 'INVALID_RECORD'): Buffer {
  if (compression === CompressionType.None) return block;
  const codec = compressionCodec(compression);
  try {
    return codec.decompress(block, maxBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES);
  } catch (e: unknown) {
    throw new StrandError(error, `cannot decompress record batch: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

export function batchCompression(attributes: number): CompressionType {
  return (attributes & COMPRESSION_MASK) as CompressionType;
}

/** The batch's timestamp type (attribute bit 3): LogAppendTime or CreateTime. */
export function batchTimestampType(attributes: number): TimestampType {
  return (attributes & TIMESTAMP_TYPE_BIT) !== 0 ? TimestampType.LogAppendTime : TimestampType.CreateTime;
}

export function isControlBatch(attributes: number): boolean {
  return (attributes & CONTROL_BIT) !== 0;
}

/** Whether attribute bit 6 says baseTimestamp holds the batch's delete horizon (KIP-534). */
export function batchHasDeleteHorizon(attributes: number): boolean {
  return (attributes & DELETE_HORIZON_BIT) !== 0;
}

export function isTransactionalBatch(attributes: number): boolean {
  return (attributes & TRANSACTIONAL_BIT) !== 0;
}

export interface DecodeOptions {
  /** Bound on the decompressed records block; default DEFAULT_MAX_DECOMPRESSED_BYTES. */
  maxDecompressedBytes?: number;
  /** Skip the CRC check (only for bytes already validated once, e.g. in the same process). */
  skipCrc?: boolean;
}

/**
 * Decodes the batch at `pos` fully: validates it (unless `skipCrc`), decompresses and parses every
 * record. Keys, values and header values are views into the input (or the decompressed block).
 */
export function decodeRecordBatch(bytes: Uint8Array, pos = 0, options: DecodeOptions = {}): DecodedRecordBatch {
  const buf = asBuffer(bytes);
  const header = options.skipCrc ? readBatchHeader(buf, pos) : validateBatch(buf, pos);
  const end = pos + header.batchLength + LOG_OVERHEAD;
  if (end > buf.length) throw corrupt('batch runs past the end of the data');
  const compression = batchCompression(header.attributes);
  const block = recordsBlock(buf.subarray(pos + RECORD_BATCH_OVERHEAD, end), compression, options.maxDecompressedBytes, 'CORRUPT_MESSAGE');
  const hasDeleteHorizon = batchHasDeleteHorizon(header.attributes);
  const cur = new Cursor(block, 0, block.length);
  const records: DecodedRecord[] = [];
  for (let i = 0; i < header.recordsCount; i++) {
    const length = cur.varint();
    if (length < 0) throw corrupt(`negative record length ${length}`);
    const recordEnd = cur.pos + length;
    if (recordEnd > block.length) throw corrupt('record runs past the end of its batch');
    const rc = new Cursor(block, cur.pos, recordEnd);
    rc.int8(); // attributes: unused in v2
    const timestampDelta = rc.varlong();
    const offsetDelta = rc.varint();
    const key = rc.nullableBytes();
    const value = rc.nullableBytes();
    const headerCount = rc.varint();
    if (headerCount < 0) throw corrupt(`negative header count ${headerCount}`);
    const headers: RecordHeader[] = [];
    for (let h = 0; h < headerCount; h++) {
      const hk = rc.nullableBytes();
      if (hk === null) throw corrupt('null header key');
      headers.push({ key: hk.toString('utf8'), value: rc.nullableBytes() });
    }
    if (rc.pos !== recordEnd) throw corrupt(`record length ${length} does not match its contents`);
    cur.pos = recordEnd;
    if (offsetDelta < 0 || offsetDelta > header.lastOffsetDelta) throw new StrandError('INVALID_RECORD', `offsetDelta ${offsetDelta} outside [0, ${header.lastOffsetDelta}]`);
    records.push({
      offset: header.baseOffset + offsetDelta,
      offsetDelta,
      timestamp: header.baseTimestamp + timestampDelta,
      timestampDelta,
      key,
      value,
      headers,
    });
  }
  if (cur.pos !== block.length) throw corrupt(`${block.length - cur.pos} trailing bytes after ${header.recordsCount} records`);
  return {
    ...header,
    compression,
    timestampType: batchTimestampType(header.attributes),
    isTransactional: isTransactionalBatch(header.attributes),
    isControl: isControlBatch(header.attributes),
    hasDeleteHorizon,
    records,
  };
}

// ---------------------------------------------------------------------------------------------
// keys and offsets only (the log compactor)

/**
 * What walkRecordKeys reports of each record: its key as `block[keyStart, keyStart + keyLength)`
 * (keyLength -1: no key, keyStart then meaningless), its offset, and whether its value is null (a
 * tombstone when it has a key). `block` is the batch's records section (the input, or the block
 * decompressed from it): a view, valid as long as the caller keeps it. Returning false stops the
 * walk.
 */
export type RecordKeyVisitor = (block: Buffer, keyStart: number, keyLength: number, offset: number, valueIsNull: boolean) => boolean | void;

/**
 * Walks the records of the batch at `pos` (decompressed first if needed, as decodeRecordBatch
 * does) reading only what log compaction needs of each: where its key lies, its offset, whether
 * its value is null. Nothing is copied and nothing is allocated per record, which makes it several
 * times cheaper than decodeRecordBatch for the compactor's map building and its "does this batch
 * lose a record?" test. Each record is checked as decodeRecordBatch checks it (same errors:
 * CORRUPT_MESSAGE, INVALID_RECORD), and fully parsed before it is visited; the CRC too unless
 * `skipCrc`. Returns true when every record was visited (and the records fill the section
 * exactly), false when the visitor stopped the walk (the records after that are not checked).
 */
export function walkRecordKeys(bytes: Uint8Array, pos: number, visit: RecordKeyVisitor, options: DecodeOptions = {}): boolean {
  const buf = asBuffer(bytes);
  const header = options.skipCrc ? readBatchHeader(buf, pos) : validateBatch(buf, pos);
  const end = pos + header.batchLength + LOG_OVERHEAD;
  if (end > buf.length) throw corrupt('batch runs past the end of the data');
  const block = recordsBlock(buf.subarray(pos + RECORD_BATCH_OVERHEAD, end), batchCompression(header.attributes), options.maxDecompressedBytes, 'CORRUPT_MESSAGE');
  const blockEnd = block.length;
  const { baseOffset, lastOffsetDelta, recordsCount } = header;
  // One cursor for the whole batch (no object per record); its end is moved to each record's.
  const cur = new Cursor(block, 0, blockEnd);
  for (let i = 0; i < recordsCount; i++) {
    cur.end = blockEnd;
    const length = cur.varint();
    if (length < 0) throw corrupt(`negative record length ${length}`);
    const recordEnd = cur.pos + length;
    if (recordEnd > blockEnd) throw corrupt('record runs past the end of its batch');
    cur.end = recordEnd;
    cur.int8(); // attributes: unused in v2
    cur.varlong(); // timestampDelta
    const offsetDelta = cur.varint();
    const keyLength = cur.skipNullable();
    const keyStart = keyLength > 0 ? cur.pos - keyLength : cur.pos;
    const valueIsNull = cur.skipNullable() === -1;
    const headerCount = cur.varint();
    if (headerCount < 0) throw corrupt(`negative header count ${headerCount}`);
    for (let h = 0; h < headerCount; h++) {
      if (cur.skipNullable() === -1) throw corrupt('null header key');
      cur.skipNullable();
    }
    if (cur.pos !== recordEnd) throw corrupt(`record length ${length} does not match its contents`);
    if (offsetDelta < 0 || offsetDelta > lastOffsetDelta) throw new StrandError('INVALID_RECORD', `offsetDelta ${offsetDelta} outside [0, ${lastOffsetDelta}]`);
    if (visit(block, keyStart, keyLength, baseOffset + offsetDelta, valueIsNull) === false) return false;
  }
  if (cur.pos !== blockEnd) throw corrupt(`${blockEnd - cur.pos} trailing bytes after ${recordsCount} records`);
  return true;
}

// ---------------------------------------------------------------------------------------------
// a producer's records, walked without allocating (the leader's LogValidator)

export interface ProducedRecordsOptions {
  /** Compacted topics: a record without a key is refused with INVALID_RECORD. */
  requireKeys?: boolean;
  /**
   * CreateTime topics (KIP-937): a record whose timestamp is more than `beforeMaxMs` before or
   * `afterMaxMs` after `nowMs` is refused with INVALID_TIMESTAMP. Omitted: no check.
   */
  timestampBounds?: { nowMs: number; beforeMaxMs: number; afterMaxMs: number };
  /** Bound on a decompressed records block; default DEFAULT_MAX_DECOMPRESSED_BYTES. */
  maxDecompressedBytes?: number;
}

/**
 * A produced batch whose CRC holds but whose records do not parse: the bytes are what the
 * client meant to send, so retrying cannot help (INVALID_RECORD, not the retriable
 * CORRUPT_MESSAGE; Kafka's InvalidRecordException).
 */
function badRecord(message: string): StrandError {
  return new StrandError('INVALID_RECORD', `invalid record in a produced batch: ${message}`);
}

/**
 * Walks every record of a producer's batch (decompressed first if needed), the way Kafka's
 * LogValidator does before an append: each record must parse exactly within its length, carry
 * offsetDelta equal to its index, and the records must fill the batch, else INVALID_RECORD;
 * keys and timestamps are checked per `options`. Only lengths are read, nothing
 * is copied. Returns the largest record timestamp (what the batch's maxTimestamp must be).
 */
export function validateProducedRecords(bytes: Uint8Array, view: BatchView, options: ProducedRecordsOptions = {}): number {
  const buf = asBuffer(bytes);
  const header = view.header;
  const block = recordsBlock(buf.subarray(view.position + RECORD_BATCH_OVERHEAD, view.position + view.size), batchCompression(header.attributes), options.maxDecompressedBytes, 'INVALID_RECORD');
  const bounds = options.timestampBounds;
  const lowest = bounds === undefined ? -Infinity : bounds.nowMs - bounds.beforeMaxMs;
  const highest = bounds === undefined ? Infinity : bounds.nowMs + bounds.afterMaxMs;
  const end = block.length;
  let maxTimestamp = -1;
  // One cursor for the whole batch (no object per record); its end is moved to each record's.
  const cur = new Cursor(block, 0, end);
  try {
    for (let i = 0; i < header.recordsCount; i++) {
      cur.end = end;
      const length = cur.varint();
      if (length < 0) throw badRecord(`negative record length ${length}`);
      const recordEnd = cur.pos + length;
      if (recordEnd > end) throw badRecord('record runs past the end of its batch');
      cur.end = recordEnd;
      cur.int8(); // attributes: unused in v2
      const timestamp = header.baseTimestamp + cur.varlong();
      const offsetDelta = cur.varint();
      if (offsetDelta !== i) throw new StrandError('INVALID_RECORD', `record ${i} of a produced batch has offsetDelta ${offsetDelta}; a producer numbers its records 0, 1, 2, ...`);
      if (cur.skipNullable() === -1 && options.requireKeys === true) {
        throw new StrandError('INVALID_RECORD', `record ${i} has no key: a compacted topic cannot accept records without keys`);
      }
      cur.skipNullable(); // value
      const headerCount = cur.varint();
      if (headerCount < 0) throw badRecord(`negative header count ${headerCount}`);
      for (let h = 0; h < headerCount; h++) {
        if (cur.skipNullable() < 0) throw badRecord('null header key');
        cur.skipNullable();
      }
      if (cur.pos !== recordEnd) throw badRecord(`record length ${length} does not match its contents`);
      if (timestamp !== NO_TIMESTAMP && (timestamp < lowest || timestamp > highest)) {
        throw new StrandError('INVALID_TIMESTAMP', `record ${i} has timestamp ${timestamp}, outside [${lowest}, ${highest}] (message.timestamp.before.max.ms / after.max.ms)`);
      }
      if (timestamp > maxTimestamp) maxTimestamp = timestamp;
    }
  } catch (e: unknown) {
    // The cursor's reads past a bound are CORRUPT_MESSAGE; under a valid CRC they are the
    // client's bytes, so INVALID_RECORD (see badRecord).
    if (e instanceof StrandError && e.errorName === 'CORRUPT_MESSAGE') throw badRecord(e.message);
    throw e;
  }
  if (cur.pos !== end) throw new StrandError('INVALID_RECORD', `${end - cur.pos} bytes left after the ${header.recordsCount} records the batch declares`);
  return maxTimestamp;
}

/**
 * Sets the batch at `pos` to CreateTime with `timestampMs` as its maxTimestamp, in place (the
 * leader corrects a producer's maxTimestamp to the largest record timestamp, as Kafka does, so
 * the time index and ListOffsets by timestamp cannot be misled). The CRC is recomputed.
 */
export function setCreateTimeMaxTimestamp(bytes: Uint8Array, pos: number, timestampMs: number): void {
  const buf = asBuffer(bytes);
  const size = buf.readInt32BE(pos + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
  buf.writeInt16BE(buf.readInt16BE(pos + ATTRIBUTES_OFFSET) & ~TIMESTAMP_TYPE_BIT, pos + ATTRIBUTES_OFFSET);
  writeInt64(buf, pos + MAX_TIMESTAMP_OFFSET, timestampMs);
  buf.writeUInt32BE(crc32c(buf.subarray(pos + ATTRIBUTES_OFFSET, pos + size)), pos + CRC_OFFSET);
}

/**
 * Re-encodes the batch at `pos` with `compression` (a topic's `compression.type` differing from
 * the producer's codec), keeping offsets, timestamps (a LogAppendTime batch's append time too),
 * producer fields and records. Returns a fresh buffer.
 */
export function recompressRecordBatch(bytes: Uint8Array, pos: number, compression: CompressionType, options: DecodeOptions = {}): Buffer {
  const d = decodeRecordBatch(bytes, pos, options);
  return encodeRecordBatch({
    records: d.records.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp, offsetDelta: r.offsetDelta })),
    baseTimestamp: d.baseTimestamp,
    baseOffset: d.baseOffset,
    partitionLeaderEpoch: d.partitionLeaderEpoch,
    compression,
    timestampType: d.timestampType,
    isTransactional: d.isTransactional,
    isControl: d.isControl,
    producerId: d.producerId,
    producerEpoch: d.producerEpoch,
    baseSequence: d.baseSequence,
    lastOffsetDelta: d.lastOffsetDelta,
    logAppendTimeMs: d.maxTimestamp,
  });
}

/** Whether the batch's timestamp type bit says LogAppendTime. */
export function isLogAppendTimeBatch(attributes: number): boolean {
  return (attributes & TIMESTAMP_TYPE_BIT) !== 0;
}

/** Offset of the last record in the batch (baseOffset + lastOffsetDelta). */
export function lastOffsetOf(header: RecordBatchHeader): number {
  return header.baseOffset + header.lastOffsetDelta;
}

/**
 * Switches the batch at `pos` to LogAppendTime with `timestampMs` as its maxTimestamp (what a
 * broker does for topics with `message.timestamp.type=LogAppendTime`), in place. Both fields are
 * inside the CRC, so the CRC is recomputed.
 */
export function setLogAppendTime(bytes: Uint8Array, pos: number, timestampMs: number): void {
  const buf = asBuffer(bytes);
  const size = buf.readInt32BE(pos + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
  buf.writeInt16BE(buf.readInt16BE(pos + ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT, pos + ATTRIBUTES_OFFSET);
  writeInt64(buf, pos + MAX_TIMESTAMP_OFFSET, timestampMs);
  buf.writeUInt32BE(crc32c(buf.subarray(pos + ATTRIBUTES_OFFSET, pos + size)), pos + CRC_OFFSET);
}
