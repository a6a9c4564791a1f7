/**
 * Log compaction (`cleanup.policy=compact`): keep the latest record for each key.
 *
 * A pass works only on closed segments (never the active one) below an upper bound (the high
 * watermark), so appends go on untouched while it runs; it yields to the event loop between
 * batches so it never blocks appends for long. Adjacent segments that fit one segment together
 * (`segment.bytes`, index capacity) are rewritten into one `<first base>.log.cleaned` (its indexes
 * built as it is written, into `.index.cleaned` and `.timeindex.cleaned`), fdatasynced off the
 * event loop, and handed to PartitionLog.replaceSegments, which renames it to `.swap` and installs
 * it and its indexes in their place without rescanning it (a restart completes an interrupted
 * swap and discards unfinished `.cleaned` files).
 *
 * Scheduling, as Kafka's: a pass runs only when the dirty share of the compactable range (bytes
 * in segments past where the last complete pass ended, over all its bytes, from segment sizes)
 * exceeds `min.cleanable.dirty.ratio`, or a dirty segment's first record is older than
 * `max.compaction.lag.ms` (whose active segment rolls at that age too, see PartitionLog). Its
 * offset map (offset-map.ts: 24 bytes per key, `log.cleaner.dedupe.buffer.size`; keys hashed
 * with SipHash under a secret key drawn for the pass, so no one can craft keys that collide) is
 * built from the dirty segments, as many as it holds; the pass rewrites the clean segments and
 * those, and the next pass goes on from there.
 *
 * Rules, as Kafka's cleaner:
 * - a keyed record survives unless the offset map holds a later offset for its key;
 *   records without a key and control batches are kept, and so are batches in a codec this build
 *   cannot read (copied unchanged: a pass must not fail on them forever);
 * - records newer than `min.compaction.lag.ms` are not compacted (their segments are skipped);
 * - a tombstone (null value) is kept for `delete.retention.ms` after the cleaner first reached it:
 *   the first pass that keeps it stamps the batch's delete horizon (KIP-534, attributes bit 6),
 *   and a later pass past that horizon drops it;
 * - a rewritten batch keeps its base offset, last offset delta, leader epoch and producer fields,
 *   so offsets and producer state are unchanged, and a LogAppendTime batch keeps its append time
 *   (its maxTimestamp, which its records read as; retention and ListOffsets go by it); a batch
 *   left with no records is dropped, except the last batch of a producer id, whose header stays
 *   with no records (Kafka's RETAIN_EMPTY): producer state is rebuilt from batch headers;
 * - batches that lose nothing are copied byte for byte (CRC and compression untouched).
 */
import { randomBytes } from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  NO_PRODUCER_ID,
  StrandError,
  batchCompression,
  batchHasDeleteHorizon,
  compressionSupported,
  decodeRecordBatch,
  encodeEmptyRecordBatch,
  encodeRecordBatch,
  isControlBatch,
  lastOffsetOf,
  readBatchHeader,
  walkRecordKeys,
  type BatchView,
  type DecodedRecordBatch,
  type RecordBatchHeader,
  type RecordInput,
} from '@strand/protocol';
import { OFFSET_MAP_HASH_KEY_BYTES, OFFSET_MAP_SLOT_BYTES, OffsetMap } from './offset-map';
import type { PartitionLog } from './partition-log';
import type { LogSegment } from './segment';
import type { Clock } from './clock';
import { systemClock } from './clock';

export interface CompactionOptions {
  /** Exclusive upper bound of offsets that may be compacted (the high watermark); default: log end. */
  upperBoundOffset?: number;
  clock?: Clock;
  /** Yield to the event loop after this much work (ms of wall time); default 5. */
  sliceMs?: number;
  /**
   * Run the pass whatever the dirty share (`min.cleanable.dirty.ratio`) is: default false. Kafka
   * has no such switch (its tests call the cleaner directly); here it is for tests and tools.
   */
  force?: boolean;
  /**
   * The offset of the last record each producer id wrote to the log (Kafka's lastDataOffset of
   * its active producers), from the broker's producer state; undefined for one it no longer
   * tracks. A batch ending there that loses all its records is kept as an empty batch (header
   * only), so a replica rebuilding producer state from the log still learns the producer's last
   * sequence. Default: each producer's last batch within the compacted range.
   */
  producerLastOffset?: (producerId: number) => number | undefined;
  /**
   * Memory for the offset map (`log.cleaner.dedupe.buffer.size`, default 128 MiB as Kafka's): 24
   * bytes per distinct key of the dirty segments a pass maps; a pass covers as many as fit.
   */
  offsetMapBytes?: number;
  /** How full the map may get (`log.cleaner.io.buffer.load.factor`, default 0.9 as Kafka's). */
  offsetMapLoadFactor?: number;
  /**
   * Where each pass gets the 16-byte key of its offset map's hash (SipHash-2-4-128), called once
   * per pass that runs; default `crypto.randomBytes(16)`. Tests only: the key must be secret and
   * new each pass, or clients could craft keys that collide and delete another key's latest
   * record (offset-map.ts).
   */
  offsetMapKeySource?: () => Uint8Array;
}

export const DEFAULT_OFFSET_MAP_BYTES = 128 * 1024 * 1024;
export const DEFAULT_OFFSET_MAP_LOAD_FACTOR = 0.9;

/** The compacted copy is written in appends of up to this many bytes (a batch larger goes alone). */
const WRITE_CHUNK_BYTES = 1024 * 1024;

export interface CompactionStats {
  /** Segments replaced by compacted copies (each of those merged into one counts). */
  segmentsCleaned: number;
  recordsRead: number;
  recordsRemoved: number;
  tombstonesRemoved: number;
  bytesBefore: number;
  bytesAfter: number;
  /**
   * The pass stopped early because the log was truncated or closed while it ran (Kafka aborts
   * its cleaner on truncation): segments already installed stay, nothing half-written is left.
   */
  aborted: boolean;
}

/** Thrown inside a pass when the log changed under it in a way the pass cannot survive. */
class PassAborted extends Error {}

/**
 * Runs one compaction pass over `log`. Returns what it did; does nothing (zeros) when the log is
 * not compacted, another pass is running, or too little of it is dirty (see above).
 *
 * The log changes while a pass yields: appends (harmless: only closed segments are compacted),
 * retention and DeleteRecords deleting leading segments (the pass stops reading a segment the
 * log no longer holds, and skips it), truncation (the offset map may name truncated records, and
 * a segment may have become the active one: the pass is aborted) and close (aborted). The checks
 * run after every yield, and the last one immediately before a segment is replaced, with no
 * yield in between. Whatever ends a pass, its `.cleaned` files are removed, and replaceSegments never
 * leaves a `.swap` behind in a log that goes on (the next open would install it over whatever
 * the log holds by then).
 */
export async function compactLog(log: PartitionLog, options: CompactionOptions = {}): Promise<CompactionStats> {
  const stats: CompactionStats = { segmentsCleaned: 0, recordsRead: 0, recordsRemoved: 0, tombstonesRemoved: 0, bytesBefore: 0, bytesAfter: 0, aborted: false };
  const config = log.topicConfig;
  if (!config['cleanup.policy'].includes('compact') || log.compactionInProgress) return stats;
  const clock = options.clock ?? systemClock;
  const sliceMs = options.sliceMs ?? 5;
  log.compactionInProgress = true;
  const truncations = log.truncationCount;
  const checkLog = (): void => {
    if (!log.isOpen || log.truncationCount !== truncations) throw new PassAborted();
  };
  try {
    const now = clock.nowMs();
    const lagMs = config['min.compaction.lag.ms'];
    const upper = Math.min(options.upperBoundOffset ?? log.logEndOffset, log.logEndOffset);
    // The compactable range: leading closed segments whose newest record is older than the lag.
    const segments: LogSegment[] = [];
    for (const seg of log.closedSegmentsBelow(upper)) {
      if (lagMs > 0 && seg.largestTimestamp > now - lagMs) break;
      segments.push(seg);
    }
    if (segments.length === 0) return stats;
    // Kafka's cleanable ratio, from segment sizes alone (no reads): the bytes written since the
    // last pass over the whole compactable range. Below min.cleanable.dirty.ratio a pass would
    // mostly rewrite what is already clean, unless a dirty segment's first record is older than
    // max.compaction.lag.ms: then it must be compacted now (Kafka's needCompactionNow).
    const firstDirty = log.firstDirtyOffset;
    if (options.force !== true) {
      const maxLagMs = config['max.compaction.lag.ms'];
      let clean = 0;
      let dirty = 0;
      let overdue = false;
      for (const seg of segments) {
        if (seg.nextOffset > firstDirty) {
          dirty += seg.size;
          if (seg.firstAppendMs > 0 && seg.firstAppendMs < now - maxLagMs) overdue = true;
        } else {
          clean += seg.size;
        }
      }
      if (dirty === 0 || (!overdue && dirty / (clean + dirty) <= config['min.cleanable.dirty.ratio'])) return stats;
    }

    let sliceStart = performance.now();
    const maybeYield = async (): Promise<void> => {
      if (performance.now() - sliceStart >= sliceMs) {
        await yieldToEventLoop();
        sliceStart = performance.now();
        checkLog();
      }
    };

    // Pass 1: the offset map, Kafka's way: from the dirty segments only (the clean ones before
    // them hold one record per key already, the latest of their range), as many whole segments as
    // it surely holds (their offset spans, an upper bound on their keys, fit what is left). A
    // first dirty segment with a larger span goes in anyway and fails the pass only if its keys
    // really overflow the map (Kafka's cleaner refuses it at once). The pass then covers the
    // segments up to the last one mapped; the next pass maps on from there. A segment deleted
    // meanwhile (retention, DeleteRecords) is not read further: it was a leading one, so every
    // record left in the log lies after it and the keys already taken from it are superseded
    // wherever they recur.
    const maxKeys = Math.max(1, Math.floor((options.offsetMapBytes ?? DEFAULT_OFFSET_MAP_BYTES) / OFFSET_MAP_SLOT_BYTES * (options.offsetMapLoadFactor ?? DEFAULT_OFFSET_MAP_LOAD_FACTOR)));
    let dirtySpan = 0;
    for (const seg of segments) if (seg.nextOffset > firstDirty) dirtySpan += seg.nextOffset - Math.max(seg.baseOffset, firstDirty);
    // A new secret key each pass (never logged or kept): keys crafted to collide under one pass's
    // hash, were that possible, would not collide under the next one's.
    const hashKey = options.offsetMapKeySource?.() ?? randomBytes(OFFSET_MAP_HASH_KEY_BYTES);
    const map = new OffsetMap(Math.min(maxKeys, Math.max(1, dirtySpan)), options.offsetMapLoadFactor ?? DEFAULT_OFFSET_MAP_LOAD_FACTOR, hashKey);
    let covered = 0; // segments[0, covered) are this pass's range
    let spanMapped = 0;
    let mappingSegment = 0; // the base offset of the segment being mapped, for the error below
    // Only keys and offsets are read (walkRecordKeys: no record objects, no key copies). Records
    // below the first dirty offset are skipped, as Kafka's buildOffsetMapForSegment does: a
    // segment a truncation (or DeleteRecords) left partly clean is scanned whole, but only its
    // dirty span was counted for the map, and its clean keys would overflow it.
    const mapKey = (block: Buffer, keyStart: number, keyLength: number, offset: number): void => {
      if (keyLength < 0 || offset < firstDirty) return;
      const keyEnd = keyStart + keyLength;
      if (map.isFull && map.get(block, keyStart, keyEnd) < 0) {
        throw new StrandError('INVALID_CONFIG', `${log.dir}: segment ${mappingSegment} holds more than ${map.capacity} keys, more than the offset map of log.cleaner.dedupe.buffer.size=${options.offsetMapBytes ?? DEFAULT_OFFSET_MAP_BYTES} bytes takes: it cannot be compacted until the setting is raised`);
      }
      map.put(block, offset, keyStart, keyEnd);
    };
    for (const seg of segments) {
      if (seg.nextOffset > firstDirty) {
        const span = seg.nextOffset - Math.max(seg.baseOffset, firstDirty);
        if (spanMapped > 0 && spanMapped + span > map.capacity) break;
        spanMapped += span;
        if (log.holdsClosedSegment(seg)) {
          mappingSegment = seg.baseOffset;
          for (const b of seg.scan(0, seg.size, { validate: true })) {
            if (readable(b.header)) walkRecordKeys(b.bytes, 0, mapKey, { skipCrc: true });
            await maybeYield();
            if (!log.holdsClosedSegment(seg)) break;
          }
        }
      }
      covered++;
    }
    const range = segments.slice(0, covered);
    const rangeEnd = (range[range.length - 1] as LogSegment).nextOffset;
    // Each producer's last batch in the range, when the caller does not say (tests and tools; the
    // broker passes its producer state): its headers, read without decoding records.
    const lastInRange = new Map<number, number>();
    if (options.producerLastOffset === undefined) {
      for (const seg of range) {
        if (!log.holdsClosedSegment(seg)) continue;
        for (const b of seg.scan(0, seg.size, { validate: false })) {
          if (b.header.producerId !== NO_PRODUCER_ID && !isControlBatch(b.header.attributes)) lastInRange.set(b.header.producerId, lastOffsetOf(b.header));
          await maybeYield();
          if (!log.holdsClosedSegment(seg)) break;
        }
      }
    }

    // Pass 2: rewrite each segment.
    const producerLast = options.producerLastOffset ?? ((id: number) => lastInRange.get(id));
    const rules: Rules = {
      map,
      now,
      deleteRetentionMs: config['delete.retention.ms'],
      isProducersLast: (h) => h.producerId !== NO_PRODUCER_ID && producerLast(h.producerId) === lastOffsetOf(h),
    };
    // Adjacent segments are merged while they fit one segment (Kafka's groupSegmentsBySize), so a
    // compacted log does not keep one small segment (and three open files) per roll.
    // The first offset of a group that could not be installed, if any: the next pass starts there.
    let dirtyFrom: number | undefined;
    for (const planned of groupBySize(range, config['segment.bytes'], log.maxIndexEntries)) {
      // Retention or DeleteRecords may have deleted leading segments meanwhile: the rest of the
      // group (a suffix of it) is still adjacent.
      const group = planned.filter((seg) => log.holdsClosedSegment(seg));
      const first = group[0];
      if (first === undefined) continue;
      const cleaned = log.createCleanedSegment(first);
      try {
        const held = (): boolean => group.every((seg) => log.holdsClosedSegment(seg));
        const changed = await writeCleaned(group, cleaned, rules, stats, maybeYield, held);
        checkLog();
        if (!held()) {
          // Retention or DeleteRecords removed part of the group while its copy was written: the
          // copy is dropped, and what is left of the group stays dirty for the next pass (moving
          // the cleaned point past it would leave its superseded records there for good).
          cleaned.delete();
          const left = group.find((seg) => log.holdsClosedSegment(seg));
          if (left !== undefined) dirtyFrom ??= left.baseOffset;
          continue;
        }
        if (!changed && group.length === 1) {
          cleaned.delete();
          continue;
        }
        // No yield since the checks above: the log cannot have changed.
        log.replaceSegments(group, cleaned);
        stats.segmentsCleaned += group.length;
      } catch (e: unknown) {
        cleaned.delete();
        throw e;
      }
    }
    checkLog();
    log.setCleanedUpTo(dirtyFrom ?? rangeEnd);
    return stats;
  } catch (e: unknown) {
    if (!(e instanceof PassAborted)) throw e;
    stats.aborted = true;
    return stats;
  } finally {
    log.compactionInProgress = false;
  }
}

/**
 * Adjacent runs of `segments` that fit one segment: total size at most `segmentBytes`, index
 * entries at most `maxIndexEntries` each, offsets within 2^31 of the first base (relative
 * offsets are 32-bit). A segment alone is always a group.
 */
function groupBySize(segments: readonly LogSegment[], segmentBytes: number, maxIndexEntries: number): LogSegment[][] {
  const groups: LogSegment[][] = [];
  let group: LogSegment[] = [];
  let bytes = 0;
  let offsetEntries = 0;
  let timeEntries = 0;
  for (const seg of segments) {
    const head = group[0];
    const fits =
      head !== undefined &&
      bytes + seg.size <= segmentBytes &&
      offsetEntries + seg.index.entryCount <= maxIndexEntries &&
      timeEntries + seg.timeIndex.entryCount <= maxIndexEntries &&
      seg.nextOffset - 1 - head.baseOffset <= 0x7fffffff;
    if (!fits) {
      if (group.length > 0) groups.push(group);
      group = [];
      bytes = 0;
      offsetEntries = 0;
      timeEntries = 0;
    }
    group.push(seg);
    bytes += seg.size;
    offsetEntries += seg.index.entryCount;
    timeEntries += seg.timeIndex.entryCount;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/**
 * Appends the compacted copy of the segments of `group`, in order, to `cleaned` (which builds its
 * indexes as it goes), fdatasynced with its indexes, without blocking the event loop on the sync.
 * Returns whether any batch changed (false also when `stillHeld` turned false while it ran: the
 * copy is then incomplete).
 */
async function writeCleaned(
  group: readonly LogSegment[],
  cleaned: LogSegment,
  rules: Rules,
  stats: CompactionStats,
  maybeYield: () => Promise<void>,
  stillHeld: () => boolean,
): Promise<boolean> {
  let changed = false;
  // Batches are gathered here and appended a chunk at a time, not in one write each.
  const pending = Buffer.allocUnsafe(WRITE_CHUNK_BYTES);
  let pendingBytes = 0;
  const pendingViews: BatchView[] = [];
  const appendPending = (): void => {
    if (pendingBytes === 0) return;
    cleaned.append(pending, 0, pendingBytes, pendingViews, rules.now);
    pendingBytes = 0;
    pendingViews.length = 0;
  };
  for (const seg of group) {
    for (const b of seg.scan(0, seg.size, { validate: true })) {
      stats.bytesBefore += b.size;
      let out: Buffer | null = b.bytes;
      if (readable(b.header)) {
        if (keepsEveryRecord(b.bytes, b.header, rules)) {
          stats.recordsRead += b.header.recordsCount;
        } else {
          const batch = decodeRecordBatch(b.bytes, 0, { skipCrc: true });
          out = rewriteBatch(batch, b.bytes, rules, stats);
          if (out !== b.bytes) changed = true;
        }
      }
      if (out !== null) {
        // A rewritten batch's max timestamp (the time index's key) is that of its survivors.
        const header = out === b.bytes ? b.header : readBatchHeader(out, 0);
        if (pendingBytes + out.length > WRITE_CHUNK_BYTES) appendPending();
        if (out.length > WRITE_CHUNK_BYTES) {
          cleaned.append(out, 0, out.length, [{ position: 0, size: out.length, header }], rules.now);
        } else {
          // Copied now: `b.bytes` is a view into the scan's chunk, valid only until it moves on.
          out.copy(pending, pendingBytes);
          pendingViews.push({ position: pendingBytes, size: out.length, header });
          pendingBytes += out.length;
        }
        stats.bytesAfter += out.length;
      }
      await maybeYield();
      if (!stillHeld()) return false;
    }
  }
  appendPending();
  // The copy keeps the last-modified time of its last segment (Kafka's cleaner does too): a
  // segment left with no timestamped record, or none at all, ages for retention from its last
  // append, not from its compaction.
  cleaned.setLastModified((group[group.length - 1] as LogSegment).lastModifiedMs);
  await cleaned.flush(true);
  return changed;
}

/**
 * Whether compaction looks into a batch's records. Control batches are kept as they are. So are
 * batches in a codec this build lacks (produce stores them as sent): their keys are unknown, so
 * they supersede nothing and nothing in them is removed, which keeps more than needed, never less.
 */
function readable(h: RecordBatchHeader): boolean {
  return !isControlBatch(h.attributes) && compressionSupported(batchCompression(h.attributes));
}

/**
 * Whether rewriteBatch would return the batch unchanged because it keeps every record as it is:
 * none superseded, no tombstone past the batch's delete horizon, none still without a horizon
 * (the first pass to keep one stamps it). Decided from keys and offsets alone (walkRecordKeys),
 * so such a batch, most of them once a log has been compacted, is copied without being decoded;
 * it stops at the first record that changes the batch, which then goes to rewriteBatch. A batch
 * with no records is left to rewriteBatch too (it stays only as a producer's last).
 */
function keepsEveryRecord(bytes: Buffer, header: RecordBatchHeader, rules: Rules): boolean {
  if (header.recordsCount === 0) return false;
  const { map } = rules;
  const hasHorizon = batchHasDeleteHorizon(header.attributes);
  // A tombstone changes the batch unless it has a horizon, not yet passed (rewriteBatch's rules).
  const tombstoneStays = hasHorizon && header.baseTimestamp > rules.now;
  return walkRecordKeys(
    bytes,
    0,
    (block, keyStart, keyLength, offset, valueIsNull) => {
      if (keyLength < 0) return true;
      if (map.get(block, keyStart, keyStart + keyLength) > offset) return false;
      return !valueIsNull || tombstoneStays;
    },
    { skipCrc: true },
  );
}

/** What a pass keeps, decided in pass 1. */
interface Rules {
  /** Latest offset of each key in the dirty part of the range (the clean part holds one per key). */
  map: OffsetMap;
  now: number;
  deleteRetentionMs: number;
  /** Whether the batch is its producer's last: kept as an empty batch if all its records go. */
  isProducersLast: (h: RecordBatchHeader) => boolean;
}

/**
 * The batch after compaction: the same bytes if nothing changes, a re-encoded batch with the
 * survivors, an empty batch (header only) for a producer's last batch that lost every record, or
 * null if nothing stays.
 */
function rewriteBatch(batch: DecodedRecordBatch, original: Buffer, rules: Rules, stats: CompactionStats): Buffer | null {
  const { map, now, deleteRetentionMs } = rules;
  const kept: RecordInput[] = [];
  let tombstonesKept = false;
  const horizonPassed = batch.hasDeleteHorizon && batch.baseTimestamp <= now;
  for (const r of batch.records) {
    stats.recordsRead++;
    // Superseded by a later record of its key in the range (Kafka: foundOffset > record.offset).
    if (r.key !== null && map.get(r.key) > r.offset) {
      stats.recordsRemoved++;
      continue;
    }
    if (r.key !== null && r.value === null) {
      if (horizonPassed) {
        stats.recordsRemoved++;
        stats.tombstonesRemoved++;
        continue;
      }
      tombstonesKept = true;
    }
    kept.push({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp, offsetDelta: r.offsetDelta });
  }
  if (kept.length === 0) {
    if (!rules.isProducersLast(batch)) return null;
    return batch.records.length === 0 ? original : encodeEmptyRecordBatch(batch);
  }
  const needsHorizon = tombstonesKept && !batch.hasDeleteHorizon;
  if (kept.length === batch.records.length && !needsHorizon) return original;
  return encodeRecordBatch({
    records: kept,
    baseOffset: batch.baseOffset,
    lastOffsetDelta: batch.lastOffsetDelta,
    partitionLeaderEpoch: batch.partitionLeaderEpoch,
    compression: batchCompression(batch.attributes),
    timestampType: batch.timestampType,
    isTransactional: batch.isTransactional,
    producerId: batch.producerId,
    producerEpoch: batch.producerEpoch,
    baseSequence: batch.baseSequence,
    deleteHorizonMs: tombstonesKept ? (batch.hasDeleteHorizon ? batch.baseTimestamp : now + deleteRetentionMs) : undefined,
    logAppendTimeMs: batch.maxTimestamp,
  });
}
