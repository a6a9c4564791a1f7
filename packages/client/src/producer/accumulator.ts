/**
 * The record accumulator: per-partition queues of batches being filled or waiting to be sent,
 * with the memory bound (`buffer.memory`) and the readiness rules the sender drains by.
 *
 * Invariants, per partition queue:
 * - `batches` holds sealed batches (already sent once, waiting for a retry) before unsealed ones,
 *   and sealed ones in ascending base sequence; only the last batch is open for appends.
 * - With idempotence, a sealed batch is resent only once nothing of the partition is in flight,
 *   so retries reach the broker in sequence order.
 * - `usedBytes` is the sum of the capacities of batches not yet completed; appends that would need
 *   a new batch beyond `buffer.memory` wait (the producer queues them in FIFO order).
 *
 * Batch size adapts to load: when a partition has more than one batch queued at drain time (the
 * sender is behind), its next batches are twice as large, up to `batch.size.max`; when a batch is
 * sent by linger while less than half full, its size halves back toward `batch.size`. Big batches
 * under load are where the throughput is (TOOLCHAIN.md: ~1 ms of CPU per batch across the
 * pipeline), small ones keep latency low when idle.
 *
 * No I/O and no timers here: time is passed in (monotonic ms), which keeps the rules testable.
 */
import { RECORD_BATCH_OVERHEAD } from '@strand/protocol';
import type { CompressionType } from '@strand/protocol';
import { BatchBuilder, estimateRecordSize, restamp } from './batch-builder';
import type { ProducerHeader } from './batch-builder';
import { monotonicMs } from '../retry';

export interface RecordMetadata {
  topic: string;
  partition: number;
  /** The record's offset, or -1 with acks=0. */
  offset: number;
  /** The create time, or the broker's append time for LogAppendTime topics. */
  timestamp: number;
}

/**
 * Per-record completion, as the Java client's `Callback`: an error, or the record's metadata.
 * Stored as given in the batch (no wrapper per record: with 100k records outstanding, per-record
 * closures and promises were half of the client's CPU in garbage collection).
 */
export type SendCallback = (error: Error | null, metadata: RecordMetadata | undefined) => void;

/** append() result flags. */
export const APPEND_FULL = 1;
export const APPEND_NEW_BATCH = 2;

export class ProducerBatch {
  readonly builder: BatchBuilder;
  readonly callbacks: (SendCallback | undefined)[] = [];
  readonly timestamps: number[] = [];
  /** The sealed bytes, set when first drained. */
  bytes: Buffer | undefined;
  baseSequence = -1;
  producerId = -1;
  producerEpoch = -1;
  attempts = 0;
  /** Monotonic ms before which a retry is not sent. */
  retryAtMs = 0;
  /** True when an earlier batch of the partition was unacknowledged when this one was sent. */
  sentBehindUnacked = false;
  /**
   * True when an attempt ended without a definite answer (the request failed as a whole, or the
   * broker timed out after appending): the broker may have written it. A later attempt's
   * retriable error does not clear it (that answer says nothing about the earlier attempt); only
   * a sequence error does (the broker has no such batch). An epoch bump must not renumber such a
   * batch, which would write it a second time under the new identity.
   */
  maybeWritten = false;
  inFlight = false;
  done = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
    capacity: number,
    readonly createdMs: number,
  ) {
    this.builder = new BatchBuilder(capacity);
  }

  get recordCount(): number {
    return this.builder.count;
  }

  get capacity(): number {
    return this.builder.buf.length;
  }

  get sealed(): boolean {
    return this.bytes !== undefined;
  }

  seal(compression: CompressionType, producerId: number, producerEpoch: number, baseSequence: number): Buffer {
    this.producerId = producerId;
    this.producerEpoch = producerEpoch;
    this.baseSequence = baseSequence;
    this.bytes = this.builder.seal(compression, producerId, producerEpoch, baseSequence);
    return this.bytes;
  }

  /** New producer identity after an epoch bump (KIP-360); sequence numbering restarts. */
  restamp(producerId: number, producerEpoch: number, baseSequence: number): void {
    if (this.bytes === undefined) return;
    this.producerId = producerId;
    this.producerEpoch = producerEpoch;
    this.baseSequence = baseSequence;
    restamp(this.bytes, producerId, producerEpoch, baseSequence);
  }

  complete(baseOffset: number, logAppendTimeMs: number): void {
    if (this.done) return;
    this.done = true;
    for (let i = 0; i < this.callbacks.length; i++) {
      const cb = this.callbacks[i];
      if (cb !== undefined) cb(null, { topic: this.topic, partition: this.partition, offset: baseOffset < 0 ? -1 : baseOffset + i, timestamp: logAppendTimeMs >= 0 ? logAppendTimeMs : (this.timestamps[i] as number) });
    }
  }

  fail(error: Error): void {
    if (this.done) return;
    this.done = true;
    for (let i = 0; i < this.callbacks.length; i++) {
      const cb = this.callbacks[i];
      if (cb !== undefined) cb(error, undefined);
    }
  }
}

export class PartitionQueue {
  readonly batches: ProducerBatch[] = [];
  /** Batches of this partition in flight. */
  inFlight = 0;
  /** Next sequence number to assign (idempotence), under `sequenceProducerId`/`sequenceEpoch`. */
  nextSequence = 0;
  /** The producer id and epoch `nextSequence` counts for; a new identity restarts it at 0. */
  sequenceProducerId = -1;
  sequenceEpoch = -1;
  /**
   * Set when a batch of this partition failed for good or met a sequence gap: at the next epoch
   * bump this partition's waiting batches are renumbered from 0 (KIP-360). Other partitions keep
   * their batches' identity, since those may already be written.
   */
  rewriteOnBump = false;
  /**
   * Batches of this partition that delivery.timeout.ms failed while they were in flight
   * (idempotence): whether the broker wrote them is unknown until their own late answer, or a
   * later batch's success, says so. While one is unresolved no new batch of the partition goes
   * out; one still unresolved once nothing of the partition is in flight makes the producer bump
   * its epoch for this partition, as Kafka's TransactionManager.maybeResolveSequences.
   */
  readonly unresolved = new Set<ProducerBatch>();
  /** Current target size of new batches (bytes). */
  batchSize: number;
  /** Largest batch this partition's leader accepted so far without MESSAGE_TOO_LARGE (bytes; growth stops there). */
  batchSizeCap = Infinity;

  constructor(
    readonly topic: string,
    readonly partition: number,
    initialBatchSize: number,
  ) {
    this.batchSize = initialBatchSize;
  }

  /** Puts a batch that must be retried back in sequence order, ahead of unsealed batches. */
  requeue(batch: ProducerBatch): void {
    let i = 0;
    while (i < this.batches.length) {
      const b = this.batches[i] as ProducerBatch;
      if (!b.sealed || b.baseSequence > batch.baseSequence) break;
      i++;
    }
    this.batches.splice(i, 0, batch);
  }
}

export interface AccumulatorOptions {
  /** batch.size: the starting capacity of a partition's batches (bytes). */
  batchSize: number;
  /** batch.size.max: the capacity batches may grow to under a backlog (bytes). */
  batchSizeMax: number;
  lingerMs: number;
  /** buffer.memory: the most bytes all batches not yet completed may reserve. */
  bufferMemory: number;
  /** max.request.size: no batch is built larger, except one holding a single bigger record (bytes). */
  maxRequestBytes: number;
}

export class RecordAccumulator {
  /** topic -> partition -> queue. */
  private readonly queues = new Map<string, PartitionQueue[]>();
  /** Queues with at least one batch: the only ones drain looks at. */
  readonly nonEmpty = new Set<PartitionQueue>();
  usedBytes = 0;

  constructor(readonly options: AccumulatorOptions) {}

  queue(topic: string, partition: number): PartitionQueue {
    let byPartition = this.queues.get(topic);
    if (byPartition === undefined) {
      byPartition = [];
      this.queues.set(topic, byPartition);
    }
    let q = byPartition[partition];
    if (q === undefined) {
      q = new PartitionQueue(topic, partition, this.options.batchSize);
      byPartition[partition] = q;
    }
    return q;
  }

  /** Every queue (for flush, close and epoch bumps). */
  allQueues(): PartitionQueue[] {
    const out: PartitionQueue[] = [];
    for (const byPartition of this.queues.values()) for (const q of byPartition) if (q !== undefined) out.push(q);
    return out;
  }

  /**
   * Bytes a new batch for this record would reserve, or 0 when it fits in the open batch.
   * The producer checks this against free memory before calling append().
   */
  bytesNeeded(topic: string, partition: number, estimate: number): number {
    const q = this.queue(topic, partition);
    const last = q.batches[q.batches.length - 1];
    if (last !== undefined && !last.sealed && last.builder.sizeBytes + estimate <= last.capacity) return 0;
    return this.newBatchBytes(q, estimate);
  }

  /**
   * Capacity of a new batch for a record: the partition's batch size, but never above
   * buffer.memory (a batch larger than the whole buffer would wait for memory that an empty
   * buffer never frees: batch.size may be set above it, and batches grow toward batch.size.max
   * under load) nor above max.request.size (a batch goes out whole in one request: a bigger one
   * would make a request above the limit the producer promises), and never below the record
   * itself in a batch of its own. The producer refuses a record above either limit before it
   * gets here, so only such a lone record reaches its own size.
   */
  private newBatchBytes(q: PartitionQueue, estimate: number): number {
    return Math.max(Math.min(q.batchSize, this.options.bufferMemory, this.options.maxRequestBytes), estimate + RECORD_BATCH_OVERHEAD);
  }

  /** The batch the last append() went into (valid right after append()). */
  lastBatch: ProducerBatch | undefined;

  /**
   * Appends one record. Returns flags: APPEND_FULL when the partition now has a full batch (the
   * sender should drain without waiting for linger), APPEND_NEW_BATCH when a batch was opened.
   * `nowMs` (monotonic) dates a new batch; without it the clock is read only when one opens.
   */
  append(topic: string, partition: number, timestamp: number, key: Buffer | null, value: Buffer | null, headers: readonly ProducerHeader[] | undefined, callback: SendCallback | undefined, nowMs?: number): number {
    const q = this.queue(topic, partition);
    const estimate = estimateRecordSize(key, value, headers);
    let last = q.batches[q.batches.length - 1];
    let flags = 0;
    if (last === undefined || last.sealed || !last.builder.tryAppend(timestamp, key, value, headers, estimate)) {
      if (last !== undefined && !last.sealed) flags |= APPEND_FULL;
      last = new ProducerBatch(topic, partition, this.newBatchBytes(q, estimate), nowMs ?? monotonicMs());
      this.usedBytes += last.capacity;
      q.batches.push(last);
      this.nonEmpty.add(q);
      flags |= APPEND_NEW_BATCH;
      if (!last.builder.tryAppend(timestamp, key, value, headers, estimate)) throw new Error('a fresh batch sized for the record must accept it'); // bug
    }
    last.callbacks.push(callback);
    last.timestamps.push(timestamp);
    if (last.builder.sizeBytes + 64 >= last.capacity) flags |= APPEND_FULL;
    this.lastBatch = last;
    return flags;
  }

  /** Whether the head batch of `q` may be sent now (ignoring leader and in-flight limits). */
  isReady(q: PartitionQueue, nowMs: number, flushing: boolean): boolean {
    const head = q.batches[0];
    if (head === undefined) return false;
    if (head.sealed) return nowMs >= head.retryAtMs;
    return flushing || q.batches.length > 1 || head.builder.sizeBytes + 64 >= head.capacity || nowMs - head.createdMs >= this.options.lingerMs;
  }

  /** Monotonic time at which the head of `q` becomes ready by linger or backoff. */
  readyAtMs(q: PartitionQueue): number {
    const head = q.batches[0];
    if (head === undefined) return Infinity;
    return head.sealed ? head.retryAtMs : head.createdMs + this.options.lingerMs;
  }

  /** Removes the head batch of `q` for sending, adapting the partition's batch size. */
  takeHead(q: PartitionQueue, nowMs: number): ProducerBatch {
    const head = q.batches.shift() as ProducerBatch;
    if (!head.sealed) {
      // Between batch.size and batch.size.max, and never above what the leader accepted
      // (batchSizeCap, after a MESSAGE_TOO_LARGE split; it may be below batch.size).
      if (q.batches.length > 0) q.batchSize = Math.min(q.batchSizeCap, Math.max(this.options.batchSize, Math.min(this.options.batchSizeMax, q.batchSize * 2)));
      else if (nowMs - head.createdMs >= this.options.lingerMs && head.builder.sizeBytes * 2 < head.capacity) {
        q.batchSize = Math.min(q.batchSizeCap, Math.max(this.options.batchSize, Math.floor(q.batchSize / 2)));
      }
    }
    if (q.batches.length === 0) this.nonEmpty.delete(q);
    return head;
  }

  /** Returns a completed or failed batch's memory. */
  release(batch: ProducerBatch): void {
    this.usedBytes -= batch.capacity;
  }

  /**
   * Replaces `big` (refused with MESSAGE_TOO_LARGE, never written) by `pieces` holding its records
   * in order, each sealed with its part of `big`'s sequence range and queued for a retry ahead of
   * later batches. Caps the partition's batch size below the refused size.
   */
  splitBack(big: ProducerBatch, pieces: readonly ProducerBatch[]): void {
    const q = this.queue(big.topic, big.partition);
    this.usedBytes -= big.capacity;
    for (const p of pieces) {
      this.usedBytes += p.capacity;
      q.requeue(p);
    }
    this.nonEmpty.add(q);
    q.batchSizeCap = Math.min(q.batchSizeCap, Math.max(1024, Math.floor((big.bytes?.length ?? big.capacity) / 2)));
    q.batchSize = Math.min(q.batchSize, q.batchSizeCap);
  }

  /** Puts a batch back for a retry. */
  requeue(batch: ProducerBatch): void {
    const q = this.queue(batch.topic, batch.partition);
    q.requeue(batch);
    this.nonEmpty.add(q);
  }

  /** Number of records not yet completed in queues (not counting in-flight batches). */
  get isEmpty(): boolean {
    return this.nonEmpty.size === 0;
  }
}
