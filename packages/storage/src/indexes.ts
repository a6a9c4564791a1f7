/**
 * The sparse indexes of a segment, kept in memory and appended to a file beside the log.
 *
 * Offset index (`<base>.index`), 8 bytes per entry, big-endian:
 *   relativeOffset uint32 (offset - segment base) | position uint32 (byte position in .log)
 * Time index (`<base>.timeindex`), 12 bytes per entry:
 *   timestamp int64 (largest timestamp so far in the segment) | relativeOffset uint32 (the batch
 *   where that timestamp was first reached)
 *
 * Entries are strictly increasing in both fields. Index files are not fsynced on every append:
 * they are flushed with their segment when it rolls or the log closes, and every segment past
 * the recovery point has its indexes rebuilt from the log after an unclean shutdown, so a torn
 * index never survives recovery. On load an index is sanity-checked and rebuilt if it fails.
 */
import * as fs from 'node:fs';

const OFFSET_ENTRY = 8;
const TIME_ENTRY = 12;
/** Buffered entries before a write: a multiple of both entry sizes. */
const PENDING_BYTES = 24 * 256;

abstract class IndexFile {
  protected fd: number;
  protected entries = 0;

  constructor(
    readonly file: string,
    readonly maxEntries: number,
    private readonly entrySize: number,
  ) {
    this.fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  }

  get entryCount(): number {
    return this.entries;
  }

  /** Bytes in the file now (a fresh segment's index over leftovers of an older one has some). */
  get fileBytes(): number {
    return fs.fstatSync(this.fd).size;
  }

  get isFull(): boolean {
    return this.entries >= this.maxEntries;
  }

  /** Reads the file's entries; returns false (and leaves the index empty) if it is malformed. */
  protected loadRaw(onEntry: (buf: Buffer, at: number) => boolean): boolean {
    const size = fs.fstatSync(this.fd).size;
    if (size % this.entrySize !== 0 || size / this.entrySize > this.maxEntries) return false;
    const buf = Buffer.allocUnsafe(size);
    if (size > 0 && fs.readSync(this.fd, buf, 0, size, 0) !== size) return false;
    for (let at = 0; at < size; at += this.entrySize) {
      if (!onEntry(buf, at)) return false;
    }
    return true;
  }

  /**
   * Entries not yet written to the file. Writing every 8-byte entry with its own syscall cost a
   * measurable share of append throughput, so entries are buffered and written in one call when
   * the buffer fills, before an fdatasync, and on close (an unclean shutdown rebuilds the index
   * from the log anyway).
   */
  private pending: Buffer = Buffer.allocUnsafe(PENDING_BYTES);
  private pendingBytes = 0;
  /** Entries already in the file. */
  protected written = 0;

  protected writeEntry(entry: Buffer): void {
    if (this.pendingBytes + entry.length > this.pending.length) this.writePending();
    entry.copy(this.pending, this.pendingBytes);
    this.pendingBytes += entry.length;
    this.entries++;
  }

  /** Writes buffered entries to the file. */
  writePending(): void {
    if (this.pendingBytes === 0) return;
    let done = 0;
    while (done < this.pendingBytes) done += fs.writeSync(this.fd, this.pending, done, this.pendingBytes - done, this.written * this.entrySize + done);
    this.written += this.pendingBytes / this.entrySize;
    this.pendingBytes = 0;
  }

  /** Drops the entries not yet written (a crash loses them too; see LogSegment.abandon). */
  discardPending(): void {
    this.pendingBytes = 0;
  }

  protected truncateEntries(count: number): void {
    this.writePending();
    this.entries = count;
    this.written = count;
    fs.ftruncateSync(this.fd, count * this.entrySize);
  }

  flush(): Promise<void> {
    this.writePending();
    return new Promise((resolve, reject) => fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  flushSync(): void {
    this.writePending();
    fs.fdatasyncSync(this.fd);
  }

  close(): void {
    try {
      this.writePending();
    } finally {
      fs.closeSync(this.fd);
    }
  }
}

/** Sparse map from offset to byte position in the segment's log file. */
export class OffsetIndex extends IndexFile {
  private relOffsets: number[] = [];
  private positions: number[] = [];

  constructor(
    file: string,
    readonly baseOffset: number,
    maxEntries: number,
  ) {
    super(file, maxEntries, OFFSET_ENTRY);
  }

  /** Loads entries from disk; false if the file is inconsistent with a log of `logSize` bytes. */
  load(logSize: number): boolean {
    const rel: number[] = [];
    const pos: number[] = [];
    const ok = this.loadRaw((buf, at) => {
      const r = buf.readUInt32BE(at);
      const p = buf.readUInt32BE(at + 4);
      const n = rel.length;
      if (p >= logSize || (n > 0 && (r <= (rel[n - 1] as number) || p <= (pos[n - 1] as number)))) return false;
      rel.push(r);
      pos.push(p);
      return true;
    });
    if (!ok) return false;
    this.relOffsets = rel;
    this.positions = pos;
    this.entries = rel.length;
    this.written = rel.length;
    return true;
  }

  /** Adds an entry; `offset` and `position` must exceed the last entry's. */
  append(offset: number, position: number): void {
    const rel = offset - this.baseOffset;
    const n = this.relOffsets.length;
    if (n > 0 && (rel <= (this.relOffsets[n - 1] as number) || position <= (this.positions[n - 1] as number))) {
      throw new Error(`offset index entries must increase: (${offset}, ${position}) after (${this.baseOffset + (this.relOffsets[n - 1] as number)}, ${this.positions[n - 1]})`);
    }
    const entry = Buffer.allocUnsafe(OFFSET_ENTRY);
    entry.writeUInt32BE(rel, 0);
    entry.writeUInt32BE(position, 4);
    this.writeEntry(entry);
    this.relOffsets.push(rel);
    this.positions.push(position);
  }

  /** Position of the last indexed batch starting at or before `offset` (0 if none). */
  lookup(offset: number): number {
    const i = floorIndex(this.relOffsets, offset - this.baseOffset);
    return i < 0 ? 0 : (this.positions[i] as number);
  }

  /** Drops entries for offsets >= `offset`. */
  truncateToOffset(offset: number): void {
    const i = floorIndex(this.relOffsets, offset - this.baseOffset - 1) + 1;
    this.relOffsets.length = i;
    this.positions.length = i;
    this.truncateEntries(i);
  }

  reset(): void {
    this.relOffsets = [];
    this.positions = [];
    this.truncateEntries(0);
  }
}

/** Sparse map from timestamp to the offset where the segment first reached it. */
export class TimeIndex extends IndexFile {
  private timestamps: number[] = [];
  private relOffsets: number[] = [];

  constructor(
    file: string,
    readonly baseOffset: number,
    maxEntries: number,
  ) {
    super(file, maxEntries, TIME_ENTRY);
  }

  load(): boolean {
    const ts: number[] = [];
    const rel: number[] = [];
    const ok = this.loadRaw((buf, at) => {
      const t = Number(buf.readBigInt64BE(at));
      const r = buf.readUInt32BE(at + 8);
      const n = ts.length;
      if (n > 0 && (t <= (ts[n - 1] as number) || r < (rel[n - 1] as number))) return false;
      ts.push(t);
      rel.push(r);
      return true;
    });
    if (!ok) return false;
    this.timestamps = ts;
    this.relOffsets = rel;
    this.entries = ts.length;
    this.written = ts.length;
    return true;
  }

  get lastTimestamp(): number {
    return this.timestamps.length === 0 ? -1 : (this.timestamps[this.timestamps.length - 1] as number);
  }

  /** Adds (timestamp, offset) if `timestamp` exceeds the last entry's. */
  maybeAppend(timestamp: number, offset: number): void {
    if (timestamp <= this.lastTimestamp) return;
    const entry = Buffer.allocUnsafe(TIME_ENTRY);
    entry.writeBigInt64BE(BigInt(timestamp), 0);
    entry.writeUInt32BE(offset - this.baseOffset, 8);
    this.writeEntry(entry);
    this.timestamps.push(timestamp);
    this.relOffsets.push(offset - this.baseOffset);
  }

  /**
   * An offset from which a scan finds the first batch holding a timestamp >= `timestamp`: the
   * entry with the largest timestamp strictly below it (every batch before that entry's offset
   * has smaller timestamps), or the segment base.
   */
  lookup(timestamp: number): number {
    const i = floorIndex(this.timestamps, timestamp - 1);
    return i < 0 ? this.baseOffset : this.baseOffset + (this.relOffsets[i] as number);
  }

  /**
   * The last entry whose offset is below `offset`: its timestamp is the largest of every batch
   * before `offset` up to its own, and its offset is where that timestamp was first reached (so
   * every earlier batch is older). Undefined when there is none.
   */
  lastEntryBefore(offset: number): { timestamp: number; offset: number } | undefined {
    const i = floorIndex(this.relOffsets, offset - this.baseOffset - 1);
    return i < 0 ? undefined : { timestamp: this.timestamps[i] as number, offset: this.baseOffset + (this.relOffsets[i] as number) };
  }

  truncateToOffset(offset: number): void {
    let i = this.relOffsets.length;
    while (i > 0 && this.baseOffset + (this.relOffsets[i - 1] as number) >= offset) i--;
    this.timestamps.length = i;
    this.relOffsets.length = i;
    this.truncateEntries(i);
  }

  reset(): void {
    this.timestamps = [];
    this.relOffsets = [];
    this.truncateEntries(0);
  }
}

/** Index of the last element <= `key` in an ascending array, or -1. */
export function floorIndex(sorted: readonly number[], key: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= key) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
