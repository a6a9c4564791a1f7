/**
 * The log of one partition: a directory of segments named by base offset, appended to at the
 * end, read by offset, truncated, retained and compacted.
 *
 * Invariants (checked where cheap, asserted where a violation is a bug):
 * - logStartOffset <= durableEndOffset <= logEndOffset;
 * - segments are sorted by base offset; each segment's offsets lie in [base, next base);
 * - only batches that passed validation (length, magic 2, CRC-32C) are ever written, and every
 *   batch is validated again when read, so corrupt bytes are never served;
 * - after an unclean shutdown every segment holding offsets >= the recovery point is scanned and
 *   truncated at its first torn or corrupt batch before anything else happens.
 *
 * Durability (`flush.policy`): with `fsync` (the default) `durableEndOffset` only moves after an
 * fdatasync covering the batch; fsyncs are group-committed (the next starts as soon as the
 * previous ends and covers every batch appended meanwhile). With `page-cache` the log still
 * fsyncs on roll and close, and `countableEndOffset` (what replication may count toward the high
 * watermark) is the log end offset itself: Kafka's classic behaviour, which does not survive a
 * simultaneous power loss of all replicas.
 *
 * Threading: appends, reads and truncations are synchronous and run on the event loop (a segment
 * write of a batch into the page cache takes microseconds), so they never interleave; only
 * fdatasync runs on the libuv pool, which is why flushes track truncations that happen while they
 * are in flight. Offsets are JS numbers (exact below 2^53).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  COMPRESSION_NAMES,
  LOG_OVERHEAD,
  RECORD_BATCH_OVERHEAD,
  StrandError,
  TOPIC_CONFIG,
  TimestampType,
  NO_PRODUCER_ID,
  batchCompression,
  compressionSupported,
  compressionTypeFromName,
  decodeRecordBatch,
  isControlBatch,
  isLogAppendTimeBatch,
  readBatchHeader,
  recompressRecordBatch,
  setCreateTimeMaxTimestamp,
  setLogAppendTime,
  stampBatch,
  validateBatch,
  validateBatches,
  validateProducedRecords,
  type BatchView,
  type CompressionType,
  type RawConfig,
  type RecordBatchHeader,
  type TopicConfig,
} from '@strand/protocol';
import { systemClock, type Clock } from './clock';
import { DirectoryLock } from './dir-lock';
import { createEmptyFileAsync, fsyncDir, fsyncDirAsync, readFileIfExists, writeFileAtomic, writeFileAtomicAsync, writeFileSyncedAsync } from './files';
import { LeaderEpochCache, type EpochEndOffset } from './leader-epoch-cache';
import { CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, LogSegment, SWAP_SUFFIX, TIME_INDEX_SUFFIX, segmentFileName, type BatchAcceptor, type SegmentConfig } from './segment';

export const RECOVERY_POINT_FILE = 'recovery-point-offset-checkpoint';
export const LOG_START_OFFSET_FILE = 'log-start-offset-checkpoint';
/** Where the last compaction pass ended (Kafka's cleaner-offset-checkpoint, for one partition). */
export const CLEANER_OFFSET_FILE = 'cleaner-offset-checkpoint';
export const CLEAN_SHUTDOWN_FILE = '.kafka_cleanshutdown';

/** ListOffsets sentinels, as Kafka's. */
export const LATEST_TIMESTAMP = -1;
export const EARLIEST_TIMESTAMP = -2;
/** ListOffsets sentinel (KIP-734): the offset of the record with the largest timestamp. */
export const MAX_TIMESTAMP = -3;

export interface PartitionLogOptions {
  /** Topic configs (Kafka names); unknown keys are rejected with INVALID_CONFIG. */
  config?: RawConfig;
  clock?: Clock;
  /**
   * Test-only hook (default off), for simulated power loss in chaos tests: called synchronously
   * with the bytes of each segment file known to be fdatasynced, after every flush that made
   * data durable (before any waiter is released, so before anything is acknowledged as durable),
   * after every truncation, after a compaction swap, and after open. A harness that truncates the files to the last
   * reported positions (and deletes segment files not reported) reproduces what a power loss
   * would leave of this log.
   */
  onDurablePositions?: (dir: string, segments: DurableSegmentPosition[]) => void;
  /**
   * Called once when an fdatasync or a segment write of this log fails. The log refuses writes
   * from then on and never retries (the kernel may have dropped the dirty pages): its owner
   * should stop serving it, as Kafka takes a failed log directory offline and halts a broker
   * with no other.
   */
  onFailure?: (error: StrandError) => void;
}

/** One segment file's durable length, as reported by `PartitionLogOptions.onDurablePositions`. */
export interface DurableSegmentPosition {
  baseOffset: number;
  bytes: number;
}

/** A producer's batches after validation: the bytes to append (possibly recompressed) and their views. */
export interface ValidatedAppend {
  records: Buffer;
  views: BatchView[];
}

export interface AppendInfo {
  firstOffset: number;
  lastOffset: number;
  batchCount: number;
  /** Largest record timestamp appended (the append time with LogAppendTime). */
  maxTimestamp: number;
  /** The broker's append time for LogAppendTime topics, -1 otherwise. */
  logAppendTimeMs: number;
  /** Bytes appended. */
  bytes: number;
}

export interface ReadOptions {
  /** Exclusive upper bound on offsets returned (e.g. the high watermark); default: log end. */
  maxOffset?: number;
  /**
   * Return the first batch even when it is larger than maxBytes (default true, so a reader
   * always progresses). A fetch answer passes false once an earlier partition returned data:
   * only the first may exceed the budget (KIP-74).
   */
  minOneBatch?: boolean;
}

export interface ReadResult {
  /** Whole batches, exactly as stored (validated again on the way out). Empty when nothing to read. */
  records: Buffer;
  /** Base offset of the first batch returned, -1 if none. */
  firstOffset: number;
  /** Offset after the last batch returned (where the next read continues); the requested offset if none. */
  nextOffset: number;
  batchCount: number;
}

export interface TimestampOffset {
  offset: number;
  timestamp: number;
  leaderEpoch: number;
}

/**
 * What open must still make durable once load has read the files: `flush`, the segments to
 * fdatasync (with their indexes) before the directory is fsynced and the recovery point moved
 * to the log end, or null when a clean shutdown left nothing to flush or checkpoint; and
 * whether the clean-shutdown marker is to be removed.
 */
interface PendingOpen {
  clean: boolean;
  flush: LogSegment[] | null;
}

/** What load() found before opening the segments (see planLoad). */
interface LoadPlan {
  clean: boolean;
  bases: readonly number[];
  checkpointStart: number;
  /** Whether segment `i` of `bases` must be recovered (validated from its first byte). */
  recover(i: number): boolean;
}

interface DurableWaiter {
  offset: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class PartitionLog {
  private segments: LogSegment[] = [];
  private config: TopicConfig;
  private readonly clock: Clock;
  private lock: DirectoryLock | null;
  private onDurablePositions: PartitionLogOptions['onDurablePositions'];
  private onFailure: PartitionLogOptions['onFailure'];
  readonly leaderEpochs: LeaderEpochCache;
  private _logStartOffset = 0;
  private _durableEndOffset = 0;
  private recoveryPoint = 0;
  private waiters: DurableWaiter[] = [];
  private durableListeners = new Set<(durableEndOffset: number) => void>();
  private flushing: Promise<void> | null = null;
  private flushRequested = false;
  private dirDirty = false;
  /**
   * The log directory was new at open: its entry in the parent directory is not durable until
   * the parent is fsynced, which the first flush does before anything counts as durable.
   */
  private parentDirDirty = false;
  /** Lowest log end offset a truncation left while a flush was in flight (Infinity if none). */
  private truncatedDuringFlush = Infinity;
  private failure: StrandError | null = null;
  private closed = false;
  /** The close in progress or done (see close). */
  private closing: Promise<void> | null = null;
  private truncations = 0;
  /** End of the range the last complete compaction pass covered (see `firstDirtyOffset`). */
  private cleanedUpTo = 0;
  /** Set while a compaction pass runs; segments it holds must not be replaced by anything else. */
  compactionInProgress = false;
  /** Bytes truncated by recovery at open (for logs and tests). */
  readonly recoveredTruncatedBytes: number = 0;
  /** Whether the last shutdown was clean. */
  readonly openedCleanly: boolean = false;

  private constructor(
    readonly dir: string,
    config: TopicConfig,
    clock: Clock,
    lock: DirectoryLock,
  ) {
    this.config = config;
    this.clock = clock;
    this.lock = lock;
    this.leaderEpochs = new LeaderEpochCache(dir);
  }

  /**
   * Opens (creating if needed) the log in `dir`. Takes the directory lock, completes or discards
   * interrupted compaction swaps, recovers after an unclean shutdown, and fsyncs what recovery
   * kept so that everything below the log end is durable when this resolves. After a clean
   * shutdown nothing is recovered or flushed: the one fsync is the log directory's, after the
   * clean-shutdown marker is removed (see finishOpen).
   */
  static open(dir: string, options: PartitionLogOptions = {}): PartitionLog {
    const config = TOPIC_CONFIG.parse(options.config ?? {});
    fs.mkdirSync(dir, { recursive: true });
    const lock = DirectoryLock.acquire(dir);
    let log: PartitionLog | undefined;
    try {
      log = new PartitionLog(dir, config, options.clock ?? systemClock, lock);
      log.onDurablePositions = options.onDurablePositions;
      log.onFailure = options.onFailure;
      const pending = log.load();
      if (pending !== null) log.finishOpenSync(pending);
      log.reportDurablePositions();
      return log;
    } catch (e: unknown) {
      // The segments opened before the failure (a corrupt one further on, say) are closed: the
      // broker retries a log that failed to open with every metadata image.
      PartitionLog.abortOpen(log, lock);
      throw e;
    }
  }

  /**
   * `open` with its fsyncs (and the recovery point's write) off the event loop, so that a broker
   * opens many logs at once and its heartbeats and requests still get turns: what a restart of
   * thousands of partitions waits on is the disk, which takes many fsyncs in parallel (ext4
   * commits them in one journal transaction). Reading the files, and recovering after an unclean
   * shutdown (scanning segments), still runs on the event loop, as do the rare repairs (an
   * interrupted compaction swap, a leader-epoch checkpoint to trim). The log is only returned,
   * usable, once everything below its log end is durable, as with `open`; on a failure the
   * files are closed and the lock released.
   */
  static async openAsync(dir: string, options: PartitionLogOptions = {}): Promise<PartitionLog> {
    const config = TOPIC_CONFIG.parse(options.config ?? {});
    await fs.promises.mkdir(dir, { recursive: true });
    const lock = DirectoryLock.acquire(dir);
    let log: PartitionLog | undefined;
    try {
      log = new PartitionLog(dir, config, options.clock ?? systemClock, lock);
      log.onDurablePositions = options.onDurablePositions;
      log.onFailure = options.onFailure;
      const pending = await log.loadAsync();
      if (pending !== null) await log.finishOpenAsync(pending);
      log.reportDurablePositions();
      return log;
    } catch (e: unknown) {
      PartitionLog.abortOpen(log, lock);
      throw e;
    }
  }

  private static abortOpen(log: PartitionLog | undefined, lock: DirectoryLock): void {
    for (const s of log?.segments ?? []) s.close();
    lock.release();
  }

  /**
   * Recovery's check of the fields outside the CRC: offsets increase (gaps are legal whatever the
   * topic's cleanup.policy is now, as in Kafka's LogSegment.recover: the log may have been
   * compacted under an earlier policy, or replicated from a compacted leader, and cutting it at a
   * gap would drop acknowledged records). A stamped epoch must be the one the leader-epoch cache
   * (always written before the batch) holds for that offset.
   */
  private batchAcceptor(): BatchAcceptor {
    const epochs = this.leaderEpochs;
    return (h, expected) => {
      if (h.baseOffset < expected) return false;
      // Batches below the first cached epoch start (the log start moved into a segment) cannot be checked.
      const first = epochs.list()[0];
      if (h.partitionLeaderEpoch >= 0 && first !== undefined && h.baseOffset >= first.startOffset && epochs.epochAt(h.baseOffset) !== h.partitionLeaderEpoch) return false;
      return true;
    };
  }

  /** Offset (and time) index capacity of a segment, from `segment.index.bytes`. */
  get maxIndexEntries(): number {
    return this.segmentConfig().maxIndexEntries;
  }

  /** An empty compacted copy of `first` (see LogSegment.create), for the compactor to fill. */
  createCleanedSegment(first: LogSegment): LogSegment {
    return LogSegment.create(this.dir, first.baseOffset, this.segmentConfig(), CLEANED_SUFFIX);
  }

  private segmentConfig(): SegmentConfig {
    return { indexIntervalBytes: this.config['index.interval.bytes'], maxIndexEntries: Math.max(1, Math.floor(this.config['segment.index.bytes'] / 8)) };
  }

  /**
   * Loads the segments (recovering them after an unclean shutdown) and returns what remains to
   * be made durable before the log may be used (finishOpenSync or finishOpenAsync), or null for
   * a brand-new log.
   */
  private load(): PendingOpen | null {
    const plan = this.planLoad();
    if (plan === null) return null;
    let truncated = 0;
    for (let i = 0; i < plan.bases.length; i++) {
      const opened = LogSegment.open(this.dir, plan.bases[i] as number, this.segmentConfig(), plan.recover(i), this.batchAcceptor());
      truncated += opened.truncatedBytes;
      if (!this.loaded(opened, plan.bases, i)) break;
    }
    return this.finishLoad(plan, truncated);
  }

  /** load() with the segments' recovery reading off the event loop (LogSegment.openAsync). */
  private async loadAsync(): Promise<PendingOpen | null> {
    const plan = this.planLoad();
    if (plan === null) return null;
    let truncated = 0;
    for (let i = 0; i < plan.bases.length; i++) {
      const opened = await LogSegment.openAsync(this.dir, plan.bases[i] as number, this.segmentConfig(), plan.recover(i), this.batchAcceptor());
      truncated += opened.truncatedBytes;
      if (!this.loaded(opened, plan.bases, i)) break;
    }
    return this.finishLoad(plan, truncated);
  }

  /**
   * The start of load: completes interrupted swaps, reads the checkpoints and lists the segments
   * to open; null for a brand-new log (created here).
   */
  private planLoad(): LoadPlan | null {
    const clean = fs.existsSync(path.join(this.dir, CLEAN_SHUTDOWN_FILE));
    this.completeInterruptedSwaps();
    const bases = this.listSegmentBases();
    if (bases.length === 0 && !clean && !fs.existsSync(path.join(this.dir, RECOVERY_POINT_FILE)) && !fs.existsSync(path.join(this.dir, LOG_START_OFFSET_FILE))) {
      // A brand-new log: nothing to recover or make durable. Skipping the fsyncs matters when a
      // broker creates a thousand partitions at once; the first flush fsyncs the directory and
      // its parent (which holds the directory's own entry).
      this.segments.push(LogSegment.create(this.dir, 0, this.segmentConfig()));
      this.dirDirty = true;
      this.parentDirDirty = true;
      return null;
    }
    try {
      this.cleanedUpTo = readOffsetCheckpoint(path.join(this.dir, CLEANER_OFFSET_FILE)) ?? 0;
    } catch {
      this.cleanedUpTo = 0; // only schedules compaction: a damaged file makes the whole log dirty
    }
    this.recoveryPoint = readOffsetCheckpoint(path.join(this.dir, RECOVERY_POINT_FILE)) ?? 0;
    const checkpointStart = readOffsetCheckpoint(path.join(this.dir, LOG_START_OFFSET_FILE)) ?? 0;
    const recoveryPoint = this.recoveryPoint;
    return {
      clean,
      bases,
      checkpointStart,
      // A segment needs recovery if it may hold offsets at or past the recovery point.
      recover: (i) => {
        const nextBase = bases[i + 1];
        return !clean && (nextBase === undefined || nextBase > recoveryPoint);
      },
    };
  }

  /** Adds an opened segment; false after a torn or corrupt one, whose later segments are deleted. */
  private loaded(opened: { segment: LogSegment; truncatedBytes: number }, bases: readonly number[], i: number): boolean {
    this.segments.push(opened.segment);
    if (opened.truncatedBytes === 0) return true;
    // Nothing after a torn or corrupt batch can be trusted to be contiguous: drop later segments.
    for (const later of bases.slice(i + 1)) this.deleteSegmentFiles(later);
    return false;
  }

  /** The end of load, once the segments are open (see load's PendingOpen). */
  private finishLoad(plan: LoadPlan, truncated: number): PendingOpen {
    const { clean, checkpointStart } = plan;
    if (this.segments.length > 0 && this.logEndOffset < checkpointStart) {
      // Recovery kept less than the checkpointed log start (a power loss after DeleteRecords took
      // data that was not yet fdatasynced): nothing visible is left, so the log restarts empty at
      // that start, as Kafka's LogLoader.deleteSegmentsIfLogStartGreaterThanLogEnd does. Starting
      // it at the recovered end instead would hand out offsets below the checkpoint, which the
      // next open hides again behind it.
      for (const s of this.segments) s.delete();
      this.segments = [];
      this.leaderEpochs.clear();
    }
    if (this.segments.length === 0) {
      this.segments.push(LogSegment.create(this.dir, checkpointStart, this.segmentConfig()));
      this.dirDirty = true;
    }
    this._logStartOffset = Math.max(checkpointStart, (this.segments[0] as LogSegment).baseOffset);
    // From the start first, then from the end: an epoch the start moves up to the log end (an
    // empty log, e.g. truncateFullyAndStartAt killed before it cleared the cache) has no batch
    // and goes, like any epoch recorded at the log end. The other order kept it there, so a
    // leader's batch of an older epoch at that offset was never recorded, and recovery cut it off.
    this.leaderEpochs.truncateFromStart(this._logStartOffset);
    this.leaderEpochs.truncateFromEnd(this.logEndOffset);
    // Make what recovery kept durable now, so durableEndOffset starts at the log end, and so are
    // indexes rebuilt even on a clean open (missing, or failing their check): the recovery point
    // set after passes every segment, and a kill must not leave one trusted with index files
    // that hold only the entries written so far.
    const flush = this.segments.filter((s) => !clean || s.flushedSize < s.size || s.indexesDirty);
    (this as { recoveredTruncatedBytes: number }).recoveredTruncatedBytes = truncated;
    (this as { openedCleanly: boolean }).openedCleanly = clean;
    // After a clean shutdown, close() fsynced every segment and its indexes and wrote the
    // recovery point at the log end: if nothing was rebuilt, created or deleted since, there is
    // nothing to flush or checkpoint again (Kafka opens such logs without fsyncs too).
    const unchanged = clean && flush.length === 0 && !this.dirDirty && this.recoveryPoint === this.logEndOffset;
    return { clean, flush: unchanged ? null : flush };
  }

  /**
   * The durable end of open (see load's PendingOpen). The clean-shutdown marker's removal is
   * always made durable before the log is used: were a power loss to bring it back after
   * appends, the next open would trust their torn tail without recovery.
   */
  private finishOpenSync(pending: PendingOpen): void {
    const cleanMarker = path.join(this.dir, CLEAN_SHUTDOWN_FILE);
    if (pending.flush !== null) {
      for (const s of pending.flush) s.flushSync();
      fsyncDir(this.dir);
      this.setRecoveryPoint(this.logEndOffset);
    }
    if (pending.clean) {
      fs.rmSync(cleanMarker, { force: true });
      fsyncDir(this.dir);
    }
    this.openDurable();
  }

  /** finishOpenSync with every fsync off the event loop (for openAsync: no one holds the log yet). */
  private async finishOpenAsync(pending: PendingOpen): Promise<void> {
    const cleanMarker = path.join(this.dir, CLEAN_SHUTDOWN_FILE);
    if (pending.flush !== null) {
      await Promise.all(pending.flush.map((s) => s.flush(true)));
      await fsyncDirAsync(this.dir);
      this.recoveryPoint = this.logEndOffset;
      await writeFileAtomicAsync(path.join(this.dir, RECOVERY_POINT_FILE), `0\n${this.logEndOffset}\n`);
    }
    if (pending.clean) {
      await fs.promises.rm(cleanMarker, { force: true });
      await fsyncDirAsync(this.dir);
    }
    this.openDurable();
  }

  private openDurable(): void {
    this.dirDirty = false;
    this._durableEndOffset = this.logEndOffset;
  }

  /** `.cleaned` files are abandoned compaction output; `.swap` files are finished output to install. */
  private completeInterruptedSwaps(): void {
    for (const name of fs.readdirSync(this.dir)) {
      const full = path.join(this.dir, name);
      if (name.endsWith(CLEANED_SUFFIX) || name.endsWith('.tmp')) {
        fs.rmSync(full, { force: true });
      } else if (name.endsWith(LOG_SUFFIX + SWAP_SUFFIX)) {
        const base = name.slice(0, -(LOG_SUFFIX + SWAP_SUFFIX).length);
        // Segments merged into the swap (their base offsets lie within its offsets) go, if a
        // crash left them (see replaceSegments).
        const first = Number(base);
        const last = lastOffsetInFile(full);
        for (const other of this.listSegmentBases()) {
          if (other > first && other <= last) this.deleteSegmentFiles(other);
        }
        // The indexes describe the old file: they go first (a missing index is rebuilt on open),
        // so no crash can leave them beside the new one.
        fs.rmSync(path.join(this.dir, base + INDEX_SUFFIX), { force: true });
        fs.rmSync(path.join(this.dir, base + TIME_INDEX_SUFFIX), { force: true });
        fsyncDir(this.dir);
        fs.renameSync(full, path.join(this.dir, base + LOG_SUFFIX));
        this.dirDirty = true;
        // A swap is only written after the recovery point passed it; recover it to be sure.
        this.recoveryPoint = 0;
        fs.rmSync(path.join(this.dir, RECOVERY_POINT_FILE), { force: true });
      }
    }
  }

  private listSegmentBases(): number[] {
    const bases: number[] = [];
    const names = new Set(fs.readdirSync(this.dir));
    for (const name of names) {
      const m = /^(\d{20})\.log$/.exec(name);
      if (m) bases.push(Number(m[1]));
    }
    // Index files whose log is gone are leftovers of a deletion interrupted by a crash.
    for (const name of names) {
      const m = /^(\d{20})\.(index|timeindex)$/.exec(name);
      if (m && !names.has(`${m[1]}.log`)) fs.rmSync(path.join(this.dir, name), { force: true });
    }
    return bases.sort((a, b) => a - b);
  }

  private deleteSegmentFiles(base: number): void {
    for (const suffix of [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX]) fs.rmSync(path.join(this.dir, segmentFileName(base, suffix)), { force: true });
  }

  // -------------------------------------------------------------------------------------------
  // state

  get logStartOffset(): number {
    return this._logStartOffset;
  }

  /** Offset the next appended record gets. */
  get logEndOffset(): number {
    return this.activeSegment.nextOffset;
  }

  /** Offset below which every record is fdatasynced. */
  get durableEndOffset(): number {
    return this._durableEndOffset;
  }

  /** What replication may count toward the high watermark under the configured flush.policy. */
  get countableEndOffset(): number {
    return this.config['flush.policy'] === 'fsync' ? this._durableEndOffset : this.logEndOffset;
  }

  /** Total bytes of all segment files. */
  get sizeBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Base offsets of the segments, ascending. */
  segmentBaseOffsets(): number[] {
    return this.segments.map((s) => s.baseOffset);
  }

  get topicConfig(): Readonly<TopicConfig> {
    return this.config;
  }

  /** Applies new topic configs (validated; INVALID_CONFIG on bad input, nothing changed then). */
  updateConfig(raw: RawConfig): void {
    this.config = TOPIC_CONFIG.parse(raw);
  }

  private get activeSegment(): LogSegment {
    return this.segments[this.segments.length - 1] as LogSegment;
  }

  private ensureWritable(): void {
    if (this.closed) throw new StrandError('KAFKA_STORAGE_ERROR', `log ${this.dir} is closed`);
    if (this.failure) throw this.failure;
  }

  // -------------------------------------------------------------------------------------------
  // append

  /**
   * Appends the batches in `records` as the leader: validates them (a bad batch rejects the whole
   * call and nothing is written), assigns offsets from the log end, and stamps `leaderEpoch`.
   * Takes ownership of `records`: the batches are stamped in place. `validated`: the views
   * validateForAppend() returned for these same bytes (they are not validated again).
   */
  appendAsLeader(produced: Buffer, leaderEpoch: number, validated?: ValidatedAppend): AppendInfo {
    this.ensureWritable();
    const latestEpoch = this.leaderEpochs.latest?.epoch ?? -1;
    if (leaderEpoch < latestEpoch) {
      throw new StrandError('FENCED_LEADER_EPOCH', `leader epoch ${leaderEpoch} is older than epoch ${latestEpoch} already in the log`);
    }
    const { records, views } = validated ?? this.validate(produced);
    const now = this.clock.nowMs();
    const logAppendTime = this.config['message.timestamp.type'] === 'LogAppendTime';
    let next = this.logEndOffset;
    for (const v of views) {
      stampBatch(records, v.position, next, leaderEpoch);
      if (logAppendTime) setLogAppendTime(records, v.position, now);
      v.header = { ...v.header, baseOffset: next, partitionLeaderEpoch: leaderEpoch, maxTimestamp: logAppendTime ? now : v.header.maxTimestamp };
      next += v.header.lastOffsetDelta + 1;
    }
    this.leaderEpochs.assign(leaderEpoch, this.logEndOffset);
    return this.write(records, views, logAppendTime ? now : -1);
  }

  /**
   * Records that this replica leads `epoch` from the log end on, before it writes anything in it
   * (Kafka's `LeaderEpochFileCache.assign(leaderEpoch, logEndOffset)` in `Partition.makeLeader`):
   * the epoch's end is then the log end, and an epoch this replica never wrote in ends where it
   * starts, for OffsetForLeaderEpoch and the divergence check of fetches. Written to the
   * checkpoint (fsynced) before it returns. The epoch already latest changes nothing; an older
   * one is FENCED_LEADER_EPOCH. An entry left with no batch of its epoch is dropped by a
   * truncation to the log end (the replica became a follower) and at reopen.
   */
  assignLeaderEpoch(epoch: number): void {
    this.ensureWritable();
    const latestEpoch = this.leaderEpochs.latest?.epoch ?? -1;
    if (epoch < latestEpoch) throw new StrandError('FENCED_LEADER_EPOCH', `leader epoch ${epoch} is older than epoch ${latestEpoch} already in the log`);
    if (epoch < 0) throw new StrandError('INVALID_REQUEST', `leader epoch ${epoch} is negative`);
    this.leaderEpochs.assign(epoch, this.logEndOffset);
  }

  /**
   * Appends batches replicated from the leader, keeping their offsets and epochs. The first batch
   * must start at or after the log end (gaps are legal: compacted leaders) and offsets must
   * increase; otherwise nothing is written and INVALID_RECORD is thrown.
   */
  appendAsFollower(records: Buffer): AppendInfo {
    this.ensureWritable();
    // No max.message.bytes check: the leader accepted the batch under its limit, which this
    // broker's may not match (message.max.bytes is per broker, a topic's may have been lowered
    // since); refusing would keep the follower out of the ISR for good (Kafka skips it too).
    const views = validateBatches(records);
    if (views.length === 0) throw new StrandError('INVALID_RECORD', 'no record batches to append');
    this.checkSegmentBytes(views);
    let expectAtLeast = this.logEndOffset;
    for (const v of views) {
      if (v.header.baseOffset < expectAtLeast) {
        throw new StrandError('INVALID_RECORD', `replicated batch at offset ${v.header.baseOffset} does not follow the log end ${expectAtLeast}`);
      }
      expectAtLeast = v.header.baseOffset + v.header.lastOffsetDelta + 1;
    }
    for (const v of views) {
      const latest = this.leaderEpochs.latest;
      if (v.header.partitionLeaderEpoch >= 0 && (latest === undefined || v.header.partitionLeaderEpoch > latest.epoch)) {
        this.leaderEpochs.assign(v.header.partitionLeaderEpoch, v.header.baseOffset);
      }
    }
    return this.write(records, views, -1);
  }

  /**
   * Validates a producer's `records` as appendAsLeader would, without writing anything: complete
   * batches, magic, CRC-32C, max.message.bytes, segment.bytes, and every record (Kafka's
   * LogValidator: structure, keys on compacted topics, timestamps within
   * message.timestamp.before/after.max.ms). It corrects each batch's maxTimestamp in place and
   * recompresses batches whose codec differs from the topic's `compression.type`, so the bytes to
   * append may be a new buffer. A caller that needs the batch headers first (the broker's
   * idempotence check) passes the result to appendAsLeader, so each batch is validated once;
   * appendAsLeader updates the views in place with the assigned offsets and epoch.
   */
  validateForAppend(records: Buffer): ValidatedAppend {
    return this.validate(records);
  }

  private validate(produced: Buffer): ValidatedAppend {
    const cfg = this.config;
    let records = produced;
    let views = validateBatches(records, { maxBatchBytes: cfg['max.message.bytes'] });
    if (views.length === 0) throw new StrandError('INVALID_RECORD', 'no record batches to append');
    const createTime = cfg['message.timestamp.type'] === 'CreateTime';
    const options = {
      requireKeys: cfg['cleanup.policy'].includes('compact'),
      timestampBounds: createTime ? { nowMs: this.clock.nowMs(), beforeMaxMs: cfg['message.timestamp.before.max.ms'], afterMaxMs: cfg['message.timestamp.after.max.ms'] } : undefined,
    };
    const codec = cfg['compression.type'];
    const target = codec === 'producer' ? -1 : compressionTypeFromName(codec === 'uncompressed' ? 'none' : codec);
    let recompress = false;
    for (const v of views) {
      const h = v.header;
      // A producer's batch holds exactly lastOffsetDelta + 1 records (only compaction leaves
      // gaps): a larger delta would make the leader skip offsets, up to 2^31 per batch.
      if (h.recordsCount <= 0 || h.lastOffsetDelta !== h.recordsCount - 1) {
        throw new StrandError('INVALID_RECORD', `a produced batch must hold lastOffsetDelta + 1 records (recordsCount ${h.recordsCount}, lastOffsetDelta ${h.lastOffsetDelta})`);
      }
      if (isControlBatch(h.attributes)) throw new StrandError('INVALID_RECORD', 'clients may not write control batches');
      // Kafka defines codec ids 0-4 only; 5-7 name no codec anywhere, so no reader could ever
      // decode the batch (unlike a defined codec this build lacks, stored as sent below).
      const codecId = batchCompression(h.attributes);
      if (COMPRESSION_NAMES[codecId] === undefined) throw new StrandError('INVALID_RECORD', `compression codec id ${codecId} is not defined (Kafka defines 0-4)`);
      if (h.producerId !== NO_PRODUCER_ID && h.baseSequence < 0) {
        throw new StrandError('INVALID_RECORD', `invalid sequence ${h.baseSequence} in a batch of producer ${h.producerId}`);
      }
      // A codec this broker lacks (a client registered lz4, say): its records cannot be read
      // here, so the batch is stored as sent, as before this walk existed.
      if (!compressionSupported(batchCompression(h.attributes))) continue;
      const maxTimestamp = validateProducedRecords(records, v, options);
      if (createTime && (maxTimestamp !== h.maxTimestamp || isLogAppendTimeBatch(h.attributes))) {
        setCreateTimeMaxTimestamp(records, v.position, maxTimestamp);
        v.header = readBatchHeader(records, v.position);
      }
      if (target >= 0 && batchCompression(h.attributes) !== target) recompress = true;
    }
    if (recompress) {
      const to = target as CompressionType;
      records = Buffer.concat(views.map((v) => (batchCompression(v.header.attributes) === to ? records.subarray(v.position, v.position + v.size) : recompressRecordBatch(records, v.position, to, { skipCrc: true }))));
      views = validateBatches(records, { maxBatchBytes: cfg['max.message.bytes'] });
    }
    this.checkSegmentBytes(views);
    return { records, views };
  }

  private checkSegmentBytes(views: readonly BatchView[]): void {
    for (const v of views) {
      if (v.size > this.config['segment.bytes']) {
        throw new StrandError('RECORD_LIST_TOO_LARGE', `record batch of ${v.size} bytes exceeds segment.bytes ${this.config['segment.bytes']}`);
      }
    }
  }

  private write(records: Buffer, views: BatchView[], logAppendTimeMs: number): AppendInfo {
    const now = this.clock.nowMs();
    const first = views[0] as BatchView;
    let maxTimestamp = -1;
    let i = 0;
    while (i < views.length) {
      const v = views[i] as BatchView;
      if (this.shouldRoll(v, now)) this.roll(v.header.baseOffset);
      const seg = this.activeSegment;
      // Gather the run of batches that fits the active segment, written with one syscall.
      let j = i;
      let runBytes = 0;
      while (j < views.length) {
        const w = views[j] as BatchView;
        if (j > i && seg.wouldOverflow(runBytes + w.size, w.header.baseOffset + w.header.lastOffsetDelta, this.config['segment.bytes'])) break;
        runBytes += w.size;
        if (w.header.maxTimestamp > maxTimestamp) maxTimestamp = w.header.maxTimestamp;
        j++;
      }
      const run = views.slice(i, j);
      const start = (run[0] as BatchView).position;
      const last = run[run.length - 1] as BatchView;
      try {
        seg.append(records, start, last.position + last.size, run, now);
      } catch (e: unknown) {
        // A write that failed part-way (a short write, then ENOSPC or EIO) leaves bytes past the
        // segment's end and its in-memory state half updated: the log fails, as Kafka takes the
        // log directory offline, so that no clean shutdown makes those bytes part of the log
        // (the next open recovers to the last whole batch).
        const error = new StrandError('KAFKA_STORAGE_ERROR', `writing to ${seg.logFile} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        this.ioFailure(error);
        throw error;
      }
      i = j;
    }
    const lastView = views[views.length - 1] as BatchView;
    const info: AppendInfo = {
      firstOffset: first.header.baseOffset,
      lastOffset: lastView.header.baseOffset + lastView.header.lastOffsetDelta,
      batchCount: views.length,
      maxTimestamp,
      logAppendTimeMs,
      bytes: lastView.position + lastView.size - first.position,
    };
    if (this.config['flush.policy'] === 'fsync') this.scheduleFlush();
    return info;
  }

  private shouldRoll(v: BatchView, now: number): boolean {
    const seg = this.activeSegment;
    // Even an empty segment rolls for a batch whose offsets its 32-bit relative offsets cannot
    // hold (a follower of a compacted leader, after a gap of 2^31 offsets), as Kafka's
    // LogSegment.shouldRoll: written there, recovery would cut the log at that batch.
    if (seg.wouldOverflow(v.size, v.header.baseOffset + v.header.lastOffsetDelta, this.config['segment.bytes'])) return true;
    if (seg.size === 0) return false;
    return now - seg.firstAppendMs >= this.rollMs;
  }

  /**
   * Age at which the active segment rolls: `segment.ms`, and for compacted topics at most
   * `max.compaction.lag.ms` (Kafka's maxSegmentMs): the active segment is never compacted, so a
   * record could otherwise wait in it longer than the lag allows.
   */
  private get rollMs(): number {
    const c = this.config;
    return c['cleanup.policy'].includes('compact') ? Math.min(c['segment.ms'], c['max.compaction.lag.ms']) : c['segment.ms'];
  }

  /** Starts a new active segment at `baseOffset` (>= the log end). */
  private roll(baseOffset: number): void {
    const seg = LogSegment.create(this.dir, Math.max(baseOffset, this.logEndOffset), this.segmentConfig());
    this.segments.push(seg);
    this.dirDirty = true;
    // The closed segment (and its indexes) must reach disk before the recovery point passes it.
    this.scheduleFlush();
  }

  /** Forces a roll now if the active segment is not empty (used by retention and tests). */
  rollIfNotEmpty(): void {
    this.ensureWritable();
    if (this.activeSegment.size > 0) this.roll(this.logEndOffset);
  }

  // -------------------------------------------------------------------------------------------
  // durability

  /** Resolves when every offset below `offset` + 1 is durable (fdatasynced). */
  waitForDurable(offset: number): Promise<void> {
    if (offset < this._durableEndOffset) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    if (offset >= this.logEndOffset) return Promise.reject(new StrandError('OFFSET_OUT_OF_RANGE', `offset ${offset} is not in the log (end ${this.logEndOffset})`));
    return new Promise((resolve, reject) => {
      this.waiters.push({ offset, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** Flushes everything appended so far; resolves when it is durable. */
  async flush(): Promise<void> {
    if (this.logEndOffset > this._durableEndOffset) await this.waitForDurable(this.logEndOffset - 1);
    else if (this.flushing) await this.flushing;
  }

  /** Calls `listener` with the new durable end offset whenever it advances. Returns an unsubscribe. */
  onDurable(listener: (durableEndOffset: number) => void): () => void {
    this.durableListeners.add(listener);
    return () => this.durableListeners.delete(listener);
  }

  private scheduleFlush(): void {
    this.flushRequested = true;
    if (this.flushing || this.closed) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
      // A request that arrived after the loop's last check (e.g. from a waiter it just resolved)
      // must not be lost.
      if (this.flushRequested && !this.failure && !this.closed) this.scheduleFlush();
    });
  }

  /** Eager group commit: one fdatasync at a time, each covering everything appended before it. */
  private async flushLoop(): Promise<void> {
    while (this.flushRequested && !this.failure) {
      this.flushRequested = false;
      const target = this.logEndOffset;
      const active = this.activeSegment;
      // Closed segments flush their indexes too: the recovery point is about to pass them.
      const dirty = this.segments.filter((s) => s.flushedSize < s.size || (s !== active && s.indexesDirty));
      const dirDirty = this.dirDirty;
      this.dirDirty = false;
      const parentDirDirty = this.parentDirDirty;
      this.parentDirDirty = false;
      this.truncatedDuringFlush = Infinity;
      try {
        await Promise.all(dirty.map((s) => s.flush(s !== active)));
        if (dirDirty) await fsyncDirAsync(this.dir);
        if (parentDirDirty) await fsyncDirAsync(path.dirname(path.resolve(this.dir)));
      } catch (e: unknown) {
        // fsync failures are not retried (the kernel may have dropped the dirty pages: "fsyncgate").
        const error = new StrandError('KAFKA_STORAGE_ERROR', `fdatasync failed in ${this.dir}: ${String(e)}`, { cause: e });
        this.ioFailure(error);
        return;
      }
      const durable = Math.min(target, this.truncatedDuringFlush, this.logEndOffset);
      this.reportDurablePositions();
      if (durable > this._durableEndOffset) {
        this._durableEndOffset = durable;
        this.releaseWaiters();
        for (const l of this.durableListeners) l(durable);
      }
      // The recovery point may pass every leading segment whose data and indexes are on disk.
      let recoveryPoint = this.activeSegment.baseOffset;
      for (const s of this.segments) {
        if (s === this.activeSegment) break;
        if (s.flushedSize < s.size || s.indexesDirty) {
          recoveryPoint = s.baseOffset;
          break;
        }
      }
      recoveryPoint = Math.min(recoveryPoint, this._durableEndOffset);
      if (recoveryPoint > this.recoveryPoint && !this.closed) {
        try {
          this.setRecoveryPoint(recoveryPoint);
        } catch (e: unknown) {
          // Thrown out of this loop it would be an unhandled rejection (no one awaits the loop),
          // which kills the process; Kafka takes the log directory offline instead.
          this.ioFailure(new StrandError('KAFKA_STORAGE_ERROR', `writing the recovery point of ${this.dir} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e }));
          return;
        }
      }
      if (this._durableEndOffset < this.logEndOffset && (this.config['flush.policy'] === 'fsync' || this.waiters.length > 0)) this.flushRequested = true;
    }
  }

  private releaseWaiters(): void {
    const ready = this.waiters.filter((w) => w.offset < this._durableEndOffset);
    this.waiters = this.waiters.filter((w) => w.offset >= this._durableEndOffset);
    for (const w of ready) w.resolve();
  }

  /** An I/O failure: the log fails for good, and its owner hears of it once (onFailure). */
  private ioFailure(error: StrandError): void {
    const first = this.failure === null;
    this.fail(error);
    if (first) this.onFailure?.(error);
  }

  private fail(error: StrandError): void {
    this.failure = error;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error);
  }

  private setRecoveryPoint(offset: number): void {
    this.recoveryPoint = offset;
    writeFileAtomic(path.join(this.dir, RECOVERY_POINT_FILE), `0\n${offset}\n`);
  }

  // -------------------------------------------------------------------------------------------
  // read

  /**
   * Reads whole batches starting with the one that holds `offset`, up to `maxBytes` (but at least
   * one batch, however large, as Kafka since KIP-74), from a single segment. Batches whose last
   * offset reaches `options.maxOffset` are not returned. Throws OFFSET_OUT_OF_RANGE outside
   * [logStartOffset, logEndOffset], KAFKA_STORAGE_ERROR on corrupt data.
   */
  read(offset: number, maxBytes: number, options: ReadOptions = {}): ReadResult {
    if (this.closed) throw new StrandError('KAFKA_STORAGE_ERROR', `log ${this.dir} is closed`);
    if (offset < this._logStartOffset || offset > this.logEndOffset) {
      throw new StrandError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside [${this._logStartOffset}, ${this.logEndOffset}]`);
    }
    return this.readingFiles('reading', () => this.readSegments(offset, maxBytes, options));
  }

  /**
   * Runs a read of segment files: a file system error (EIO...) fails the log as a failed write
   * does (onFailure) and is thrown as KAFKA_STORAGE_ERROR. Kafka runs LocalLog.read and its
   * timestamp lookups under maybeHandleIOException, which takes the log directory offline.
   */
  private readingFiles<T>(what: string, f: () => T): T {
    try {
      return f();
    } catch (e: unknown) {
      if (!(e instanceof Error) || typeof (e as NodeJS.ErrnoException).code !== 'string' || typeof (e as NodeJS.ErrnoException).syscall !== 'string') throw e;
      const error = new StrandError('KAFKA_STORAGE_ERROR', `${what} ${this.dir} failed: ${e.message}`, { cause: e });
      this.ioFailure(error);
      throw error;
    }
  }

  private readSegments(offset: number, maxBytes: number, options: ReadOptions): ReadResult {
    const bound = Math.min(options.maxOffset ?? this.logEndOffset, this.logEndOffset);
    const empty: ReadResult = { records: Buffer.alloc(0), firstOffset: -1, nextOffset: offset, batchCount: 0 };
    if (offset >= bound) return empty;
    let i = this.segmentIndexFor(offset);
    let from = offset;
    for (; i < this.segments.length; i++) {
      const seg = this.segments[i] as LogSegment;
      const { position, header } = seg.positionOf(from);
      if (header === null) {
        const next = this.segments[i + 1];
        if (next === undefined) return empty;
        from = next.baseOffset;
        continue;
      }
      if (header.baseOffset + header.lastOffsetDelta >= bound) return empty;
      const firstSize = header.batchLength + LOG_OVERHEAD;
      if (firstSize > maxBytes && options.minOneBatch === false) return empty;
      const chunk = seg.read(position, Math.max(maxBytes, firstSize));
      // Keep whole batches below the bound and within maxBytes (the first always).
      let end = 0;
      let count = 0;
      let nextOffset = from;
      while (end + LOG_OVERHEAD <= chunk.length) {
        const size = chunk.readInt32BE(end + 8) + LOG_OVERHEAD;
        if (end + size > chunk.length || (count > 0 && end + size > maxBytes)) break;
        let h: RecordBatchHeader;
        try {
          h = validateBatch(chunk, end);
        } catch (e: unknown) {
          throw new StrandError('KAFKA_STORAGE_ERROR', `corrupt batch in ${seg.logFile} at byte ${position + end}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        const last = h.baseOffset + h.lastOffsetDelta;
        if (last >= bound) break;
        end += size;
        count++;
        nextOffset = last + 1;
      }
      if (count === 0) return empty;
      return { records: chunk.subarray(0, end), firstOffset: header.baseOffset, nextOffset, batchCount: count };
    }
    return empty;
  }

  /** Index of the segment whose range holds `offset` (the last with base <= offset). */
  private segmentIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.segments[mid] as LogSegment).baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /**
   * The first offset whose record timestamp is >= `timestamp` (Kafka's ListOffsets), with that
   * record's timestamp and its batch's leader epoch; null if no such record. The sentinels
   * LATEST_TIMESTAMP (-1) and EARLIEST_TIMESTAMP (-2) give the log end and start. A batch in a
   * codec this build cannot decode answers with its first offset and header maxTimestamp.
   */
  offsetForTimestamp(timestamp: number): TimestampOffset | null {
    if (timestamp === LATEST_TIMESTAMP) return { offset: this.logEndOffset, timestamp: -1, leaderEpoch: this.leaderEpochs.latest?.epoch ?? -1 };
    if (timestamp === EARLIEST_TIMESTAMP) return { offset: this._logStartOffset, timestamp: -1, leaderEpoch: this.leaderEpochs.epochAt(this._logStartOffset) };
    return this.readingFiles('looking up a timestamp in', () => this.findTimestamp(timestamp));
  }

  private findTimestamp(timestamp: number): TimestampOffset | null {
    for (const seg of this.segments) {
      if (seg.maxTimestamp < timestamp || seg.nextOffset <= this._logStartOffset) continue;
      const startOffset = Math.max(seg.timeIndex.lookup(timestamp), this._logStartOffset, seg.baseOffset);
      const { position } = seg.positionOf(startOffset);
      for (const b of seg.scan(position, seg.size, { validate: true })) {
        if (b.header.maxTimestamp < timestamp) continue;
        if (!compressionSupported(batchCompression(b.header.attributes))) {
          // A codec this build lacks (stored as produced): its records cannot be read, but its
          // header says one of them reaches the timestamp. Answer the batch's first offset, a
          // little early at worst (a consumer seeking there reads the whole batch anyway).
          const offset = Math.max(b.header.baseOffset, this._logStartOffset);
          if (offset > b.header.baseOffset + b.header.lastOffsetDelta) continue;
          return { offset, timestamp: b.header.maxTimestamp, leaderEpoch: b.header.partitionLeaderEpoch };
        }
        const batch = decodeRecordBatch(b.bytes, 0, { skipCrc: true });
        // In a LogAppendTime batch every record's timestamp is the batch's append time (its
        // maxTimestamp), not the producer's create time the record bytes still carry.
        const appendTime = batch.timestampType === TimestampType.LogAppendTime ? batch.maxTimestamp : undefined;
        for (const r of batch.records) {
          const ts = appendTime ?? r.timestamp;
          if (r.offset >= this._logStartOffset && ts >= timestamp) return { offset: r.offset, timestamp: ts, leaderEpoch: batch.partitionLeaderEpoch };
        }
      }
    }
    return null;
  }

  /**
   * The record with the largest timestamp among offsets in [log start, `before`) (ListOffsets
   * MAX_TIMESTAMP, KIP-734; `before` is the high watermark, so uncommitted records are not
   * answered), with its batch's leader epoch; of several records with that timestamp, the first
   * (as Kafka's `RecordBatch.offsetOfMaxTimestamp`). Null for a log with no such record.
   * Segments are visited by descending maxTimestamp (an upper bound: it may count records outside
   * the range), and only segments and batches that could beat the best so far are read. Within a
   * segment the scan starts at its time index's last entry below the bound (every batch before
   * that entry's offset is older than its timestamp), reads headers only, decodes just the batches
   * that could win, and stops once it holds the segment's largest timestamp. A batch in a codec
   * this build cannot decode answers with its first readable offset and header maxTimestamp.
   */
  offsetOfMaxTimestamp(before: number): TimestampOffset | null {
    return this.readingFiles('looking up the largest timestamp in', () => this.findMaxTimestamp(before));
  }

  private findMaxTimestamp(before: number): TimestampOffset | null {
    let best: TimestampOffset | null = null;
    // Whether a record at `offset` with `timestamp` (or a batch or segment starting at `offset`
    // whose largest timestamp is `timestamp`) can beat `best`: larger, or as large and earlier.
    const beats = (timestamp: number, offset: number): boolean => best === null || timestamp > best.timestamp || (timestamp === best.timestamp && offset < best.offset);
    const segments = this.segments
      .filter((s) => s.nextOffset > this._logStartOffset && s.baseOffset < before && s.maxTimestamp >= 0)
      .sort((a, b) => b.maxTimestamp - a.maxTimestamp || a.baseOffset - b.baseOffset);
    for (const seg of segments) {
      if (!beats(seg.maxTimestamp, seg.baseOffset)) continue;
      const end = Math.min(before, seg.nextOffset);
      const lo = Math.max(this._logStartOffset, seg.baseOffset);
      // Visits batches holding offsets in [from, until) (clipped to [lo, end)); returns the largest
      // timestamp seen in range.
      const scan = (from: number, until: number): number => {
        let seen = -1;
        for (const b of seg.scan(seg.positionOf(from).position, seg.size, { validate: false })) {
          if (b.header.baseOffset >= until) break;
          const first = Math.max(b.header.baseOffset, lo);
          const last = Math.min(b.header.baseOffset + b.header.lastOffsetDelta, end - 1);
          if (first > last) continue;
          if (!beats(b.header.maxTimestamp, first)) {
            seen = Math.max(seen, Math.min(b.header.maxTimestamp, best?.timestamp ?? -1));
            continue;
          }
          if (!compressionSupported(batchCompression(b.header.attributes))) {
            best = { offset: first, timestamp: b.header.maxTimestamp, leaderEpoch: b.header.partitionLeaderEpoch };
            seen = Math.max(seen, b.header.maxTimestamp);
          } else {
            const batch = decodeRecordBatch(b.bytes, 0);
            const appendTime = batch.timestampType === TimestampType.LogAppendTime ? batch.maxTimestamp : undefined;
            for (const r of batch.records) {
              const ts = appendTime ?? r.timestamp;
              if (r.offset < first || r.offset > last) continue;
              seen = Math.max(seen, ts);
              if (beats(ts, r.offset)) best = { offset: r.offset, timestamp: ts, leaderEpoch: batch.partitionLeaderEpoch };
            }
          }
          // Held here already: nothing later in this segment is larger, and an equal timestamp
          // later does not win. (A best from a later segment may still lose to an equal one here.)
          if (best !== null && best.timestamp >= seg.maxTimestamp && best.offset <= last) break;
        }
        return seen;
      };
      // From the last time index entry below the bound back, one entry at a time, until a range
      // holds a record as new as its entry's timestamp (every batch before the entry is older).
      // A range may not: the bound cut the batch that reached the entry's timestamp (its records
      // in range are older), or that batch is a header with no records (a producer's last batch
      // compaction emptied keeps its maxTimestamp), and so may the entry before it.
      for (let until = end, entry = seg.timeIndex.lastEntryBefore(end); ; until = entry.offset, entry = seg.timeIndex.lastEntryBefore(until)) {
        if (entry === undefined || entry.offset <= lo) {
          scan(lo, until);
          break;
        }
        if (scan(entry.offset, until) >= entry.timestamp) break;
      }
    }
    return best;
  }

  /** Where `epoch` ends in this log (OffsetsForLeaderEpoch), for follower truncation. */
  endOffsetForEpoch(epoch: number): EpochEndOffset {
    return this.leaderEpochs.endOffsetFor(epoch, this.logEndOffset);
  }

  // -------------------------------------------------------------------------------------------
  // truncation, deletion, retention

  /**
   * Removes every batch holding an offset >= `offset` (a follower truncating to the leader's
   * epoch end). The new log end is `offset`, or the base of a batch that straddled it, never
   * below the log start.
   * Durability waiters for removed offsets fail with NOT_LEADER_OR_FOLLOWER. At or past the log
   * end no batch goes, but an epoch recorded at the log end with no batch of it is dropped (as in
   * Kafka's truncateTo: this replica led that epoch, wrote nothing, and now follows).
   */
  truncateTo(offset: number): void {
    this.ensureWritable();
    if (offset >= this.logEndOffset) {
      this.leaderEpochs.truncateFromEnd(this.logEndOffset);
      return;
    }
    if (offset <= this._logStartOffset) {
      this.truncateFullyAndStartAt(offset < this._logStartOffset ? this._logStartOffset : offset);
      return;
    }
    this.truncations++;
    while (this.segments.length > 1 && this.activeSegment.baseOffset >= offset) {
      (this.segments.pop() as LogSegment).delete();
      this.dirDirty = true;
    }
    const straddling = this.activeSegment.positionOf(offset).header;
    // Its indexes are rebuilt in memory and reach the disk with a later flush (a kill loses the
    // entries still buffered), so the recovery point must not stay past it, even when the roll
    // below makes it a closed segment.
    const truncated = this.activeSegment;
    truncated.truncateTo(offset);
    // The log ends at `offset`, or where a batch straddling it began, as Kafka's truncateTo sets
    // the log end to the target: offsets below it that hold no batch were compacted away (they
    // were committed, maybe consumed), and the next leader append must not get them again. A
    // batch straddling the log start went whole: the end stays at the log start (every record
    // below it is deleted), never below, or the next append would get an offset no read reaches.
    // When the remaining batches end earlier, an empty segment keeps that end across a reopen.
    const end = Math.max(this._logStartOffset, straddling === null ? offset : Math.min(offset, straddling.baseOffset));
    if (this.logEndOffset < end) this.roll(end);
    this.afterTruncation(truncated.baseOffset);
  }

  /** Deletes everything and restarts the log at `offset` (a replica too far behind the leader's log start). */
  truncateFullyAndStartAt(offset: number): void {
    this.ensureWritable();
    this.truncations++;
    for (const s of this.segments) s.delete();
    this.segments = [LogSegment.create(this.dir, offset, this.segmentConfig())];
    this.dirDirty = true;
    this._logStartOffset = offset;
    // Nothing lies below the new start. Set before the checkpoint writes, which may fail.
    this._durableEndOffset = offset;
    this.afterTruncation();
    writeFileAtomic(path.join(this.dir, LOG_START_OFFSET_FILE), `0\n${offset}\n`);
    this.leaderEpochs.clear();
  }

  /** The test-only power-loss hook (see `PartitionLogOptions.onDurablePositions`); `closing`: from close, once its fdatasyncs are done. */
  private reportDurablePositions(closing = false): void {
    if (this.onDurablePositions === undefined || (this.closed && !closing)) return;
    this.onDurablePositions(this.dir, this.segments.map((s) => ({ baseOffset: s.baseOffset, bytes: Math.min(s.flushedSize, s.size) })));
  }

  /** `recoveryCeiling`: the recovery point may not stay above it (default: the new log end). */
  private afterTruncation(recoveryCeiling = this.logEndOffset): void {
    this.reportDurablePositions();
    const end = this.logEndOffset;
    // Durability first, in memory: a checkpoint write below may fail (ENOSPC, EIO) and throw, and
    // offsets past the new end must never stay counted as durable (the next appends there would
    // be, before any fdatasync).
    this.truncatedDuringFlush = Math.min(this.truncatedDuringFlush, end);
    if (this._durableEndOffset > end) this._durableEndOffset = end;
    const gone = this.waiters.filter((w) => w.offset >= end);
    this.waiters = this.waiters.filter((w) => w.offset < end);
    for (const w of gone) w.reject(new StrandError('NOT_LEADER_OR_FOLLOWER', `offset ${w.offset} was truncated before it became durable`));
    this.scheduleFlush();
    const recoveryPoint = Math.min(end, recoveryCeiling);
    if (this.recoveryPoint > recoveryPoint) this.setRecoveryPoint(recoveryPoint);
    // What is appended from here on is dirty.
    if (this.cleanedUpTo > end) this.setCleanedUpTo(end);
    this.leaderEpochs.truncateFromEnd(end);
  }

  /**
   * Moves the log start to `offset` (Kafka's DeleteRecords) and deletes the segments entirely
   * below it. OFFSET_OUT_OF_RANGE if `offset` is past the log end.
   */
  deleteRecordsBefore(offset: number): void {
    this.ensureWritable();
    if (offset > this.logEndOffset) throw new StrandError('OFFSET_OUT_OF_RANGE', `cannot delete records before ${offset}: the log ends at ${this.logEndOffset}`);
    if (offset <= this._logStartOffset) return;
    this._logStartOffset = offset;
    writeFileAtomic(path.join(this.dir, LOG_START_OFFSET_FILE), `0\n${offset}\n`);
    if (this.activeSegment.nextOffset <= offset && this.activeSegment.size > 0) this.roll(this.logEndOffset);
    this.deleteLeadingSegments((seg) => seg.nextOffset <= offset);
    this.leaderEpochs.truncateFromStart(offset);
  }

  /**
   * Deletes old segments by `retention.ms` (newest record older than now - retention.ms; the
   * segment's last write when its records carry no timestamp, as Kafka's largestTimestamp) and
   * `retention.bytes` (oldest first while the log stays at or above the limit), never past
   * `upperBoundOffset` (the high watermark: unreplicated data is never deleted). Only with
   * `cleanup.policy` containing `delete`; segments wholly below the log start go with any policy.
   * Returns the number of segments deleted.
   */
  applyRetention(upperBoundOffset: number = this.logEndOffset): number {
    this.ensureWritable();
    // Segments wholly below the log start go whatever the policy (Kafka's
    // deleteLogStartOffsetBreachedSegments): DeleteRecords checkpoints the new start before it
    // deletes them, and a crash in between leaves them, for good in a compacted log.
    const logStart = this._logStartOffset;
    const belowStart = this.deleteLeadingSegments(() => (this.segments[1] as LogSegment).baseOffset <= logStart);
    if (!this.config['cleanup.policy'].includes('delete')) return belowStart;
    const now = this.clock.nowMs();
    const retentionMs = this.config['retention.ms'];
    const retentionBytes = this.config['retention.bytes'];
    // An empty segment (compaction removed every record) has no timestamp and ages by its last
    // write, like Kafka's: skipping it would stop time-based retention at it for good.
    const expired = (seg: LogSegment): boolean => retentionMs >= 0 && seg.largestTimestamp < now - retentionMs;
    // An expired active segment is rolled so it can go too (as Kafka does).
    const active = this.activeSegment;
    if (active.size > 0 && expired(active) && active.nextOffset <= upperBoundOffset) this.roll(this.logEndOffset);
    let size = this.sizeBytes;
    const deleted = this.deleteLeadingSegments((seg) => {
      if (seg.nextOffset > upperBoundOffset) return false;
      const bySize = retentionBytes >= 0 && size - seg.size >= retentionBytes;
      if (expired(seg) || bySize) {
        size -= seg.size;
        return true;
      }
      return false;
    });
    if (deleted > 0) {
      const start = Math.max(this._logStartOffset, (this.segments[0] as LogSegment).baseOffset);
      if (start !== this._logStartOffset) {
        this._logStartOffset = start;
        writeFileAtomic(path.join(this.dir, LOG_START_OFFSET_FILE), `0\n${start}\n`);
        this.leaderEpochs.truncateFromStart(start);
      }
    }
    return belowStart + deleted;
  }

  /** Deletes segments from the front while `pred` holds, never the active one. */
  private deleteLeadingSegments(pred: (seg: LogSegment) => boolean): number {
    let n = 0;
    while (this.segments.length > 1 && pred(this.segments[0] as LogSegment)) {
      (this.segments.shift() as LogSegment).delete();
      n++;
    }
    if (n > 0) {
      this.dirDirty = true;
      this.scheduleFlush();
    }
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // compaction support (see compactor.ts)

  /**
   * The leading segments before the active one whose offsets all lie below `upperBoundOffset`
   * and whose bytes are fdatasynced: a run from the log start, ending at the first that is not.
   * Never a later segment past a gap: compacting it without the earlier ones could drop a
   * tombstone while an older value of its key stays in a segment left out.
   */
  closedSegmentsBelow(upperBoundOffset: number): readonly LogSegment[] {
    const out: LogSegment[] = [];
    for (const s of this.segments.slice(0, -1)) {
      if (s.nextOffset > upperBoundOffset || s.flushedSize !== s.size) break;
      out.push(s);
    }
    return out;
  }

  /**
   * Kafka's first dirty offset: where the last complete compaction pass ended, or the log start
   * if that lies outside the log. Segments before it are "clean" for min.cleanable.dirty.ratio.
   * Only a scheduling hint: a pass always reads its whole range.
   */
  get firstDirtyOffset(): number {
    return this.cleanedUpTo < this._logStartOffset || this.cleanedUpTo > this.logEndOffset ? this._logStartOffset : this.cleanedUpTo;
  }

  /** Records (durably) that a compaction pass covered everything below `offset`. */
  setCleanedUpTo(offset: number): void {
    this.cleanedUpTo = offset;
    writeFileAtomic(path.join(this.dir, CLEANER_OFFSET_FILE), `0\n${offset}\n`);
  }

  /**
   * Whether `seg` is still a closed (not active) segment of this open log: a compaction pass
   * checks it after every yield, as retention, DeleteRecords and truncation may have removed the
   * segment (and closed its file) or made it the active one meanwhile.
   */
  holdsClosedSegment(seg: LogSegment): boolean {
    const i = this.segments.indexOf(seg);
    return this.isOpen && i >= 0 && i < this.segments.length - 1 && !seg.isClosed;
  }

  /** Whether the log is open and has not failed. */
  get isOpen(): boolean {
    return !this.closed && this.failure === null;
  }

  /**
   * Truncations so far (truncateTo, truncateFullyAndStartAt). A compaction pass that sees this
   * change aborts: its offset map may name records that are gone (Kafka aborts its cleaner too).
   */
  get truncationCount(): number {
    return this.truncations;
  }

  /**
   * Installs `cleaned` (LogSegment.create with CLEANED_SUFFIX), a complete and fdatasynced
   * compacted copy of the adjacent closed segments `olds` (one, or several merged) with its
   * indexes, as the segment of the first of them; the others go. Crash-safe: the copy's log is
   * renamed to `.swap` (which an interrupted open installs), the other segments' files and the
   * first's indexes are deleted (durably), then the `.swap` is renamed over the first log and the
   * copy's indexes over the deleted ones. A crash before the log rename leaves the `.swap`, which
   * open installs, deleting the segments whose base offsets its offsets cover (the merged ones;
   * any left past its last offset lost every record to compaction and stay as they were, which is
   * consistent); a crash after it leaves the new log without (both) indexes, rebuilt on open (the
   * `.cleaned` indexes are discarded). No crash leaves old
   * indexes beside the new log (they would point into the wrong bytes, and a segment below the
   * recovery point is not rescanned). A failure before anything is deleted removes the `.swap`
   * (a `.swap` left in a log that goes on would later be installed over newer data); a failure
   * after that fails the log (KAFKA_STORAGE_ERROR), and a restart finishes the job.
   */
  replaceSegments(olds: readonly LogSegment[], cleaned: LogSegment): void {
    const first = olds[0];
    const i = first === undefined ? -1 : this.segments.indexOf(first);
    // A bug if not (the caller checks): closed, adjacent segments of this log.
    if (i < 0 || !olds.every((s, k) => this.segments[i + k] === s && this.holdsClosedSegment(s))) throw new Error('replaceSegments: not adjacent closed segments of this log');
    const firstSeg = first as LogSegment;
    const swapFile = firstSeg.logFile + SWAP_SUFFIX;
    cleaned.close();
    try {
      fs.renameSync(cleaned.logFile, swapFile);
      fsyncDir(this.dir);
    } catch (e: unknown) {
      try {
        fs.rmSync(swapFile, { force: true });
        fsyncDir(this.dir);
      } catch (e2: unknown) {
        this.ioFailure(new StrandError('KAFKA_STORAGE_ERROR', `cannot remove ${swapFile} after a failed compaction swap: ${String(e2)}`, { cause: e2 }));
      }
      throw e;
    }
    // Each old log stays open here until the end, so the unlinks and the rename over the first
    // only drop names: the blocks of what may be a gigabyte are freed by the last close, which
    // runs off the event loop (a rename over a 180 MB log took 94 ms in it).
    const holders: number[] = [];
    try {
      for (const s of olds) holders.push(fs.openSync(s.logFile, 'r'));
      for (const s of olds) s.close();
      for (const s of olds.slice(1)) for (const f of [s.logFile, s.index.file, s.timeIndex.file]) fs.rmSync(f, { force: true });
      fs.rmSync(firstSeg.index.file, { force: true });
      fs.rmSync(firstSeg.timeIndex.file, { force: true });
      fsyncDir(this.dir);
      fs.renameSync(swapFile, firstSeg.logFile);
      // Only now the copy's indexes (built as it was written, fdatasynced with it): beside the
      // old log they would point into the wrong bytes.
      fs.renameSync(cleaned.index.file, firstSeg.index.file);
      fs.renameSync(cleaned.timeIndex.file, firstSeg.timeIndex.file);
      fsyncDir(this.dir);
      // No rescan: the indexes are loaded (a damaged one would be rebuilt, and then synced here).
      const { segment } = LogSegment.open(this.dir, firstSeg.baseOffset, this.segmentConfig(), false, this.batchAcceptor());
      if (segment.indexesDirty) segment.flushSync();
      this.segments.splice(i, olds.length, segment);
      // The merged file is longer than its first segment was reported: say so before a power
      // loss harness would cut it back to that.
      this.reportDurablePositions();
    } catch (e: unknown) {
      const failure = new StrandError('KAFKA_STORAGE_ERROR', `installing a compacted segment in ${this.dir} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      this.ioFailure(failure);
      throw failure;
    } finally {
      for (const fd of holders) fs.close(fd, () => undefined);
    }
  }

  // -------------------------------------------------------------------------------------------
  // shutdown

  /**
   * Makes everything durable, records a clean shutdown and releases the directory lock, with
   * every fsync off the event loop, so that a broker closes many logs at once (Kafka closes a
   * log directory's logs on a thread pool). From the call on the log refuses writes; durability
   * waiters are answered once their offsets are durable. A second call returns the first's
   * promise; after abandon() it does nothing.
   *
   * It fsyncs only what is not durable yet: the segments with unflushed bytes, a size change or
   * index entries since their last fdatasync (the log file and its indexes in parallel), the
   * parent directory if the log's own directory is new (shared with every log closing at once),
   * and the recovery point's temp file if the point moved; then it renames that file into place,
   * fsyncs the log directory if segment files were created or deleted since its last fsync,
   * creates the clean-shutdown marker, and fsyncs the log directory (once in all, usually). The
   * marker is created only after every fdatasync of the log's files and every directory change
   * before it are durable, so whenever it survives a crash, so does everything it vouches for. The
   * recovery point's rename and the marker may become durable together: a marker without the new
   * point makes the next open rewrite the point (still without recovery: the data was synced
   * first); the point without the marker makes it recover from the log end. A crash before the
   * last directory fsync may leave a log without the marker, which the next open recovers.
   */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.closed ? Promise.resolve() : this.closeDurably();
    return this.closing;
  }

  private async closeDurably(): Promise<void> {
    this.closed = true;
    // Asked for before the first await, so that logs closed together share one fsync of it; a
    // failure is seen below (no handler until then would be an unhandled rejection).
    const parent = this.parentDirDirty && this.failure === null ? settled(fsyncDirAsync(path.dirname(path.resolve(this.dir)))) : null;
    this.parentDirDirty = false;
    try {
      // A group commit in flight finishes first (it may still be fdatasyncing); none starts now.
      if (this.flushing) await this.flushing;
      if (this.failure === null) {
        const end = this.logEndOffset;
        const recoveryPointFile = path.join(this.dir, RECOVERY_POINT_FILE);
        const moveRecoveryPoint = this.recoveryPoint !== end;
        const synced = await Promise.all([
          ...this.segments.filter((seg) => seg.needsSync).map((seg) => settled(seg.flush(true))),
          moveRecoveryPoint ? settled(writeFileSyncedAsync(`${recoveryPointFile}.tmp`, `0\n${end}\n`)) : null,
          parent,
        ]);
        const failed = synced.find((r) => r !== null && 'error' in r);
        if (failed) throw failed.error;
        this._durableEndOffset = end;
        this.reportDurablePositions(true);
        this.releaseWaiters();
        for (const l of this.durableListeners) l(end);
        if (moveRecoveryPoint) {
          await fs.promises.rename(`${recoveryPointFile}.tmp`, recoveryPointFile);
          this.recoveryPoint = end;
        }
        // Segment files created or deleted since the last directory fsync must be durable before
        // the marker can be: a deletion a crash undid would bring back, trusted, a segment that a
        // truncation removed.
        if (this.dirDirty) {
          this.dirDirty = false;
          await fsyncDirAsync(this.dir);
        }
        await createEmptyFileAsync(path.join(this.dir, CLEAN_SHUTDOWN_FILE));
        await fsyncDirAsync(this.dir);
      }
    } finally {
      // Whatever failed above (no clean-shutdown marker then: the next open recovers), the files
      // are closed and the directory released, or they stay held for the life of the process.
      let closeError: unknown;
      for (const s of this.segments) {
        try {
          s.close();
        } catch (e: unknown) {
          closeError ??= e;
        }
      }
      this.fail(new StrandError('KAFKA_STORAGE_ERROR', `log ${this.dir} is closed`));
      this.lock?.release();
      this.lock = null;
      if (closeError !== undefined) throw closeError;
    }
  }

  /**
   * Drops the log as a crash would: no flush, no clean-shutdown marker, buffered index entries
   * lost, files closed, lock released, and nothing written to its files once this returns (an
   * fdatasync in flight finishes, writing nothing more, so a reopened log is safe from it). For
   * crash tests, for abandoning a log directory after an I/O failure, and for a log about to be
   * deleted (nothing of it needs to be durable).
   */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.segments) {
      try {
        s.abandon();
      } catch {
        // A close that fails; the other files are closed regardless (LogSegment.doClose) and the
        // directory must still be released.
      }
    }
    this.fail(new StrandError('KAFKA_STORAGE_ERROR', `log ${this.dir} was abandoned`));
    this.lock?.release();
    this.lock = null;
  }
}

/** `p`'s outcome without rejecting: { error } if it failed. */
function settled(p: Promise<unknown>): Promise<{ error?: unknown }> {
  return p.then(
    () => ({}),
    (error: unknown) => ({ error }),
  );
}

/**
 * The last offset held by the batches of a log file, found by walking batch headers (no CRC
 * check: a `.swap` is complete and fdatasynced before it is named so); -1 if none.
 */
function lastOffsetInFile(file: string): number {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const header = Buffer.alloc(RECORD_BATCH_OVERHEAD);
    let last = -1;
    for (let pos = 0; pos + RECORD_BATCH_OVERHEAD <= size; ) {
      if (fs.readSync(fd, header, 0, RECORD_BATCH_OVERHEAD, pos) < RECORD_BATCH_OVERHEAD) break;
      const h = readBatchHeader(header, 0);
      const next = pos + h.batchLength + LOG_OVERHEAD;
      if (h.batchLength + LOG_OVERHEAD < RECORD_BATCH_OVERHEAD || next > size) break;
      last = h.baseOffset + h.lastOffsetDelta;
      pos = next;
    }
    return last;
  } finally {
    fs.closeSync(fd);
  }
}

function readOffsetCheckpoint(file: string): number | undefined {
  const text = readFileIfExists(file);
  if (text === undefined) return undefined;
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const v = Number(lines[1]);
  if (lines[0] !== '0' || !Number.isSafeInteger(v) || v < 0) {
    throw new StrandError('KAFKA_STORAGE_ERROR', `malformed checkpoint file ${file}`);
  }
  return v;
}

