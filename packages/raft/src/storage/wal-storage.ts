// LogStorage as a write-ahead log of plain files: what a Raft node writes per Ready (entries, hard
// state, an installed snapshot) is one record appended with one write(), made durable with one
// fdatasync() before save() resolves. etcd's WAL works the same way.
//
// Why not level: a synced level batch costs a LevelDB write (memtable, its own log) behind
// abstract-level's per-operation encoding, and measured inside a running quorum (one proposal at a
// time) it took 0.91 ms at the median on a follower, against ~0.4 ms for a plain append and
// fdatasync on the same disk; level's JavaScript side alone was ~0.17 ms of main-thread CPU per
// save (packages/raft/README.md, "Where the time goes").
//
// Layout of the directory:
//   <16-digit sequence>.wal   segments, in order; only the last is appended to. A new segment
//                             starts when the last passes `segmentBytes`, and begins with the
//                             current hard state, so older segments never hold the only copy of it.
//   snapshot                  the application's latest snapshot (compact()), replaced atomically
//                             (written to snapshot.tmp, synced, renamed, directory synced).
//
// A record: u32 LE payload length, u32 LE CRC-32C of (type byte + payload), u8 type (1), payload.
// One record per save(), so a save is all there or not at all (a torn record fails its CRC). The
// payload: u8 flags (1 hard state, 2 snapshot, 4 entries), then as flagged
//   hard state  u32 BE length, the hard state (encoding.ts); the last one wins
//   snapshot    u32 BE length, a snapshot received from the leader (encoding.ts): it replaces the
//               whole log
//   entries     f64 BE index of the first entry, then the entries (encoding.ts) to the end; on
//               replay they replace every entry from that index on (Raft §5.3 log replacement)
//
// Crash safety: a record is acknowledged only after its fdatasync, so only the tail of the last
// segment can be torn; load() cuts the file back to its last whole record. A bad record anywhere
// else is corruption, and load() refuses to start rather than serve a damaged log. compact()
// writes the snapshot file first and only then deletes the oldest segments whose every entry it
// covers.
//
// Compaction alongside appends: compact() writes its snapshot file (temp file, fdatasync, rename,
// directory fsync) while later save()s go on, because a large snapshot can take longer to write
// than an election timeout and a node whose saves wait for it answers nothing meanwhile. Only
// the last step, deleting covered segments (and keeping a hard state on disk), runs in line with
// the saves. This is safe because the snapshot file and the segments never describe the same
// thing differently: load() reads the file first and lets a record's entries above its index, or
// a newer installed snapshot in a record, win; a crash before the rename leaves the old file (the
// temp file is removed on load), one after it leaves segments the snapshot covers, which load()
// skips. A concurrent save never truncates at or below a compaction's index (the snapshot covers
// applied, hence committed, entries, and RaftLog refuses to truncate committed ones), and a segment
// is deleted only if every index it mentions is covered and it is not the one appended to.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32c } from '@strand/protocol';
import { fsyncDirAsync, writeFileSyncedAsync } from '@strand/storage';
import { RaftInitialState } from '../core/raft';
import { Entry, HardState, Snapshot } from '../core/types';
import { decodeChunk, decodeHardState, decodeSnapshot, encodeChunk, encodeHardState, encodeSnapshot } from './encoding';
import { LogStorage, StorageUpdate } from './log-storage';

const RECORD_UPDATE = 1;
const HAS_HARD_STATE = 1;
const HAS_SNAPSHOT = 2;
const HAS_ENTRIES = 4;

const RECORD_HEADER_BYTES = 9;
const SEGMENT_SUFFIX = '.wal';
const SNAPSHOT_FILE = 'snapshot';
/** The snapshot file: magic, crc32c of the rest, length, then the encoded snapshot. */
const SNAPSHOT_MAGIC = 0x52534e31; // "RSN1"
const SNAPSHOT_HEADER_BYTES = 12;

function snapshotFileBytes(s: Snapshot): Buffer {
  const body = encodeSnapshot(s);
  const out = Buffer.allocUnsafe(SNAPSHOT_HEADER_BYTES + body.byteLength);
  out.writeUInt32BE(SNAPSHOT_MAGIC, 0);
  out.writeUInt32BE(body.byteLength, 8);
  out.set(body, SNAPSHOT_HEADER_BYTES);
  out.writeUInt32BE(crc32c(out.subarray(8)), 4);
  return out;
}

/** Decodes the snapshot file; a file without the magic is the older, unchecksummed format. */
function snapshotFromFile(file: string, bytes: Buffer): Snapshot {
  if (bytes.byteLength < SNAPSHOT_HEADER_BYTES || bytes.readUInt32BE(0) !== SNAPSHOT_MAGIC) return decodeSnapshot(bytes);
  const len = bytes.readUInt32BE(8);
  if (SNAPSHOT_HEADER_BYTES + len !== bytes.byteLength || bytes.readUInt32BE(4) !== crc32c(bytes.subarray(8))) {
    throw new Error(`raft wal: ${file} is corrupt (bad length or checksum); refusing to restore from it`);
  }
  return decodeSnapshot(bytes.subarray(SNAPSHOT_HEADER_BYTES));
}
const EMPTY_HARD_STATE: HardState = { term: 0, vote: '', commit: 0 };
const EMPTY_SNAPSHOT: Snapshot = { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };

/** The steps of compact(), in order (see WalStorageOptions.onCompactStep). */
export type WalCompactStep =
  /** The new snapshot is in the temp file, synced; the old snapshot file is still the one in use. */
  | 'snapshot-synced'
  /** The new snapshot file is renamed into place and the directory synced; no segment deleted yet. */
  | 'snapshot-durable'
  /** The covered segments are deleted (and the directory synced). */
  | 'segments-dropped';

export interface WalStorageOptions {
  /** A new segment starts once the last one is this large (bytes). Default 64 MiB. */
  readonly segmentBytes?: number;
  /**
   * For tests: called after each step of compact(), which waits for it. A slow hook models a slow
   * disk; copying the directory in it models a crash at that point.
   */
  readonly onCompactStep?: (step: WalCompactStep) => void | Promise<void>;
}

interface Segment {
  readonly seq: number;
  readonly file: string;
  size: number;
  /** Highest log index any record in the segment mentions (entries or snapshot). */
  maxIndex: number;
  /** Whether a record in the segment holds a hard state (compaction keeps one on disk). */
  hasHardState: boolean;
}

/** One record holding everything a save() writes. */
function updateRecord(hardState: HardState | null, snapshot: Snapshot | null, entries: readonly Entry[]): Buffer {
  const hs = hardState === null ? null : encodeHardState(hardState);
  const sn = snapshot === null ? null : encodeSnapshot(snapshot);
  const ents = entries.length === 0 ? null : encodeChunk(entries);
  const size = 1 + (hs === null ? 0 : 4 + hs.byteLength) + (sn === null ? 0 : 4 + sn.byteLength) + (ents === null ? 0 : 8 + ents.byteLength);
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + size);
  out.writeUInt32LE(size, 0);
  out[8] = RECORD_UPDATE;
  let off = RECORD_HEADER_BYTES;
  out[off++] = (hs === null ? 0 : HAS_HARD_STATE) | (sn === null ? 0 : HAS_SNAPSHOT) | (ents === null ? 0 : HAS_ENTRIES);
  for (const part of [hs, sn]) {
    if (part === null) continue;
    out.writeUInt32BE(part.byteLength, off);
    out.set(part, off + 4);
    off += 4 + part.byteLength;
  }
  if (ents !== null) {
    out.writeDoubleBE((entries[0] as Entry).index, off);
    out.set(ents, off + 8);
  }
  out.writeUInt32LE(crc32c(out.subarray(8)), 4);
  return out;
}

function segmentName(seq: number): string {
  return `${seq.toString().padStart(16, '0')}${SEGMENT_SUFFIX}`;
}

/** Offset of the first whole record (length, type and checksum all valid) at or after `from`, or -1. */
function wholeRecordAt(bytes: Buffer, from: number): number {
  for (let p = from; p + RECORD_HEADER_BYTES < bytes.length; p++) {
    const len = bytes.readUInt32LE(p);
    const end = p + RECORD_HEADER_BYTES + len;
    if (len === 0 || end > bytes.length || bytes[p + 8] !== RECORD_UPDATE) continue;
    if (bytes.readUInt32LE(p + 4) === crc32c(bytes.subarray(p + 8, end))) return p;
  }
  return -1;
}

/** write() until all of `buf` is in the file (a regular file may take less at once, e.g. near ENOSPC). */
function writeAll(fd: number, buf: Uint8Array): void {
  for (let off = 0; off < buf.byteLength; ) off += fs.writeSync(fd, buf, off, buf.byteLength - off);
}

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

export class WalStorage implements LogStorage {
  private readonly segmentBytes: number;
  private segments: Segment[] = [];
  private fd = -1;
  private hardState: HardState | null = null;
  /** Index of the latest snapshot: the snapshot file's, or one a save() installed. */
  private snapshotIndex = 0;
  private loaded = false;
  /** close() was called: later calls are refused. */
  private closing = false;
  private closed = false;
  /** Operations run one at a time, in call order (a compaction's snapshot write is not one of them). */
  private tail: Promise<unknown> = Promise.resolve();
  /** compact() calls, one at a time: each writes the same temp file. */
  private compacting: Promise<unknown> = Promise.resolve();
  /** A compaction is writing snapshot.tmp (a load() meanwhile must leave it alone). */
  private writingSnapshot = false;
  private readonly onCompactStep: (step: WalCompactStep) => void | Promise<void>;

  constructor(
    readonly dir: string,
    options: WalStorageOptions = {},
  ) {
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.onCompactStep = options.onCompactStep ?? ((): void => undefined);
  }

  load(): Promise<RaftInitialState | null> {
    return this.serial(() => this.loadNow());
  }

  save(u: StorageUpdate): Promise<void> {
    return this.serial(async () => {
      if (!this.loaded) this.loadNow();
      const hs = u.hardState ?? (this.hardState === null ? EMPTY_HARD_STATE : null);
      if (hs === null && u.snapshot === null && u.entries.length === 0) return;
      const last = u.entries[u.entries.length - 1];
      const maxIndex = Math.max(u.snapshot?.meta.index ?? 0, last?.index ?? 0);
      const seg = await this.segmentForAppend();
      const buf = updateRecord(hs, u.snapshot, u.entries);
      writeAll(this.fd, buf);
      seg.size += buf.length;
      seg.maxIndex = Math.max(seg.maxIndex, maxIndex);
      if (hs !== null) seg.hasHardState = true;
      if (u.sync !== false) await fdatasync(this.fd);
      if (hs !== null) this.hardState = hs;
      if (u.snapshot !== null) this.snapshotIndex = Math.max(this.snapshotIndex, u.snapshot.meta.index);
    });
  }

  /**
   * Writes the snapshot file once every operation called before it is done (so the entries it
   * covers are durable first), without holding up save()s called after it; then, in line with
   * those saves, deletes the segments it covers. Compactions run one at a time.
   */
  compact(snapshot: Snapshot): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError());
    const run = Promise.all([this.tail, this.compacting]).then(() => this.compactNow(snapshot));
    this.compacting = run.catch(() => undefined);
    return run;
  }

  close(): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError());
    this.closing = true;
    // A compaction in progress finishes first: its last step is queued in `tail` when it gets there.
    return this.compacting.then(() =>
      this.serial(() => {
        this.closed = true;
        if (this.fd >= 0) fs.closeSync(this.fd);
        this.fd = -1;
      }, true),
    );
  }

  private async compactNow(snapshot: Snapshot): Promise<void> {
    if (this.closed) throw this.closedError();
    if (!this.loaded) await this.serial(() => this.loaded || this.loadNow(), true);
    const index = snapshot.meta.index;
    if (index <= this.snapshotIndex) return;
    // Off the event loop and outside `tail`: a large snapshot's write and fsync must stall
    // neither heartbeats nor the saves behind it. Until the rename the old file is the snapshot.
    const file = path.join(this.dir, SNAPSHOT_FILE);
    this.writingSnapshot = true;
    try {
      await writeFileSyncedAsync(`${file}.tmp`, snapshotFileBytes(snapshot));
      await this.onCompactStep('snapshot-synced');
      await fs.promises.rename(`${file}.tmp`, file);
    } finally {
      this.writingSnapshot = false;
    }
    await fsyncDirAsync(this.dir);
    // A save may have installed a newer snapshot from the leader meanwhile (load() prefers it).
    this.snapshotIndex = Math.max(this.snapshotIndex, index);
    await this.onCompactStep('snapshot-durable');
    await this.serial(() => this.dropCovered(index), true);
    await this.onCompactStep('segments-dropped');
  }

  /**
   * Deletes the oldest segments whose every index `index` covers (never the one appended to).
   * Runs in `tail`: it may append a hard state, which must not overtake a save's.
   */
  private async dropCovered(index: number): Promise<void> {
    // The hard state must stay on disk: if the segment kept last holds none (a crash right after
    // it was created, before its header was synced, leaves it empty), write it there first,
    // synced, or a restart would find no term and vote and start as a new node.
    const last = this.segments[this.segments.length - 1];
    const dropsAny = this.segments.length > 1 && (this.segments[0] as Segment).maxIndex <= index;
    if (dropsAny && last !== undefined && !last.hasHardState && this.hardState !== null && this.fd >= 0) {
      const rec = updateRecord(this.hardState, null, []);
      writeAll(this.fd, rec);
      await fdatasync(this.fd);
      last.size += rec.length;
      last.hasHardState = true;
    }
    let dropped = 0;
    while (this.segments.length > 1 && (this.segments[0] as Segment).maxIndex <= index) {
      await fs.promises.unlink((this.segments.shift() as Segment).file);
      dropped++;
    }
    if (dropped > 0) await fsyncDirAsync(this.dir);
  }

  private closedError(): Error {
    return new Error(`raft wal ${this.dir}: closed`);
  }

  /** Runs `op` after every earlier one; refused once close() was called, unless `internal` (close's own, a compaction's last step). */
  private serial<T>(op: () => T | Promise<T>, internal = false): Promise<T> {
    if (this.closing && !internal) return Promise.reject(this.closedError());
    const run = this.tail.then(() => {
      if (this.closed) throw this.closedError();
      return op();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private loadNow(): RaftInitialState | null {
    fs.mkdirSync(this.dir, { recursive: true });
    // A compaction's temp file that a crash left behind (the snapshot file is the one in use).
    if (!this.writingSnapshot) fs.rmSync(path.join(this.dir, `${SNAPSHOT_FILE}.tmp`), { force: true });
    let snapshot = EMPTY_SNAPSHOT;
    const snapFile = path.join(this.dir, SNAPSHOT_FILE);
    const snapshotFileFound = fs.existsSync(snapFile);
    if (snapshotFileFound) snapshot = snapshotFromFile(snapFile, fs.readFileSync(snapFile));
    let entries: Entry[] = [];
    let hardState: HardState | null = null;
    const names = fs
      .readdirSync(this.dir)
      .filter((n) => /^\d{16}\.wal$/.test(n))
      .sort();
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    this.segments = [];
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const file = path.join(this.dir, name);
      const bytes = fs.readFileSync(file);
      const seg: Segment = { seq: Number(name.slice(0, 16)), file, size: 0, maxIndex: 0, hasHardState: false };
      let off = 0;
      while (off < bytes.length) {
        const bad = (why: string): never => {
          throw new Error(`raft wal: ${file} is corrupt at byte ${off} (${why}); it is not the last segment, so this is not a torn write`);
        };
        if (off + RECORD_HEADER_BYTES > bytes.length) {
          if (i < names.length - 1) bad('truncated header');
          break;
        }
        const len = bytes.readUInt32LE(off);
        const end = off + RECORD_HEADER_BYTES + len;
        if (end > bytes.length || bytes.readUInt32LE(off + 4) !== crc32c(bytes.subarray(off + 8, end))) {
          if (i < names.length - 1) bad('bad length or checksum');
          // A torn write is the end of the file: a whole record after the damage means the
          // damage is in the middle (bit rot, a failed write followed by good ones), and cutting
          // there would drop synced, acknowledged records. Refuse, as etcd does.
          const next = wholeRecordAt(bytes, off + 1);
          if (next >= 0) throw new Error(`raft wal: ${file} is corrupt at byte ${off} (bad length or checksum) with a whole record at byte ${next} after it; not a torn write, refusing to cut it off`);
          break;
        }
        if (bytes[off + 8] !== RECORD_UPDATE) throw new Error(`raft wal: ${file} at byte ${off}: unknown record type ${String(bytes[off + 8])}`);
        // A plain Uint8Array view: decoding copies each entry out of it (Buffer's slice would
        // not, and every entry would keep the whole segment's bytes alive).
        const payload = new Uint8Array(bytes.buffer, bytes.byteOffset + off + RECORD_HEADER_BYTES, len);
        const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
        const flags = payload[0] as number;
        let p = 1;
        const section = (): Uint8Array => {
          const n = view.getUint32(p);
          p += 4 + n;
          return payload.subarray(p - n, p);
        };
        const hs = (flags & HAS_HARD_STATE) !== 0 ? decodeHardState(section()) : null;
        if ((flags & HAS_SNAPSHOT) !== 0) {
          // A snapshot from the leader (or the bootstrap one, at index 0) replaces the log; the
          // snapshot file may be newer still.
          const s = decodeSnapshot(section());
          entries = [];
          if (s.meta.index >= snapshot.meta.index) snapshot = s;
          seg.maxIndex = Math.max(seg.maxIndex, s.meta.index);
        }
        if ((flags & HAS_ENTRIES) !== 0) {
          const first = view.getFloat64(p);
          const ents = decodeChunk(first, payload.subarray(p + 8));
          const base = snapshot.meta.index;
          const keep = first - base - 1;
          if (keep > entries.length) throw new Error(`raft wal: ${file} at byte ${off}: entries from ${first} leave a gap after ${base + entries.length}`);
          if (keep < 0) entries = ents.filter((x) => x.index > base);
          else {
            entries.length = keep;
            for (const x of ents) entries.push(x);
          }
          if (ents.length > 0) seg.maxIndex = Math.max(seg.maxIndex, first + ents.length - 1);
        }
        if (hs !== null) {
          hardState = hs;
          seg.hasHardState = true;
        }
        off = end;
      }
      if (off < bytes.length) {
        // The torn tail of the last segment: never acknowledged, so cut it off.
        fs.truncateSync(file, off);
      }
      seg.size = off;
      this.segments.push(seg);
    }
    this.hardState = hardState;
    this.snapshotIndex = snapshot.meta.index;
    const last = this.segments[this.segments.length - 1];
    if (last !== undefined) this.fd = fs.openSync(last.file, 'a');
    this.loaded = true;
    if (hardState === null) {
      // Only a node that never synced its first save has no hard state. With a snapshot or any
      // record on disk, starting as a new node would forget the term and vote: refuse.
      if (snapshotFileFound || this.segments.some((s) => s.size > 0)) {
        throw new Error(`raft wal: ${this.dir} holds ${snapshotFileFound ? 'a snapshot' : 'records'} but no hard state (term, vote); refusing to start as a new node`);
      }
      return null;
    }
    return { hardState, snapshot, entries };
  }

  /** The segment to append to: the last one, or a new one once it is full (or none exists). */
  private async segmentForAppend(): Promise<Segment> {
    const last = this.segments[this.segments.length - 1];
    if (last !== undefined && this.fd >= 0 && last.size < this.segmentBytes) return last;
    if (this.fd >= 0) {
      await fdatasync(this.fd);
      fs.closeSync(this.fd);
      this.fd = -1;
    }
    const seq = last === undefined ? 0 : last.seq + 1;
    const seg: Segment = { seq, file: path.join(this.dir, segmentName(seq)), size: 0, maxIndex: 0, hasHardState: false };
    this.fd = fs.openSync(seg.file, 'a');
    this.segments.push(seg);
    if (this.hardState !== null) {
      const rec = updateRecord(this.hardState, null, []);
      writeAll(this.fd, rec);
      seg.size += rec.length;
      seg.hasHardState = true;
    }
    await fsyncDirAsync(this.dir);
    return seg;
  }
}
