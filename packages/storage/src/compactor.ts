/**
 * Log compaction (`cleanup.policy=compact`): keep the latest record for each key.
 *
 * A pass works only on closed segments (never the active one) below an upper bound (the high
 * watermark), so appends go on untouched while it runs; it yields to the event loop between
 * batches so it never blocks appends for long. Each segment is rewritten to `<base>.log.cleaned`,
 * fsynced, renamed to `.swap` and then installed over the original (a restart completes an
 * interrupted swap and discards an unfinished `.cleaned`).
 *
 * Rules, as Kafka's cleaner:
 * - a keyed record survives if it is the latest for its key in the compacted range (offset map);
 *   records without a key and control batches are kept;
 * - records newer than `min.compaction.lag.ms` are not compacted (their segments are skipped);
 * - a tombstone (null value) is kept for `delete.retention.ms` after the cleaner first reached it:
 *   the first pass that keeps it stamps the batch's delete horizon (KIP-534, attributes bit 6),
 *   and a later pass past that horizon drops it;
 * - a rewritten batch keeps its base offset, last offset delta, leader epoch and producer fields,
 *   so offsets and producer state are unchanged, and a LogAppendTime batch keeps its append time
 *   (its maxTimestamp, which its records read as; retention and ListOffsets go by it); a batch
 *   left with no records is dropped;
 * - batches that lose nothing are copied byte for byte (CRC and compression untouched).
 */
import * as fs from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { batchCompression, decodeRecordBatch, encodeRecordBatch, isControlBatch, type DecodedRecordBatch, type RecordInput } from '@strand/protocol';
import { fsyncDir } from './files';
import type { PartitionLog } from './partition-log';
import { CLEANED_SUFFIX, SWAP_SUFFIX, type LogSegment } from './segment';
import type { Clock } from './clock';
import { systemClock } from './clock';

export interface CompactionOptions {
  /** Exclusive upper bound of offsets that may be compacted (the high watermark); default: log end. */
  upperBoundOffset?: number;
  clock?: Clock;
  /** Yield to the event loop after this much work (ms of wall time); default 5. */
  sliceMs?: number;
}

export interface CompactionStats {
  segmentsCleaned: number;
  recordsRead: number;
  recordsRemoved: number;
  tombstonesRemoved: number;
  bytesBefore: number;
  bytesAfter: number;
}

/** A key as a latin1 string: a compact, lossless Map key for arbitrary bytes. */
function keyOf(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/**
 * Runs one compaction pass over `log`. Returns what it did; does nothing (zeros) when the log is
 * not compacted or another pass is running.
 */
export async function compactLog(log: PartitionLog, options: CompactionOptions = {}): Promise<CompactionStats> {
  const stats: CompactionStats = { segmentsCleaned: 0, recordsRead: 0, recordsRemoved: 0, tombstonesRemoved: 0, bytesBefore: 0, bytesAfter: 0 };
  const config = log.topicConfig;
  if (!config['cleanup.policy'].includes('compact') || log.compactionInProgress) return stats;
  const clock = options.clock ?? systemClock;
  const sliceMs = options.sliceMs ?? 5;
  log.compactionInProgress = true;
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

    // Pass 1: latest offset per key over the range.
    const latest = new Map<string, number>();
    let sliceStart = performance.now();
    const maybeYield = async (): Promise<void> => {
      if (performance.now() - sliceStart >= sliceMs) {
        await yieldToEventLoop();
        sliceStart = performance.now();
      }
    };
    for (const seg of segments) {
      for (const b of seg.scan(0, seg.size, { validate: true })) {
        if (isControlBatch(b.header.attributes)) continue;
        const batch = decodeRecordBatch(b.bytes, 0, { skipCrc: true });
        for (const r of batch.records) if (r.key !== null) latest.set(keyOf(r.key), r.offset);
        await maybeYield();
      }
    }

    // Pass 2: rewrite each segment.
    const deleteRetentionMs = config['delete.retention.ms'];
    for (const seg of segments) {
      if (!log.holds(seg)) continue; // truncated or deleted meanwhile
      const cleanedFile = seg.logFile + CLEANED_SUFFIX;
      const fd = fs.openSync(cleanedFile, 'w');
      let changed = false;
      let written = 0;
      try {
        for (const b of seg.scan(0, seg.size, { validate: true })) {
          stats.bytesBefore += b.size;
          let out: Buffer | null = b.bytes;
          if (!isControlBatch(b.header.attributes)) {
            const batch = decodeRecordBatch(b.bytes, 0, { skipCrc: true });
            out = rewriteBatch(batch, b.bytes, latest, now, deleteRetentionMs, stats);
            if (out !== b.bytes) changed = true;
          }
          if (out !== null) {
            fs.writeSync(fd, out, 0, out.length, written);
            written += out.length;
            stats.bytesAfter += out.length;
          }
          await maybeYield();
        }
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      if (!changed || !log.holds(seg)) {
        fs.rmSync(cleanedFile, { force: true });
        continue;
      }
      const swapFile = seg.logFile + SWAP_SUFFIX;
      fs.renameSync(cleanedFile, swapFile);
      fsyncDir(log.dir);
      log.replaceSegment(seg, swapFile);
      stats.segmentsCleaned++;
    }
    return stats;
  } finally {
    log.compactionInProgress = false;
  }
}

/**
 * The batch after compaction: the same bytes if nothing changes, a re-encoded batch with the
 * survivors, or null if nothing survives.
 */
function rewriteBatch(batch: DecodedRecordBatch, original: Buffer, latest: Map<string, number>, now: number, deleteRetentionMs: number, stats: CompactionStats): Buffer | null {
  const kept: RecordInput[] = [];
  let tombstonesKept = false;
  const horizonPassed = batch.hasDeleteHorizon && batch.baseTimestamp <= now;
  for (const r of batch.records) {
    stats.recordsRead++;
    if (r.key !== null && latest.get(keyOf(r.key)) !== r.offset) {
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
  const needsHorizon = tombstonesKept && !batch.hasDeleteHorizon;
  if (kept.length === batch.records.length && !needsHorizon) return original;
  if (kept.length === 0) return null;
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
