/**
 * One segment of a partition log: `<base>.log` (RecordBatch v2 bytes, back to back, exactly as
 * they arrived) with its sparse `<base>.index` and `<base>.timeindex`.
 *
 * File names are the base offset zero-padded to 20 digits, as Kafka's. Writes are synchronous
 * (`writeSync` into the page cache takes microseconds for a batch and keeps append order trivially
 * correct); fdatasync is asynchronous and driven by the log's group commit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LOG_OVERHEAD, RECORD_BATCH_OVERHEAD, StrandError, readBatchHeader, validateBatch, type RecordBatchHeader } from '@strand/protocol';
import { OffsetIndex, TimeIndex } from './indexes';

export const LOG_SUFFIX = '.log';
export const INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
/** A compacted segment being written; deleted on open (the original is intact). */
export const CLEANED_SUFFIX = '.cleaned';
/** A compacted segment ready to replace the original; an interrupted swap is completed on open. */
export const SWAP_SUFFIX = '.swap';

/** `00000000000000000042` for 42. */
export function segmentFileName(baseOffset: number, suffix: string): string {
  return `${String(baseOffset).padStart(20, '0')}${suffix}`;
}

/** Chunk size used when scanning a segment file for batches. */
const SCAN_CHUNK_BYTES = 1024 * 1024;
/**
 * Chunk size of recoverAsync: each read is a trip through libuv's thread pool, so with 1 MiB
 * chunks a hot-cache recovery of 512 MB alone took ~230 ms against ~155 ms for the synchronous
 * scan, with 4 MiB ~200 ms; a 4 MiB chunk's CRC check holds the event loop ~3-5 ms.
 */
const RECOVERY_CHUNK_BYTES = 4 * 1024 * 1024;

export interface SegmentConfig {
  /** `index.interval.bytes`: log bytes between two offset index entries. */
  indexIntervalBytes: number;
  /** `segment.index.bytes` / 8: offset index capacity; the segment rolls when full. */
  maxIndexEntries: number;
}

/**
 * Decides during recovery whether a CRC-valid batch fits the log: its offsets and epoch are not
 * covered by the CRC, so a flipped bit there is only caught by checking them against what the
 * log expects (`expectedOffset` is where the previous batch ended).
 */
export type BatchAcceptor = (header: RecordBatchHeader, expectedOffset: number) => boolean;

/** Offsets must increase (gaps allowed: compacted logs). */
export const acceptIncreasing: BatchAcceptor = (h, expected) => h.baseOffset >= expected;

/** A batch located in a segment file. */
export interface ScannedBatch {
  position: number;
  size: number;
  header: RecordBatchHeader;
  /** The batch bytes; only valid until the scan moves on. */
  bytes: Buffer;
}

/**
 * What the bytes at `rel` of `chunk` (file position `pos`; the scan ends at `to`) hold: a whole
 * batch, a need for more bytes in the chunk (`need` from `pos`: the 12-byte length prefix, or
 * the whole batch), or an invalid batch. Shared by the synchronous scan and recoverAsync.
 */
type ScanStep =
  | { kind: 'batch'; size: number; header: RecordBatchHeader; bytes: Buffer }
  | { kind: 'more'; need: number }
  | { kind: 'invalid'; why: string };

function stepAt(chunk: Buffer, rel: number, pos: number, to: number, validate: boolean): ScanStep {
  if (rel + LOG_OVERHEAD > chunk.length) return { kind: 'more', need: LOG_OVERHEAD };
  const batchLength = chunk.readInt32BE(rel + 8);
  const size = batchLength + LOG_OVERHEAD;
  if (size < RECORD_BATCH_OVERHEAD || pos + size > to) return { kind: 'invalid', why: `batch length ${batchLength} is invalid` };
  if (rel + size > chunk.length) return { kind: 'more', need: size };
  const bytes = chunk.subarray(rel, rel + size);
  if (!validate) return { kind: 'batch', size, header: readBatchHeader(bytes, 0), bytes };
  try {
    return { kind: 'batch', size, header: validateBatch(bytes, 0), bytes };
  } catch (e: unknown) {
    return { kind: 'invalid', why: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Bytes to load at `pos` for a step that needs `need` (a whole chunk, or more for a big batch,
 * never past `to`), given the length of the load already made there for this batch (0 if none)
 * and what it got; null when no load would help: the file ended within the last one, or a
 * longer one is not possible (a torn batch). At most two loads per batch: the chunk for the
 * length prefix, then the whole batch if it is longer.
 */
function reloadLength(need: number, pos: number, to: number, loaded: number, got: number, chunkBytes: number): number | null {
  const want = Math.min(to - pos, Math.max(need, chunkBytes));
  return want <= loaded || got < loaded ? null : want;
}

function readAsync(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, offset, length, position, (err, n) => (err === null ? resolve(n) : reject(err)));
  });
}

export class LogSegment {
  readonly logFile: string;
  private fd: number;
  readonly index: OffsetIndex;
  readonly timeIndex: TimeIndex;
  /** Bytes in the log file. */
  size = 0;
  /** Bytes known to be fdatasynced. */
  flushedSize = 0;
  /** Offset after the last batch (baseOffset when empty). */
  nextOffset: number;
  /** Largest record timestamp in the segment, -1 when empty. */
  maxTimestamp = -1;
  private offsetOfMaxTimestamp = -1;
  private bytesSinceIndexEntry = 0;
  /** Wall-clock ms when the segment got its first batch (for `segment.ms`), -1 when empty. */
  firstAppendMs = -1;
  /**
   * When the segment was last written (ms, Kafka's LogSegment.lastModified): the log clock's time
   * of the last append, or the file's mtime for a segment opened from disk.
   */
  lastModifiedMs: number;
  /** Index entries were written since the indexes were last fdatasynced. */
  indexesDirty = false;
  /**
   * The log file was shortened (a truncation, recovery, a re-creation over leftovers) since its
   * last fdatasync: its size is not durable, though no byte is unflushed.
   */
  private sizeUnsynced = false;
  /** Smallest file size since the in-flight fdatasync(s) started (Infinity when none runs). */
  private sizeLowWater = Infinity;
  /** Flushes in flight; the fd is not closed until they finish. */
  private flushesInFlight = 0;
  private closeRequested = false;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly baseOffset: number,
    private readonly config: SegmentConfig,
    logFile: string,
    /** Appended to every file name: CLEANED_SUFFIX for a compacted copy being written. */
    fileSuffix = '',
  ) {
    this.logFile = logFile;
    this.fd = fs.openSync(logFile, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    // A failed open (EMFILE, EIO) must not leave the files opened before it open.
    let index: OffsetIndex | undefined;
    try {
      this.lastModifiedMs = Math.round(fs.fstatSync(this.fd).mtimeMs);
      index = new OffsetIndex(path.join(dir, segmentFileName(baseOffset, INDEX_SUFFIX + fileSuffix)), baseOffset, config.maxIndexEntries);
      this.timeIndex = new TimeIndex(path.join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX + fileSuffix)), baseOffset, config.maxIndexEntries);
    } catch (e: unknown) {
      index?.close();
      fs.closeSync(this.fd);
      throw e;
    }
    this.index = index;
    this.nextOffset = baseOffset;
  }

  /**
   * The segment's age for retention and min.compaction.lag.ms (Kafka's largestTimestamp): its
   * newest record timestamp, or its last-modified time when no record has one (records without
   * a timestamp must not make a segment look 54 years old).
   */
  get largestTimestamp(): number {
    return this.maxTimestamp >= 0 ? this.maxTimestamp : this.lastModifiedMs;
  }

  /**
   * Creates an empty segment (truncating leftovers of a previous one with the same base). With
   * `fileSuffix` CLEANED_SUFFIX it is the compacted copy of the segment with that base:
   * `<base>.log.cleaned`, `<base>.index.cleaned` and `<base>.timeindex.cleaned`. The compactor
   * appends the surviving batches, so the indexes are built as it writes and installing the
   * copy (PartitionLog.replaceSegments, which renames the three files) need not rescan it.
   */
  static create(dir: string, baseOffset: number, config: SegmentConfig, fileSuffix = ''): LogSegment {
    const seg = new LogSegment(dir, baseOffset, config, path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX + fileSuffix)), fileSuffix);
    try {
      // Emptied leftovers must be fdatasynced before a clean close trusts them (see needsSync);
      // new files need only their directory's fsync.
      const leftovers = fs.fstatSync(seg.fd).size > 0 || seg.index.fileBytes > 0 || seg.timeIndex.fileBytes > 0;
      fs.ftruncateSync(seg.fd, 0);
      seg.index.reset();
      seg.timeIndex.reset();
      seg.sizeUnsynced = leftovers;
      seg.indexesDirty = leftovers;
    } catch (e: unknown) {
      seg.close();
      throw e;
    }
    return seg;
  }

  /**
   * Opens an existing segment. With `recover`, every batch is validated (length, magic, CRC) and
   * the file truncated at the first invalid one; indexes are rebuilt. Without, the indexes are
   * loaded (and rebuilt if one is missing or fails its sanity check: a compaction swap deletes
   * the old indexes before it installs the new log, so a missing index means "rebuild") and the
   * last batch is located. Returns the segment and the number of bytes truncated.
   */
  static open(dir: string, baseOffset: number, config: SegmentConfig, recover: boolean, accept: BatchAcceptor = acceptIncreasing): { segment: LogSegment; truncatedBytes: number } {
    const { seg, needsRecovery } = LogSegment.openFiles(dir, baseOffset, config, recover);
    try {
      if (!needsRecovery) {
        seg.restoreTailState();
        return { segment: seg, truncatedBytes: 0 };
      }
      return { segment: seg, truncatedBytes: seg.recover(accept) };
    } catch (e: unknown) {
      // Corrupt data (KAFKA_STORAGE_ERROR) or an I/O error: the caller never gets the segment.
      seg.close();
      throw e;
    }
  }

  /**
   * `open` with the recovery's reads off the event loop (recoverAsync): after a power loss the
   * active segments are not in the page cache, and reading a 1 GiB one in one synchronous call
   * stalls the process (its broker's heartbeats, its controller's Raft) for seconds.
   */
  static async openAsync(dir: string, baseOffset: number, config: SegmentConfig, recover: boolean, accept: BatchAcceptor = acceptIncreasing): Promise<{ segment: LogSegment; truncatedBytes: number }> {
    const { seg, needsRecovery } = LogSegment.openFiles(dir, baseOffset, config, recover);
    try {
      if (!needsRecovery) {
        seg.restoreTailState();
        return { segment: seg, truncatedBytes: 0 };
      }
      return { segment: seg, truncatedBytes: await seg.recoverAsync(accept) };
    } catch (e: unknown) {
      seg.close();
      throw e;
    }
  }

  /** Opens the files of an existing segment; whether it must be recovered (see open). */
  private static openFiles(dir: string, baseOffset: number, config: SegmentConfig, recover: boolean): { seg: LogSegment; needsRecovery: boolean } {
    const indexesExist = fs.existsSync(path.join(dir, segmentFileName(baseOffset, INDEX_SUFFIX))) && fs.existsSync(path.join(dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX)));
    const seg = new LogSegment(dir, baseOffset, config, path.join(dir, segmentFileName(baseOffset, LOG_SUFFIX)));
    try {
      seg.size = fs.fstatSync(seg.fd).size;
      seg.flushedSize = seg.size;
      return { seg, needsRecovery: recover || (!indexesExist && seg.size > 0) || !seg.index.load(seg.size) || !seg.timeIndex.load() };
    } catch (e: unknown) {
      seg.close();
      throw e;
    }
  }

  /**
   * Validates every batch from the start, rebuilding indexes and in-memory state; truncates the
   * file at the first torn or corrupt batch. Returns the number of bytes removed.
   *
   * A batch's size is no sign of damage as long as the batch lies wholly inside the file and its
   * CRC holds: the topic's max.message.bytes and segment.bytes may have been lowered since it was
   * written (AlterConfigs), and cutting the log there would drop acknowledged records (Kafka's
   * LogSegment.recover has no size limit either). A corrupt length is bounded by the file size.
   */
  recover(accept: BatchAcceptor = acceptIncreasing): number {
    this.startRecovery();
    let validEnd = 0;
    for (const b of this.scan(0, this.size, { validate: true, stopAtInvalid: true })) {
      if (!this.recovered(b.header, b.position, b.size, accept)) break;
      validEnd = b.position + b.size;
    }
    return this.endRecovery(validEnd);
  }

  /**
   * recover() reading the file in RECOVERY_CHUNK_BYTES chunks off the event loop; the batches of
   * a chunk are checked (CRC-32C) between two reads, so the loop is held a few ms at a time.
   * The segment must not be used until it resolves.
   */
  async recoverAsync(accept: BatchAcceptor = acceptIncreasing): Promise<number> {
    this.startRecovery();
    let buf = Buffer.allocUnsafe(Math.min(RECOVERY_CHUNK_BYTES, Math.max(this.size, LOG_OVERHEAD)));
    let chunk = buf.subarray(0, 0);
    let chunkStart = 0;
    let pos = 0;
    while (pos < this.size) {
      let step = stepAt(chunk, pos - chunkStart, pos, this.size, true);
      for (let length = 0; step.kind === 'more'; ) {
        const want = reloadLength(step.need, pos, this.size, length, chunk.length, RECOVERY_CHUNK_BYTES);
        if (want === null) break;
        length = want;
        if (buf.length < length) buf = Buffer.allocUnsafe(length);
        chunk = buf.subarray(0, await this.readIntoAsync(buf, pos, length));
        chunkStart = pos;
        step = stepAt(chunk, 0, pos, this.size, true);
      }
      if (step.kind !== 'batch' || !this.recovered(step.header, pos, step.size, accept)) break;
      pos += step.size;
    }
    return this.endRecovery(pos);
  }

  private startRecovery(): void {
    this.index.reset();
    this.timeIndex.reset();
    this.resetTailState();
  }

  /** Takes a valid batch into the rebuilt state; false if it does not fit the log (recovery stops before it). */
  private recovered(header: RecordBatchHeader, position: number, size: number, accept: BatchAcceptor): boolean {
    // baseOffset and partitionLeaderEpoch lie outside the CRC: check them against the log.
    if (!accept(header, this.nextOffset) || header.baseOffset + header.lastOffsetDelta - this.baseOffset > 0x7fffffff) return false;
    this.track(header, position, size);
    return true;
  }

  /** Cuts the file after the last valid batch; returns the number of bytes removed. */
  private endRecovery(validEnd: number): number {
    const truncated = this.size - validEnd;
    if (truncated > 0) {
      fs.ftruncateSync(this.fd, validEnd);
      this.sizeUnsynced = true;
      this.size = validEnd;
      this.flushedSize = Math.min(this.flushedSize, validEnd);
    }
    this.initRollTime();
    return truncated;
  }

  /** Rebuilds nextOffset/maxTimestamp from the last indexed position to the end (no CRC check). */
  private restoreTailState(): void {
    this.resetTailState();
    // The indexes are the files as loaded: nothing to write back (only a rebuild dirties them).
    this.indexesDirty = false;
    // The time index tells the max timestamp up to its last entry; the tail after the last
    // offset index entry is scanned to find the true end.
    const lastTs = this.timeIndex.lastTimestamp;
    if (lastTs >= 0) {
      this.maxTimestamp = lastTs;
      this.offsetOfMaxTimestamp = this.timeIndex.lookup(lastTs + 1);
    }
    const start = this.index.entryCount > 0 ? this.index.lookup(Number.MAX_SAFE_INTEGER) : 0;
    for (const b of this.scan(start, this.size, { validate: false })) {
      this.nextOffset = b.header.baseOffset + b.header.lastOffsetDelta + 1;
      if (b.header.maxTimestamp > this.maxTimestamp) {
        this.maxTimestamp = b.header.maxTimestamp;
        this.offsetOfMaxTimestamp = b.header.baseOffset;
      }
    }
    this.initRollTime();
  }

  /**
   * The time `segment.ms` counts from for a reopened segment: its first batch's timestamp, as
   * Kafka's, or the file's modification time when that batch has none.
   */
  private initRollTime(): void {
    if (this.size < RECORD_BATCH_OVERHEAD) return;
    const first = readBatchHeader(this.read(0, RECORD_BATCH_OVERHEAD), 0);
    this.firstAppendMs = first.maxTimestamp >= 0 ? first.maxTimestamp : this.lastModifiedMs;
  }

  private resetTailState(): void {
    this.indexesDirty = true;
    this.nextOffset = this.baseOffset;
    this.maxTimestamp = -1;
    this.offsetOfMaxTimestamp = -1;
    this.bytesSinceIndexEntry = 0;
    this.firstAppendMs = -1;
  }

  /** Updates indexes and in-memory state for a batch written at `position`. */
  private track(header: RecordBatchHeader, position: number, size: number): void {
    if (header.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = header.maxTimestamp;
      this.offsetOfMaxTimestamp = header.baseOffset;
    }
    // Index entries every index.interval.bytes (and for the first batch). The time entry records
    // the largest timestamp so far and the batch that first reached it, as Kafka's does.
    if (position === 0 || this.bytesSinceIndexEntry >= this.config.indexIntervalBytes) {
      if (!this.index.isFull) this.index.append(header.baseOffset, position);
      this.indexesDirty = true;
      if (this.maxTimestamp >= 0 && !this.timeIndex.isFull) this.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
      this.bytesSinceIndexEntry = 0;
    }
    this.bytesSinceIndexEntry += size;
    this.nextOffset = header.baseOffset + header.lastOffsetDelta + 1;
  }

  /**
   * Appends validated batches (`bytes[start, end)`, whose headers are given) at the end of the
   * file. The caller has checked offsets and sizes.
   */
  append(bytes: Buffer, start: number, end: number, headers: readonly { position: number; size: number; header: RecordBatchHeader }[], nowMs: number): void {
    const position = this.size;
    let written = 0;
    while (written < end - start) {
      written += fs.writeSync(this.fd, bytes, start + written, end - start - written, position + written);
    }
    for (const h of headers) this.track(h.header, position + (h.position - start), h.size);
    this.size += end - start;
    if (this.firstAppendMs < 0) this.firstAppendMs = nowMs;
    this.lastModifiedMs = nowMs;
  }

  /** True if `size` more bytes or offsets up to `lastOffset` do not fit this segment. */
  wouldOverflow(size: number, lastOffset: number, segmentBytes: number): boolean {
    if (this.size === 0) return lastOffset - this.baseOffset > 0x7fffffff;
    return this.size + size > segmentBytes || this.index.isFull || this.timeIndex.isFull || lastOffset - this.baseOffset > 0x7fffffff;
  }

  /** Reads `length` bytes at `position` (fewer at the end of the file). */
  read(position: number, length: number): Buffer {
    const len = Math.max(0, Math.min(length, this.size - position));
    const buf = Buffer.allocUnsafe(len);
    const got = this.readInto(buf, position, len);
    return got === len ? buf : buf.subarray(0, got);
  }

  /** readInto with the reads in libuv's thread pool. */
  private async readIntoAsync(buf: Buffer, position: number, length: number): Promise<number> {
    const len = Math.max(0, Math.min(length, this.size - position));
    let got = 0;
    while (got < len) {
      const n = await readAsync(this.fd, buf, got, len - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return got;
  }

  /** Reads `length` bytes at `position` into the start of `buf` (fewer at the end of the file); returns how many. */
  private readInto(buf: Buffer, position: number, length: number): number {
    const len = Math.max(0, Math.min(length, this.size - position));
    let got = 0;
    while (got < len) {
      const n = fs.readSync(this.fd, buf, got, len - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return got;
  }

  /**
   * Iterates over the batches in [from, to). With `validate`, checks each batch (length, magic,
   * CRC); an invalid batch ends the scan when `stopAtInvalid`, else throws KAFKA_STORAGE_ERROR.
   */
  *scan(from: number, to: number, options: { validate: boolean; stopAtInvalid?: boolean }): Generator<ScannedBatch> {
    let pos = from;
    let chunk: Buffer = Buffer.alloc(0);
    let chunkStart = from;
    // One buffer for every chunk of the scan (yielded bytes are valid only until it moves on):
    // a fresh 1 MiB buffer per chunk costs its page faults on each read, ~10x the copy itself.
    let buf: Buffer | null = null;
    const load = (at: number, length: number): Buffer => {
      if (buf === null || buf.length < length) buf = Buffer.allocUnsafe(Math.max(length, Math.min(SCAN_CHUNK_BYTES, to - from)));
      return buf.subarray(0, this.readInto(buf, at, length));
    };
    while (pos < to) {
      let step = stepAt(chunk, pos - chunkStart, pos, to, options.validate);
      for (let length = 0; step.kind === 'more'; ) {
        const want = reloadLength(step.need, pos, to, length, chunk.length, SCAN_CHUNK_BYTES);
        if (want === null) break;
        length = want;
        chunk = load(pos, length);
        chunkStart = pos;
        step = stepAt(chunk, 0, pos, to, options.validate);
      }
      if (step.kind !== 'batch') {
        if (options.stopAtInvalid) return;
        throw this.corruptAt(pos, step.kind === 'invalid' ? step.why : step.need === LOG_OVERHEAD ? 'torn batch length prefix' : 'torn batch');
      }
      yield { position: pos, size: step.size, header: step.header, bytes: step.bytes };
      pos += step.size;
    }
  }

  private corruptAt(position: number, why: string): StrandError {
    return new StrandError('KAFKA_STORAGE_ERROR', `corrupt data in ${this.logFile} at byte ${position}: ${why}`);
  }

  /** Position of the first batch whose last offset is >= `offset`, or `size` if none. */
  positionOf(offset: number): { position: number; header: RecordBatchHeader | null } {
    const start = this.index.lookup(offset);
    for (const b of this.scan(start, this.size, { validate: false })) {
      if (b.header.baseOffset + b.header.lastOffsetDelta >= offset) return { position: b.position, header: b.header };
    }
    return { position: this.size, header: null };
  }

  /**
   * Removes every batch containing an offset >= `offset`. Returns the new next offset (the base
   * of the first removed batch, which can be below `offset` when a batch straddles it).
   */
  truncateTo(offset: number): number {
    const { position } = this.positionOf(offset);
    if (position >= this.size) return this.nextOffset;
    fs.ftruncateSync(this.fd, position);
    this.sizeUnsynced = true;
    this.size = position;
    this.flushedSize = Math.min(this.flushedSize, position);
    if (this.flushesInFlight > 0) this.sizeLowWater = Math.min(this.sizeLowWater, position);
    // Recompute the tail from what remains (the truncated batch may have held the max timestamp).
    this.index.reset();
    this.timeIndex.reset();
    this.resetTailState();
    for (const b of this.scan(0, this.size, { validate: false })) this.track(b.header, b.position, b.size);
    this.initRollTime();
    return this.nextOffset;
  }

  /**
   * Whether anything of the segment is not durable: bytes not fdatasynced, a size change, index
   * entries written since the indexes' last fdatasync. A clean close fsyncs only such segments.
   */
  get needsSync(): boolean {
    return this.flushedSize < this.size || this.sizeUnsynced || this.indexesDirty;
  }

  /**
   * fdatasyncs the log file, unless every byte and its size are durable already, and the indexes
   * when `withIndexes` (both, in parallel); returns the size covered.
   */
  async flush(withIndexes: boolean): Promise<number> {
    if (this.closed) return this.flushedSize;
    const target = this.size;
    const syncLog = this.flushedSize < target || this.sizeUnsynced;
    // The smallest size the file had while this fdatasync ran: bytes written after a truncation
    // below `target` are not covered by it, even if the file grew back to `target`.
    this.sizeLowWater = Math.min(this.sizeLowWater, target);
    this.flushesInFlight++;
    if (withIndexes) this.indexesDirty = false;
    this.sizeUnsynced = false;
    try {
      await Promise.all([
        syncLog ? new Promise<void>((resolve, reject) => fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve()))) : undefined,
        withIndexes ? this.index.flush() : undefined,
        withIndexes ? this.timeIndex.flush() : undefined,
      ]);
    } catch (e: unknown) {
      if (withIndexes) this.indexesDirty = true;
      if (syncLog) this.sizeUnsynced = true;
      throw e;
    } finally {
      this.flushesInFlight--;
      if (this.flushesInFlight === 0 && this.closeRequested) this.doClose();
    }
    // Only the bytes that were in the file when the fdatasync started and are still there count:
    // a truncation during the flush (then appends) leaves new, unsynced bytes below `target`.
    const covered = Math.min(target, this.sizeLowWater, this.size);
    if (this.flushesInFlight === 0) this.sizeLowWater = Infinity;
    this.flushedSize = Math.max(this.flushedSize, covered);
    return this.flushedSize;
  }

  flushSync(): void {
    if (this.closed) return;
    fs.fdatasyncSync(this.fd);
    this.index.flushSync();
    this.timeIndex.flushSync();
    this.flushedSize = this.size;
    this.indexesDirty = false;
    this.sizeUnsynced = false;
  }

  /** Sets the log file's modification time (a compacted copy keeps its original's). */
  setLastModified(ms: number): void {
    const at = new Date(ms);
    fs.futimesSync(this.fd, at, at);
    this.lastModifiedMs = ms;
  }

  /** Closes the files (after in-flight flushes finish). */
  close(): void {
    this.closeRequested = true;
    if (this.flushesInFlight === 0) this.doClose();
  }

  private doClose(): void {
    if (this.closed) return;
    this.closed = true;
    // Every file is closed even if writing an index's buffered entries fails.
    try {
      fs.closeSync(this.fd);
    } finally {
      try {
        this.index.close();
      } finally {
        this.timeIndex.close();
      }
    }
  }

  /**
   * Closes the segment as a crash would: buffered index entries are dropped, not written, so
   * nothing reaches its files after this returns. An fdatasync in flight still finishes before
   * the files close, and by then a reopened log may be using the same index files.
   */
  abandon(): void {
    this.index.discardPending();
    this.timeIndex.discardPending();
    this.close();
  }

  /** Closes and removes the segment's files. */
  delete(): void {
    this.close();
    for (const f of [this.logFile, this.index.file, this.timeIndex.file]) fs.rmSync(f, { force: true });
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
