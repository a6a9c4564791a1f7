// Idempotent-producer state of one partition (Kafka's ProducerStateManager, without
// transactions): per producer id its epoch and its last few batches (first/last sequence and the
// offsets they got), so that
// - a retried batch is answered with its ORIGINAL offsets instead of being appended again, and
//   never with OUT_OF_ORDER_SEQUENCE_NUMBER (Jepsen's Redpanda #3039 analysis, SCENARIOS.md 11);
// - a gap in sequences is OUT_OF_ORDER_SEQUENCE_NUMBER, a stale epoch INVALID_PRODUCER_EPOCH;
// - a sequence at or below the last one that is no longer cached is DUPLICATE_SEQUENCE_NUMBER
//   (surely a duplicate, offsets unknown), distinct from a gap so a client never resets.
//
// The state is a function of the log: the broker rebuilds it on restart and after a truncation
// by feeding batch headers in offset order to `load()` (the same transition as `onAppended()`,
// minus the checks), starting from a snapshot (`snapshot()` / `fromSnapshot()`, Kafka's
// producer-state snapshots) so that producers whose batches retention, DeleteRecords or
// compaction removed are still known after a restart. Limits: `batchesPerProducer` (5, Kafka's bound on
// max.in.flight.requests.per.connection) and `maxProducerIds` (least recently written evicted).
//
// Sequences are int32 and wrap from 2^31-1 to 0 (Kafka's rule); "at or below the last one" is
// judged without wrap, which is exact for the first 2^31 batches of an epoch.

import type { ErrorName } from '@strand/protocol';
import { invariant } from './types';

export const NO_PRODUCER_ID = -1;
export const BATCHES_PER_PRODUCER = 5;
const MAX_SEQUENCE = 0x7fffffff;

/** The fields of a RecordBatch v2 header this state needs (a @strand/protocol RecordBatchHeader fits). */
export interface ProducerBatchHeader {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly baseOffset: number;
  readonly lastOffsetDelta: number;
}

export interface CachedBatch {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
}

export interface ProducerEntry {
  readonly producerId: number;
  readonly producerEpoch: number;
  /** Oldest first; at most `batchesPerProducer`. */
  readonly batches: readonly CachedBatch[];
}

export type SequenceCheck =
  | { readonly kind: 'append' }
  | { readonly kind: 'duplicate'; readonly firstOffset: number; readonly lastOffset: number }
  | { readonly kind: 'error'; readonly error: Extract<ErrorName, 'OUT_OF_ORDER_SEQUENCE_NUMBER' | 'INVALID_PRODUCER_EPOCH' | 'DUPLICATE_SEQUENCE_NUMBER' | 'UNKNOWN_PRODUCER_ID'> };

/**
 * The state as of a log offset, for the partition's snapshot file: per producer (least recently
 * written first) [id, epoch, batches as [firstSeq, lastSeq, firstOffset, lastOffset]].
 */
export interface ProducerStateSnapshot {
  readonly version: 1;
  /** The log end offset the state is as of: replay batches from here. */
  readonly offset: number;
  readonly producers: readonly (readonly [number, number, readonly (readonly [number, number, number, number])[]])[];
}

export interface ProducerStateOptions {
  /** Producer ids remembered per partition; the least recently written is forgotten. Default 10000. */
  readonly maxProducerIds?: number;
  /** Batches remembered per producer. Default 5. */
  readonly batchesPerProducer?: number;
}

/** Last sequence of a batch of `count` records starting at `firstSeq`, with int32 wrap. */
export function lastSequenceOf(firstSeq: number, lastOffsetDelta: number): number {
  return (firstSeq + lastOffsetDelta) % (MAX_SEQUENCE + 1);
}

function nextSequence(seq: number): number {
  return seq === MAX_SEQUENCE ? 0 : seq + 1;
}

export class ProducerStateManager {
  private readonly maxProducerIds: number;
  private readonly batchesPerProducer: number;
  /** Map order = recency of the last write (re-inserted on each write), for eviction. */
  private readonly producers = new Map<number, { producerEpoch: number; batches: CachedBatch[] }>();

  constructor(opts: ProducerStateOptions = {}) {
    this.maxProducerIds = opts.maxProducerIds ?? 10_000;
    this.batchesPerProducer = opts.batchesPerProducer ?? BATCHES_PER_PRODUCER;
    invariant(this.maxProducerIds >= 1 && this.batchesPerProducer >= 1, 'producer state limits must be positive');
  }

  get size(): number {
    return this.producers.size;
  }

  entry(producerId: number): ProducerEntry | undefined {
    const e = this.producers.get(producerId);
    return e === undefined ? undefined : { producerId, producerEpoch: e.producerEpoch, batches: [...e.batches] };
  }

  /**
   * Checks a batch a producer sent to the leader, before it is appended. `lastOffsetDelta` is
   * the batch's record count minus one.
   */
  check(producerId: number, producerEpoch: number, firstSeq: number, lastOffsetDelta: number): SequenceCheck {
    if (producerId === NO_PRODUCER_ID) return { kind: 'append' };
    const lastSeq = lastSequenceOf(firstSeq, lastOffsetDelta);
    const e = this.producers.get(producerId);
    if (e === undefined) {
      // Unknown producer: only the start of a sequence is acceptable. (After a restart the state
      // is rebuilt from the log, so a live producer is known unless evicted.) Kafka answers
      // OUT_OF_ORDER_SEQUENCE_NUMBER here ("invalid sequence number for new epoch"), which the
      // producer retries when an earlier batch was still in flight: requests on one gRPC channel
      // can arrive out of order, so the first batches of a new producer may come second.
      return firstSeq === 0 ? { kind: 'append' } : { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' };
    }
    if (producerEpoch < e.producerEpoch) return { kind: 'error', error: 'INVALID_PRODUCER_EPOCH' };
    if (producerEpoch > e.producerEpoch) {
      // A new epoch starts its sequences at 0.
      return firstSeq === 0 ? { kind: 'append' } : { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' };
    }
    const dup = e.batches.find((b) => b.firstSeq === firstSeq && b.lastSeq === lastSeq);
    if (dup !== undefined) return { kind: 'duplicate', firstOffset: dup.firstOffset, lastOffset: dup.lastOffset };
    const last = e.batches[e.batches.length - 1];
    if (last === undefined) return firstSeq === 0 ? { kind: 'append' } : { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' };
    if (firstSeq === nextSequence(last.lastSeq)) return { kind: 'append' };
    if (firstSeq <= last.lastSeq) return { kind: 'error', error: 'DUPLICATE_SEQUENCE_NUMBER' };
    return { kind: 'error', error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' };
  }

  /** Records a batch the leader appended (after `check()` said `append`). */
  onAppended(h: ProducerBatchHeader): void {
    this.load(h);
  }

  /**
   * Feeds one batch header from the log (in offset order): rebuild on restart or after a
   * truncation, and the follower's path for replicated batches.
   */
  load(h: ProducerBatchHeader): void {
    if (h.producerId === NO_PRODUCER_ID) return;
    const batch: CachedBatch = {
      firstSeq: h.baseSequence,
      lastSeq: lastSequenceOf(h.baseSequence, h.lastOffsetDelta),
      firstOffset: h.baseOffset,
      lastOffset: h.baseOffset + h.lastOffsetDelta,
    };
    const prev = this.producers.get(h.producerId);
    this.producers.delete(h.producerId);
    const entry = prev === undefined || h.producerEpoch > prev.producerEpoch ? { producerEpoch: h.producerEpoch, batches: [] as CachedBatch[] } : prev;
    entry.batches.push(batch);
    if (entry.batches.length > this.batchesPerProducer) entry.batches.shift();
    this.producers.set(h.producerId, entry);
    this.evictOverLimit();
  }

  /** Forgets the least recently written producers beyond `maxProducerIds` (Map order = recency). */
  private evictOverLimit(): void {
    while (this.producers.size > this.maxProducerIds) {
      const oldest = this.producers.keys().next();
      if (oldest.done === true) break;
      this.producers.delete(oldest.value);
    }
  }

  /** The state as of log offset `offset` (the caller's log end). */
  snapshot(offset: number): ProducerStateSnapshot {
    const producers = [...this.producers].map(([id, e]) => [id, e.producerEpoch, e.batches.map((b) => [b.firstSeq, b.lastSeq, b.firstOffset, b.lastOffset] as const)] as const);
    return { version: 1, offset, producers };
  }

  /** The state a snapshot holds (throws on a malformed one). */
  static fromSnapshot(s: ProducerStateSnapshot, opts: ProducerStateOptions = {}): ProducerStateManager {
    const m = new ProducerStateManager(opts);
    const int = (v: unknown): number => {
      if (!Number.isSafeInteger(v)) throw new Error(`producer state snapshot: not an integer: ${String(v)}`);
      return v as number;
    };
    if (s.version !== 1 || !Array.isArray(s.producers)) throw new Error('producer state snapshot: unknown version');
    for (const [id, epoch, batches] of s.producers) {
      const cached = batches.slice(-m.batchesPerProducer).map((b: readonly [number, number, number, number]): CachedBatch => ({ firstSeq: int(b[0]), lastSeq: int(b[1]), firstOffset: int(b[2]), lastOffset: int(b[3]) }));
      m.producers.set(int(id), { producerEpoch: int(epoch), batches: cached });
    }
    m.evictOverLimit();
    return m;
  }

  /**
   * The state after the log was truncated at `cut`: `fromLog` (rebuilt from what the log still
   * holds), plus the producers of `previous` that the log no longer names (their batches went
   * with the log start) with their batches that end before the cut. Those are the least
   * recently written, so they come first (evicted first).
   */
  static afterTruncation(previous: ProducerStateManager, fromLog: ProducerStateManager, cut: number): ProducerStateManager {
    const m = new ProducerStateManager({ maxProducerIds: fromLog.maxProducerIds, batchesPerProducer: fromLog.batchesPerProducer });
    for (const [id, e] of previous.producers) {
      if (fromLog.producers.has(id)) continue;
      const kept = e.batches.filter((b) => b.lastOffset < cut);
      if (kept.length > 0) m.producers.set(id, { producerEpoch: e.producerEpoch, batches: kept });
    }
    for (const [id, e] of fromLog.producers) m.producers.set(id, { producerEpoch: e.producerEpoch, batches: [...e.batches] });
    m.evictOverLimit();
    return m;
  }

  /** Forgets everything (before a rebuild from the log). */
  clear(): void {
    this.producers.clear();
  }

  /**
   * Builds the state of a log from its batch headers in offset order, e.g. while the broker
   * loads a partition (only batches at or after a snapshot need feeding; Strand feeds them all).
   */
  static rebuild(headers: Iterable<ProducerBatchHeader>, opts: ProducerStateOptions = {}): ProducerStateManager {
    const m = new ProducerStateManager(opts);
    for (const h of headers) m.load(h);
    return m;
  }
}
