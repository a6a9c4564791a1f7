/**
 * The Producer: send() appends a record to its partition's batch in the accumulator and returns
 * a promise of its RecordMetadata; a sender drains ready batches into one Produce request per
 * broker (at most one batch per partition per request, at most
 * `max.in.flight.requests.per.connection` requests per broker) and completes, retries or fails
 * them from the per-partition results.
 *
 * Idempotence (on by default): one producer id and epoch from InitProducerId, per-partition
 * sequence numbers written into each batch when it is first sent and kept across retries, so the
 * broker drops a retried batch it already has and answers with the original offsets. Retries of a
 * partition go out only when nothing of that partition is in flight, in sequence order; an
 * OUT_OF_ORDER_SEQUENCE_NUMBER (or UNKNOWN_PRODUCER_ID) is retried only when an earlier batch of
 * the partition was still unacknowledged when this one was sent (it is the echo of that earlier
 * failure), and is fatal otherwise. A batch that fails for good after its sequence was assigned leaves a gap, so the
 * producer bumps its epoch (KIP-360) before sending more and renumbers waiting batches from 0
 * (but not one whose answer was lost: it may be written, and is resent under its old identity).
 *
 * Bounds: buffer.memory (send() waits, up to max.block.ms), max.in.flight, max.request.size,
 * delivery.timeout.ms per batch (queued or in flight, as Kafka since KIP-91), retries, and the
 * metadata wait of max.block.ms. A batch that delivery.timeout.ms fails while in flight leaves
 * its sequence unresolved: the partition sends nothing new until its requests are answered, and
 * bumps the epoch unless an answer showed the batch written (Kafka's maybeResolveSequences).
 */
import { Acks, CompressionType, RECORD_BATCH_OVERHEAD, StrandError, decodeRecordBatch } from '@strand/protocol';
import type { InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProduceTopic } from '@strand/protocol';
import { Cluster } from '../cluster/cluster';
import type { TopicInfo } from '../cluster/cluster';
import type { UnaryMethod } from '../cluster/connection';
import { defaultClientId, parseProducerConfig } from '../config';
import type { ClientConfigInput, ProducerConfig } from '../config';
import { throwIfError, toStrandError } from '../errors';
import { backoffMs, monotonicMs, sleep, withRetries } from '../retry';
import { APPEND_FULL, APPEND_NEW_BATCH, ProducerBatch, RecordAccumulator } from './accumulator';
import { ProduceStream } from './produce-stream';
import type { PartitionQueue, RecordMetadata, SendCallback } from './accumulator';

export type { RecordMetadata, SendCallback } from './accumulator';
import { estimateRecordSize } from './batch-builder';
import type { ProducerHeader } from './batch-builder';
import { StickyPartitioner, partitionForKey } from './partitioner';
import type { Partitioner } from './partitioner';

/** Header values as the producer accepts them: a map or a list (a list allows repeated keys). */
export type ProducerHeaders = Readonly<Record<string, string | Buffer | null>> | readonly { key: string; value: string | Buffer | null }[];

export interface ProducerRecord {
  topic: string;
  /** Explicit partition; otherwise the key decides (murmur2), or the sticky partitioner. */
  partition?: number;
  key?: string | Buffer | null;
  value: string | Buffer | null;
  headers?: ProducerHeaders;
  /** Create time (ms since the epoch); defaults to Date.now(). */
  timestamp?: number;
}

export interface ProducerOptions {
  /** Replaces the default (murmur2 for keys, sticky otherwise). */
  partitioner?: Partitioner;
  /** Randomness for the sticky partitioner and jitter (tests pass a seeded one). */
  random?: () => number;
}

const ACKS: Record<string, Acks> = { '0': Acks.ACKS_NONE, '1': Acks.ACKS_LEADER, all: Acks.ACKS_ALL };
const MAX_IN_FLIGHT_PER_PARTITION_IDEMPOTENT = 5;
const SEQUENCE_SPACE = 2_147_483_648;

/** Whether `earlier` was numbered at or before `later` under the same producer id and epoch (sequences wrap at 2^31). */
function sameIdentityAtOrBefore(earlier: ProducerBatch, later: ProducerBatch): boolean {
  if (earlier.producerId !== later.producerId || earlier.producerEpoch !== later.producerEpoch) return false;
  return (later.baseSequence - earlier.baseSequence + SEQUENCE_SPACE) % SEQUENCE_SPACE < SEQUENCE_SPACE / 2;
}

interface MemoryWaiter {
  run: () => void;
  fail: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** A record of enqueueSlow waiting for its topic's metadata, or placed behind one that is. */
interface MetadataWaiter {
  /** The metadata its wait ended with (undefined: it failed, see `error`). */
  topic: TopicInfo | undefined;
  error: unknown;
  /** Whether its own wait ended. */
  settled: boolean;
  place: (t: TopicInfo) => void;
  fail: (e: unknown) => void;
}

interface PendingRequest {
  batches: ProducerBatch[];
  bytes: number;
  partitions: Set<PartitionQueue>;
}

/** Whether the record names a partition the cached metadata of its topic does not have (yet). */
function partitionBeyond(record: ProducerRecord, t: TopicInfo): boolean {
  return record.partition !== undefined && Number.isInteger(record.partition) && record.partition >= t.partitions.length;
}

function toBuffer(v: string | Buffer | null | undefined): Buffer | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

function normalizeHeaders(h: ProducerHeaders | undefined): ProducerHeader[] | undefined {
  if (h === undefined) return undefined;
  if (Array.isArray(h)) return (h as readonly { key: string; value: string | Buffer | null }[]).map((x) => ({ key: x.key, value: toBuffer(x.value) }));
  const out: ProducerHeader[] = [];
  for (const [key, value] of Object.entries(h as Readonly<Record<string, string | Buffer | null>>)) out.push({ key, value: toBuffer(value) });
  return out;
}

/**
 * Date.now() for record timestamps, read at most once per CLOCK_READS_PER_BURST calls within
 * one synchronous run of sends and again after any turn of the event loop, so a timestamp is
 * stale by at most that many sends (tens of microseconds; timestamps have millisecond
 * resolution). Read per record it was ~7% of the producer's CPU at 900k records/s.
 */
const CLOCK_READS_PER_BURST = 64;

class BurstClock {
  private cached = 0;
  private budget = 0;
  private readonly expire = (): void => {
    this.budget = 0;
  };

  now(): number {
    if (this.budget === 0) {
      this.cached = Date.now();
      this.budget = CLOCK_READS_PER_BURST;
      queueMicrotask(this.expire);
    }
    this.budget--;
    return this.cached;
  }
}

export class Producer {
  readonly config: ProducerConfig;
  readonly cluster: Cluster;
  private readonly accumulator: RecordAccumulator;
  private readonly sticky: StickyPartitioner;
  private readonly clock = new BurstClock();
  private readonly acks: Acks;
  private readonly idempotent: boolean;
  private readonly compression: CompressionType;
  private readonly random: () => number;

  private producerId = -1;
  private producerEpoch = -1;
  private initializing: Promise<void> | undefined;
  private epochBumpPending = false;
  private fatalError: StrandError | undefined;

  private readonly nodeInFlight = new Map<number, number>();
  /** One ProduceStream per broker, opened on first use. */
  private readonly streams = new Map<number, ProduceStream>();
  private batchesInFlight = 0;
  private readonly memoryWaiters: MemoryWaiter[] = [];
  private drainScheduled = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAtMs = Infinity;
  private flushing = 0;
  private readonly incomplete = new Set<ProducerBatch>();
  private readonly batchWaiters = new Map<ProducerBatch, (() => void)[]>();
  /**
   * The delivery deadline the expiry timer fires at: never later than the earliest deadline of an
   * incomplete batch, queued or in flight (armed for each new batch, re-armed by every pass).
   */
  private expiryAtMs = Infinity;
  private expiryTimer: NodeJS.Timeout | undefined;
  /** Records accepted by send() but not yet appended (waiting for metadata or memory). */
  private pendingAppends = 0;
  private appendWaiters: (() => void)[] = [];
  /** Sequence numbers of the records waiting in enqueueSlow (ascending: insertion order). */
  private readonly slowAppends = new Set<number>();
  /** Per topic, the records waiting for its metadata in send order (absent: none waits). */
  private readonly metadataWaiters = new Map<string, MetadataWaiter[]>();
  private slowAppendSeq = 0;
  private refreshing = false;
  /** The pending refreshSoon() timer. */
  private refreshTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private closed = false;

  constructor(config: ClientConfigInput = {}, private readonly options: ProducerOptions = {}) {
    this.config = parseProducerConfig(config);
    if (this.config['client.id'] === '') this.config['client.id'] = defaultClientId('producer');
    this.random = options.random ?? Math.random;
    this.cluster = new Cluster(this.config, { maxSendBytes: this.config['max.request.size'] + 1024 * 1024, allowAutoTopicCreation: true });
    this.accumulator = new RecordAccumulator({
      batchSize: Math.max(this.config['batch.size'], 1),
      batchSizeMax: Math.max(this.config['batch.size.max'], 1),
      lingerMs: this.config['linger.ms'],
      bufferMemory: this.config['buffer.memory'],
      maxRequestBytes: this.config['max.request.size'],
    });
    this.sticky = new StickyPartitioner(Math.max(this.config['batch.size'], 1), this.random);
    this.acks = ACKS[this.config.acks] as Acks;
    this.idempotent = this.config['enable.idempotence'];
    this.compression = this.config['compression.type'] === 'gzip' ? CompressionType.Gzip : CompressionType.None;
  }

  /** Whether this producer writes idempotently (config and acks permitting). */
  get isIdempotent(): boolean {
    return this.idempotent;
  }

  /** Fetches metadata and, when idempotent, a producer id. Optional: send() does it lazily. */
  async connect(): Promise<void> {
    // A broker that answers but has not loaded the cluster metadata yet (LEADER_NOT_AVAILABLE,
    // right after a cluster starts) is waited for, up to max.block.ms; an unreachable cluster
    // fails at once.
    await withRetries(() => this.cluster.refresh(), {
      retries: 1_000,
      initialMs: this.config['retry.backoff.ms'],
      maxMs: this.config['retry.backoff.max.ms'],
      deadlineMs: monotonicMs() + this.config['max.block.ms'],
      signal: this.cluster.closeSignal,
      random: this.random,
      isRetriable: (e) => e instanceof StrandError && e.retriable && e.errorName !== 'NETWORK_EXCEPTION',
    });
    if (this.idempotent) await this.ensureProducerId();
  }

  /**
   * Sends one record. Without a callback: a promise that resolves when the record is
   * acknowledged as `acks` asks and rejects on failure. With a callback (the Java client's
   * `send(record, callback)`): returns nothing and calls `callback(error, metadata)` once; this
   * is the cheap form for high rates, with no promise per record.
   */
  send(record: ProducerRecord): Promise<RecordMetadata>;
  send(record: ProducerRecord, callback: SendCallback): void;
  send(record: ProducerRecord, callback?: SendCallback): Promise<RecordMetadata> | void {
    if (callback !== undefined) return this.enqueue(record, callback);
    return new Promise<RecordMetadata>((resolve, reject) => {
      this.enqueue(record, (error, metadata) => (error !== null ? reject(error) : resolve(metadata as RecordMetadata)));
    });
  }

  /** Sends many records with one promise for all (cheaper than one send() each). */
  sendBatch(records: readonly ProducerRecord[]): Promise<RecordMetadata[]> {
    return new Promise<RecordMetadata[]>((resolve, reject) => {
      const out = new Array<RecordMetadata>(records.length);
      let pending = records.length;
      let failed = false;
      if (pending === 0) resolve(out);
      records.forEach((record, i) => {
        this.enqueue(record, (error, metadata) => {
          if (failed) return;
          if (error !== null) {
            failed = true;
            reject(error);
            return;
          }
          out[i] = metadata as RecordMetadata;
          if (--pending === 0) resolve(out);
        });
      });
    });
  }

  /** Resolves once every record sent before the call is completed (acknowledged or failed). */
  async flush(): Promise<void> {
    // Records still waiting for metadata or memory are not in a batch yet: wait until those sent
    // before this call are (only those: under sustained back-pressure new sends keep the count
    // above zero, and waiting for it to reach zero could take forever).
    const mark = this.slowAppendSeq;
    while ((this.slowAppends.values().next().value ?? Infinity) <= mark) await new Promise<void>((resolve) => this.appendWaiters.push(resolve));
    const waits: Promise<void>[] = [];
    for (const b of this.incomplete) waits.push(new Promise<void>((resolve) => this.onBatchDone(b, resolve)));
    this.flushing++;
    this.scheduleDrain();
    try {
      await Promise.all(waits);
    } finally {
      this.flushing--;
    }
  }

  /**
   * Sends what is buffered (up to `timeoutMs`, default delivery.timeout.ms), then fails what is
   * left and releases every connection and timer.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    const timeoutMs = options.timeoutMs ?? this.config['delivery.timeout.ms'];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    if (timer !== undefined) clearTimeout(timer);
    this.closed = true;
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    const err = new StrandError('NETWORK_EXCEPTION', 'producer closed before the record was acknowledged');
    for (const w of this.memoryWaiters.splice(0)) {
      clearTimeout(w.timer);
      w.fail(err);
    }
    for (const b of [...this.incomplete]) this.finish(b, err);
    for (const s of this.streams.values()) s.close();
    this.cluster.close();
  }

  // ---- append path -------------------------------------------------------------------------

  private enqueue(record: ProducerRecord, callback: SendCallback): void {
    if (this.closing || this.closed) return this.failRecord(callback, new StrandError('NETWORK_EXCEPTION', 'producer is closed'));
    if (this.fatalError !== undefined) return this.failRecord(callback, this.fatalError);
    if (typeof record.topic !== 'string' || record.topic === '') return this.failRecord(callback, new StrandError('INVALID_TOPIC_EXCEPTION', 'record has no topic'));
    let key: Buffer | null;
    let value: Buffer | null;
    let headers: ProducerHeader[] | undefined;
    try {
      key = toBuffer(record.key);
      value = toBuffer(record.value);
      headers = normalizeHeaders(record.headers);
    } catch (e: unknown) {
      return this.failRecord(callback, new StrandError('INVALID_RECORD', `record fields must be strings or Buffers: ${String(e)}`));
    }
    const timestamp = record.timestamp ?? this.clock.now();
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) return this.failRecord(callback, new StrandError('INVALID_TIMESTAMP', `invalid record timestamp ${String(record.timestamp)}`));
    const estimate = estimateRecordSize(key, value, headers);
    // As Java's ensureValidRecordSize: the record in a batch of its own, header included, must
    // fit both limits (a batch above buffer.memory would wait for memory nothing frees).
    const serialized = estimate + RECORD_BATCH_OVERHEAD;
    if (serialized > this.config['max.request.size']) {
      return this.failRecord(callback, new StrandError('MESSAGE_TOO_LARGE', `The message is ${serialized} bytes when serialized which is larger than ${this.config['max.request.size']}, which is the value of the max.request.size configuration.`));
    }
    if (serialized > this.config['buffer.memory']) {
      return this.failRecord(callback, new StrandError('MESSAGE_TOO_LARGE', `The message is ${serialized} bytes when serialized which is larger than the total memory buffer you have configured with the buffer.memory configuration (${this.config['buffer.memory']}).`));
    }
    // Fast path, no closures: metadata known, no earlier record still waiting (send order is
    // append order), and room for the record.
    const topic = this.cluster.topics.get(record.topic);
    if (topic !== undefined && topic.partitions.length > 0 && !partitionBeyond(record, topic) && this.pendingAppends === 0) {
      let partition: number;
      try {
        partition = this.choosePartition(record, topic, key, value, estimate);
      } catch (e: unknown) {
        return this.failRecord(callback, e);
      }
      const needed = this.accumulator.bytesNeeded(record.topic, partition, estimate);
      if (needed === 0 || this.accumulator.usedBytes + needed <= this.config['buffer.memory']) {
        this.appendNow(record.topic, partition, timestamp, key, value, headers, callback);
        return;
      }
    }
    this.enqueueSlow(record, callback, key, value, headers, timestamp, estimate);
  }

  private failRecord(callback: SendCallback, e: unknown): void {
    callback(e instanceof Error ? e : new Error(String(e)), undefined);
  }

  private appendNow(topic: string, partition: number, timestamp: number, key: Buffer | null, value: Buffer | null, headers: ProducerHeader[] | undefined, callback: SendCallback): void {
    const flags = this.accumulator.append(topic, partition, timestamp, key, value, headers, callback);
    if ((flags & APPEND_NEW_BATCH) !== 0) {
      const batch = this.accumulator.lastBatch as ProducerBatch;
      this.incomplete.add(batch);
      this.armExpiry(batch.createdMs + this.config['delivery.timeout.ms']);
      if ((flags & APPEND_FULL) === 0 && this.flushing === 0) this.scheduleWake(batch.createdMs + this.config['linger.ms']);
    }
    if ((flags & APPEND_FULL) !== 0 || this.flushing > 0) this.scheduleDrain();
  }

  /** Records that must wait for the topic's metadata or for buffer memory (FIFO). */
  private enqueueSlow(record: ProducerRecord, callback: SendCallback, key: Buffer | null, value: Buffer | null, headers: ProducerHeader[] | undefined, timestamp: number, estimate: number): void {
    let pending = true;
    this.pendingAppends++;
    const seq = ++this.slowAppendSeq;
    this.slowAppends.add(seq);
    const settled = (): void => {
      if (!pending) return;
      pending = false;
      this.pendingAppends--;
      this.slowAppends.delete(seq);
      for (const w of this.appendWaiters.splice(0)) w();
    };
    const fail = (e: unknown): void => {
      settled();
      this.failRecord(callback, e);
    };
    const deadlineMs = monotonicMs() + this.config['max.block.ms'];
    const place = (t: TopicInfo): void => {
      // The metadata came after close(), which failed everything it knew of: nothing would send
      // or fail this record any more.
      if (this.closed) return fail(new StrandError('NETWORK_EXCEPTION', 'producer closed before the record was acknowledged'));
      let partition: number;
      try {
        partition = this.choosePartition(record, t, key, value, estimate);
      } catch (e: unknown) {
        return fail(e);
      }
      const append = (): void => {
        settled();
        this.appendNow(record.topic, partition, timestamp, key, value, headers, callback);
      };
      const needed = this.accumulator.bytesNeeded(record.topic, partition, estimate);
      if (this.memoryWaiters.length === 0 && (needed === 0 || this.accumulator.usedBytes + needed <= this.config['buffer.memory'])) append();
      else this.waitForMemory(append, fail, deadlineMs);
    };
    const topic = this.cluster.topics.get(record.topic);
    const ready = topic !== undefined && topic.partitions.length > 0 && !partitionBeyond(record, topic);
    let waiting = this.metadataWaiters.get(record.topic);
    if (ready && waiting === undefined) return place(topic);
    // Behind records of the same topic still waiting for its metadata, or waiting itself: placed
    // in send order once its own wait ends and every earlier one of the topic is placed (as
    // Java's send() blocks its caller in waitOnMetadata). Each record waiting on its own timer
    // was placed in whatever order those waits ended: records sent in order to a topic that had
    // just been created landed out of order.
    const w: MetadataWaiter = { topic: undefined, error: undefined, settled: false, place, fail };
    if (waiting === undefined) {
      waiting = [];
      this.metadataWaiters.set(record.topic, waiting);
    }
    waiting.push(w);
    const settle = (t: TopicInfo | undefined, e: unknown): void => {
      w.settled = true;
      w.topic = t;
      w.error = e;
      this.placeInOrder(record.topic);
    };
    if (ready) settle(topic, undefined);
    else
      this.topicWithPartition(record, deadlineMs).then(
        (t) => settle(t, undefined),
        (e: unknown) => settle(undefined, e instanceof StrandError && e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION' ? new StrandError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${record.topic} not present in metadata after ${this.config['max.block.ms']} ms`) : e),
      );
  }

  /** Places (or fails) the records of `topic` whose metadata wait ended, in send order, up to the first still waiting. */
  private placeInOrder(topic: string): void {
    const list = this.metadataWaiters.get(topic);
    if (list === undefined) return;
    // A failure callback may send again (to this topic too): the loop sees what it adds.
    while (list.length > 0 && (list[0] as MetadataWaiter).settled) {
      const w = list.shift() as MetadataWaiter;
      if (w.topic !== undefined) w.place(w.topic);
      else w.fail(w.error);
    }
    if (list.length === 0 && this.metadataWaiters.get(topic) === list) this.metadataWaiters.delete(topic);
  }

  /**
   * The topic's metadata once it has the record's explicit partition, refreshing it (with
   * backoff) until then or until `deadlineMs`, as the Java client's waitOnMetadata: partitions
   * added since the last refresh are not in the cache yet. Past the deadline it returns what it
   * has, and place() fails the record with the partition count.
   */
  private async topicWithPartition(record: ProducerRecord, deadlineMs: number): Promise<TopicInfo> {
    for (let attempt = 0; ; attempt++) {
      const t = await this.cluster.topic(record.topic, deadlineMs, this.cluster.closeSignal);
      if (!partitionBeyond(record, t)) return t;
      // The first refresh at once, then with backoff.
      if (attempt > 0) {
        const wait = Math.min(backoffMs(attempt - 1, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'], random: this.random }), deadlineMs - monotonicMs());
        if (wait <= 0) return t;
        await sleep(wait, this.cluster.closeSignal);
      }
      this.cluster.requestRefresh();
    }
  }

  private choosePartition(record: ProducerRecord, t: TopicInfo, key: Buffer | null, value: Buffer | null, estimate: number): number {
    const count = t.partitions.length;
    if (record.partition !== undefined) {
      if (!Number.isInteger(record.partition) || record.partition < 0 || record.partition >= count) {
        throw new StrandError('UNKNOWN_TOPIC_OR_PARTITION', `partition ${record.partition} of ${record.topic} does not exist (it has ${count})`);
      }
      return record.partition;
    }
    if (this.options.partitioner !== undefined) {
      const available: number[] = [];
      for (const p of t.partitions) if (p !== undefined && p.leaderId >= 0) available.push(p.partition);
      const p = this.options.partitioner({ topic: record.topic, key, value, partitionCount: count, availablePartitions: available.length > 0 ? available : [...Array(count).keys()] });
      if (!Number.isInteger(p) || p < 0 || p >= count) throw new StrandError('UNKNOWN_TOPIC_OR_PARTITION', `custom partitioner returned ${p} for ${record.topic} with ${count} partitions`);
      return p;
    }
    if (key !== null && !this.config['partitioner.ignore.keys']) return partitionForKey(key, count);
    return this.sticky.partitionFromMetadata(record.topic, estimate, t.partitions);
  }

  private waitForMemory(run: () => void, fail: (e: unknown) => void, deadlineMs: number): void {
    const waiter: MemoryWaiter = {
      run,
      fail,
      timer: setTimeout(() => {
        const i = this.memoryWaiters.indexOf(waiter);
        if (i >= 0) this.memoryWaiters.splice(i, 1);
        fail(new StrandError('REQUEST_TIMED_OUT', `buffer.memory (${this.config['buffer.memory']} bytes) stayed full for max.block.ms (${this.config['max.block.ms']} ms)`));
      }, Math.max(0, deadlineMs - monotonicMs())),
    };
    this.memoryWaiters.push(waiter);
    // Memory pressure makes every batch ready, so the sender frees memory as fast as it can.
    this.scheduleDrain();
  }

  private releaseMemory(): void {
    // Admit waiters in FIFO order while memory allows (the open batch may overshoot by one batch).
    while (this.memoryWaiters.length > 0 && this.accumulator.usedBytes < this.config['buffer.memory']) {
      const w = this.memoryWaiters.shift() as MemoryWaiter;
      clearTimeout(w.timer);
      w.run();
    }
  }

  // ---- sender ------------------------------------------------------------------------------

  private scheduleDrain(): void {
    if (this.drainScheduled || this.closed) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  private scheduleWake(atMs: number): void {
    if (this.closed || atMs >= this.wakeAtMs) return;
    // Due now (linger.ms=0): drain after the current run of sends, not on a timer, which Node
    // fires 1 ms later at the earliest.
    if (atMs <= monotonicMs()) return this.scheduleDrain();
    if (this.wakeTimer !== undefined) clearTimeout(this.wakeTimer);
    this.wakeAtMs = atMs;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeAtMs = Infinity;
      this.drain();
    }, Math.max(0, Math.ceil(atMs - monotonicMs())));
  }

  private async ensureProducerId(): Promise<void> {
    if (this.producerId >= 0 && !this.epochBumpPending) return;
    if (this.initializing === undefined) {
      this.initializing = this.initProducerId().finally(() => {
        this.initializing = undefined;
      });
    }
    return this.initializing;
  }

  private async initProducerId(): Promise<void> {
    const bump = this.epochBumpPending && this.producerId >= 0;
    const request: InitProducerIdRequest = { transactionTimeoutMs: 60_000, producerId: bump ? this.producerId : -1, producerEpoch: bump ? this.producerEpoch : -1 };
    const res = await withRetries(
      async () => {
        await this.cluster.refreshIfNeeded();
        const conn = this.cluster.anyConnection();
        const r = await conn.unary(conn.client.initProducerId as UnaryMethod<InitProducerIdRequest, InitProducerIdResponse>, request, this.config['request.timeout.ms'], 'InitProducerId', this.cluster.closeSignal);
        throwIfError(r.errorCode, r.errorMessage, 'InitProducerId');
        return r;
      },
      {
        retries: 1_000,
        initialMs: this.config['retry.backoff.ms'],
        maxMs: this.config['retry.backoff.max.ms'],
        deadlineMs: monotonicMs() + this.config['delivery.timeout.ms'],
        signal: this.cluster.closeSignal,
        random: this.random,
        onRetry: (e) => {
          if (e.hasStaleMetadata || e.errorName === 'NETWORK_EXCEPTION') this.cluster.requestRefresh();
        },
      },
    );
    this.producerId = res.producerId;
    this.producerEpoch = res.producerEpoch;
    if (this.epochBumpPending) {
      // Only the partitions that asked for the bump (a batch failed for good, or the broker saw a
      // sequence gap) renumber their waiting batches from 0 under the new epoch: none of those
      // was written. A waiting batch of another partition may have been written (its answer was
      // lost), so it is resent with its original identity, where the broker deduplicates it; that
      // partition's new batches restart at 0 under the new epoch once it has drained (see drain).
      for (const q of this.accumulator.allQueues()) {
        if (!q.rewriteOnBump) continue;
        // A waiting batch that may already be written (its answer was lost) keeps its identity:
        // resent under it, the broker deduplicates it if it was written, or answers with a
        // sequence error if the gap is real, which asks for another bump that renumbers it then.
        // Renumbered now, a written batch would be written twice (Kafka fails such batches
        // instead). The partition's new batches still start at 0 under the new epoch once
        // these have drained (see drain).
        if (q.batches.some((b) => b.sealed && b.maybeWritten)) continue;
        q.rewriteOnBump = false;
        q.nextSequence = 0;
        q.sequenceProducerId = this.producerId;
        q.sequenceEpoch = this.producerEpoch;
        for (const b of q.batches) {
          if (!b.sealed) break;
          b.restamp(this.producerId, this.producerEpoch, q.nextSequence);
          q.nextSequence += b.recordCount;
        }
      }
      this.epochBumpPending = false;
    }
  }

  private drain(): void {
    if (this.closed) return;
    const now = monotonicMs();
    if (now >= this.expiryAtMs) this.expireBatches(now);
    if (this.accumulator.isEmpty) return;
    if (this.idempotent && (this.producerId < 0 || this.epochBumpPending)) {
      // An epoch bump waits until nothing is in flight: answers to the old epoch must land first.
      if (this.epochBumpPending && this.batchesInFlight > 0) return;
      this.ensureProducerId().then(
        () => this.scheduleDrain(),
        (e: unknown) => this.failAll(toStrandError(e, 'InitProducerId')),
      );
      return;
    }
    const urgent = this.flushing > 0 || this.closing || this.memoryWaiters.length > 0;
    const maxInFlight = this.config['max.in.flight.requests.per.connection'];
    // Kafka's ordering promise without idempotence: with one request in flight per connection,
    // retries cannot reorder a partition (with idempotence, sequence numbers keep the order).
    const guaranteeOrder = !this.idempotent && maxInFlight === 1;
    const maxRequestBytes = this.config['max.request.size'];
    const requests = new Map<number, PendingRequest[]>();
    let nextWake = Infinity;
    let missingLeader = false;
    for (const q of [...this.accumulator.nonEmpty]) {
      for (;;) {
        const head = q.batches[0];
        if (head === undefined) break;
        if (!this.accumulator.isReady(q, now, urgent)) {
          nextWake = Math.min(nextWake, this.accumulator.readyAtMs(q));
          break;
        }
        // While a batch of this partition is in flight, an open batch keeps filling instead of
        // going out half empty: under load each batch then holds what arrived during one round
        // trip (big batches are the throughput lever, TOOLCHAIN.md), and when idle nothing is in
        // flight so linger.ms alone decides. The response's drain sends it.
        if (!urgent && !head.sealed && q.inFlight > 0 && q.batches.length === 1 && head.builder.sizeBytes + 64 < head.capacity) break;
        const leader = this.cluster.leaderOf(q.topic, q.partition);
        if (leader === undefined) {
          missingLeader = true;
          break;
        }
        if (this.idempotent) {
          if (q.inFlight >= MAX_IN_FLIGHT_PER_PARTITION_IDEMPOTENT) break;
          // A retry goes out only once its predecessors are settled, so order is kept.
          if (head.sealed && q.inFlight > 0) break;
          // No new sequence while an expired batch's fate is unknown: numbered after a gap it
          // would only meet OUT_OF_ORDER_SEQUENCE_NUMBER (Kafka's accumulator holds it back too).
          if (!head.sealed && q.unresolved.size > 0) break;
          if (!head.sealed && (q.sequenceProducerId !== this.producerId || q.sequenceEpoch !== this.producerEpoch)) {
            // A new producer identity: this partition's sequence restarts at 0, but only after
            // its batches under the old one are settled (a new-epoch batch written first would
            // fence them).
            if (q.inFlight > 0) break;
            q.nextSequence = 0;
            q.sequenceProducerId = this.producerId;
            q.sequenceEpoch = this.producerEpoch;
          }
        } else if (guaranteeOrder && q.inFlight > 0) {
          // One batch of the partition in flight, whichever broker it went to: the per-broker
          // limit alone let a batch go to a new leader while the previous one, still in flight
          // to the old leader, would come back NOT_LEADER_OR_FOLLOWER and be written after it
          // (Java mutes the partition: Sender's guaranteeMessageOrder).
          break;
        }
        const size = head.sealed ? (head.bytes as Buffer).length : head.builder.sizeBytes;
        let list = requests.get(leader);
        if (list === undefined) {
          list = [];
          requests.set(leader, list);
        }
        let req = list.find((r) => !r.partitions.has(q) && (r.batches.length === 0 || r.bytes + size <= maxRequestBytes));
        if (req === undefined) {
          if ((this.nodeInFlight.get(leader) ?? 0) + list.length >= maxInFlight) break;
          req = { batches: [], bytes: 0, partitions: new Set() };
          list.push(req);
        }
        const batch = this.accumulator.takeHead(q, now);
        if (!batch.sealed) {
          batch.seal(this.compression, this.idempotent ? this.producerId : -1, this.idempotent ? this.producerEpoch : -1, this.idempotent ? q.nextSequence : -1);
          if (this.idempotent) q.nextSequence = (q.nextSequence + batch.recordCount) % 2_147_483_648;
        }
        batch.sentBehindUnacked = q.inFlight > 0;
        batch.inFlight = true;
        q.inFlight++;
        req.batches.push(batch);
        req.bytes += (batch.bytes as Buffer).length;
        req.partitions.add(q);
        // Retries wait for this one; unsealed batches may pipeline behind it.
        if (batch.attempts > 0 && this.idempotent) break;
      }
    }
    for (const [node, list] of requests) for (const req of list) if (req.batches.length > 0) this.sendRequest(node, req.batches);
    // A stale mark comes from failures (a dead leader's NETWORK_EXCEPTION, NOT_LEADER...): the
    // cached leader may be wrong even though it is known, so refresh rather than resend to it.
    if (missingLeader || this.cluster.needsRefresh) this.refreshSoon();
    if (nextWake !== Infinity) this.scheduleWake(nextWake);
  }

  /** Refreshes metadata (at most one at a time, spaced by retry.backoff.ms), then drains. */
  private refreshSoon(): void {
    if (this.refreshing) return;
    this.refreshing = true;
    this.cluster.requestRefresh();
    const wait = backoffMs(0, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'], random: this.random });
    // Not unref'd: called only while batches wait (for a leader, or to be retried), and between
    // refreshes this timer may be all that keeps Node running; unref'd, a script awaiting send()
    // during a leader election exited with the record unsent. close() clears it.
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.cluster
        .refresh()
        .catch(() => undefined)
        .finally(() => {
          this.refreshing = false;
          this.scheduleDrain();
        });
    }, wait);
  }

  private sendRequest(node: number, batches: ProducerBatch[]): void {
    const byTopic = new Map<string, ProduceTopic>();
    for (const b of batches) {
      let t = byTopic.get(b.topic);
      if (t === undefined) {
        t = { name: b.topic, partitions: [] };
        byTopic.set(b.topic, t);
      }
      t.partitions.push({ partition: b.partition, records: b.bytes as Buffer });
    }
    const request: ProduceRequest = { acks: this.acks, timeoutMs: this.config['request.timeout.ms'], topics: [...byTopic.values()] };
    this.nodeInFlight.set(node, (this.nodeInFlight.get(node) ?? 0) + 1);
    this.batchesInFlight += batches.length;
    let promise: Promise<ProduceResponse>;
    try {
      const conn = this.cluster.connection(node);
      let stream = this.streams.get(node);
      if (stream === undefined) {
        stream = new ProduceStream(node);
        this.streams.set(node, stream);
      }
      promise = stream.produce(conn, request, this.config['request.timeout.ms'] + 5_000, this.cluster.closeSignal);
    } catch (e: unknown) {
      promise = Promise.reject(e);
    }
    promise
      .then(
        (res) => this.handleResponse(batches, res),
        (e: unknown) => {
          const err = toStrandError(e, 'Produce');
          if (err.hasStaleMetadata || err.errorName === 'NETWORK_EXCEPTION') this.cluster.requestRefresh();
          for (const b of batches) {
            // The request may have reached the broker before the failure.
            b.maybeWritten = true;
            this.handleFailure(b, err);
          }
        },
      )
      .finally(() => {
        this.nodeInFlight.set(node, (this.nodeInFlight.get(node) ?? 1) - 1);
        this.batchesInFlight -= batches.length;
        this.scheduleDrain();
      });
  }

  private handleResponse(batches: ProducerBatch[], res: ProduceResponse): void {
    const results = new Map<string, ProduceResponse['topics'][number]['partitions'][number]>();
    for (const t of res.topics) for (const p of t.partitions) results.set(`${t.name}\u0000${p.partition}`, p);
    for (const b of batches) {
      const r = results.get(`${b.topic}\u0000${b.partition}`);
      if (r === undefined) {
        this.handleFailure(b, new StrandError('UNKNOWN_SERVER_ERROR', `Produce response has no result for ${b.topic}-${b.partition}`));
        continue;
      }
      if (r.errorCode === 0 || r.errorCode === 46 /* DUPLICATE_SEQUENCE_NUMBER: already written */) {
        // A batch already failed by delivery.timeout.ms only resolves its sequence here: finish()
        // ignores it, so its records are not completed a second time.
        this.settleInFlight(b, true);
        this.finish(b, null, this.acks === Acks.ACKS_NONE ? -1 : r.errorCode === 0 ? r.baseOffset : -1, r.logAppendTimeMs ?? -1);
        continue;
      }
      const err = StrandError.fromCode(r.errorCode, `${b.topic}-${b.partition}: ${r.errorMessage !== '' ? r.errorMessage : 'produce failed'}`);
      // The leader appended before these, and the append may still commit.
      if (err.errorName === 'REQUEST_TIMED_OUT' || err.errorName === 'NOT_ENOUGH_REPLICAS_AFTER_APPEND') b.maybeWritten = true;
      // The broker checked the sequence and has no such batch (it would have answered with the
      // original offsets), whatever an earlier attempt did.
      else if (err.errorName === 'OUT_OF_ORDER_SEQUENCE_NUMBER' || err.errorName === 'UNKNOWN_PRODUCER_ID') b.maybeWritten = false;
      // Any other answer (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS...) says nothing about an
      // earlier attempt whose answer was lost: that one may still be written, so the flag stays.
      if (r.currentLeaderId !== undefined && r.currentLeaderId >= 0 && r.currentLeaderEpoch !== undefined) this.cluster.updateLeader(b.topic, b.partition, r.currentLeaderId, r.currentLeaderEpoch);
      if (err.hasStaleMetadata) this.cluster.requestRefresh();
      this.handleFailure(b, err);
    }
  }

  /** Ends a batch's attempt; `written` when the broker answered that it has the batch. */
  private settleInFlight(b: ProducerBatch, written = false): void {
    if (!b.inFlight) return;
    b.inFlight = false;
    const q = this.accumulator.queue(b.topic, b.partition);
    q.inFlight--;
    if (q.unresolved.size === 0) return;
    // The broker accepts a producer's batches in sequence order, so a written batch proves every
    // batch numbered before it under the same identity written as well.
    if (written) for (const u of q.unresolved) if (sameIdentityAtOrBefore(u, b)) q.unresolved.delete(u);
    if (q.inFlight === 0) this.resolveSequences(q);
  }

  /**
   * Nothing of the partition is in flight any more and an expired batch was never shown written:
   * it may be, or its sequence may be a gap every later batch would fail on. Numbering on from 0
   * under a new epoch is right either way (the expired batch is never resent), so request a bump
   * for this partition, as Kafka's idempotent producer does. A batch of an older identity needs
   * none: the partition already restarts under the current one.
   */
  private resolveSequences(q: PartitionQueue): void {
    let unknown = false;
    for (const u of q.unresolved) if (u.producerId === this.producerId && u.producerEpoch === this.producerEpoch) unknown = true;
    q.unresolved.clear();
    if (!unknown) return;
    q.rewriteOnBump = true;
    this.epochBumpPending = true;
  }

  private handleFailure(b: ProducerBatch, err: StrandError): void {
    this.settleInFlight(b);
    if (b.done) return;
    const now = monotonicMs();
    // The topic's max.message.bytes is below this batch: split it and retry the halves, as
    // Kafka's Sender does (each record alone may fit; failing them all would lose them).
    if (err.errorName === 'MESSAGE_TOO_LARGE' && b.recordCount > 1 && b.sealed && !this.closed && now - b.createdMs < this.config['delivery.timeout.ms']) {
      this.split(b);
      return;
    }
    // A sequence error for a batch sent while an earlier batch of the partition was unacknowledged
    // is the echo of that batch's failure (the broker saw a gap, or no producer state at all
    // when the first batch never arrived): retry it after its predecessors.
    const sequenceError = (err.errorName === 'OUT_OF_ORDER_SEQUENCE_NUMBER' || err.errorName === 'UNKNOWN_PRODUCER_ID') && this.idempotent;
    const canRetry = (err.retriable || sequenceError) && b.attempts < this.config.retries && now - b.createdMs < this.config['delivery.timeout.ms'] && !this.closed;
    if (canRetry) {
      // First in line, a sequence error means the broker really has a gap or lost this
      // producer's state (retention removed its batches, or its producer table evicted it): the
      // batch was not written, so bump the epoch and renumber this partition from 0, as Kafka's
      // idempotent producer does (KIP-360). Behind an unacknowledged batch it is that batch's
      // echo: retry after it without a bump.
      // Whatever the batch's epoch (a batch resent under the previous one meets the same answer
      // every time otherwise), as Kafka's canRetry requests the bump for the partition.
      if (sequenceError && !b.sentBehindUnacked) {
        this.accumulator.queue(b.topic, b.partition).rewriteOnBump = true;
        this.epochBumpPending = true;
      }
      b.retryAtMs = now + backoffMs(b.attempts, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'], random: this.random });
      b.attempts++;
      this.accumulator.requeue(b);
      if (err.hasStaleMetadata || err.errorName === 'NETWORK_EXCEPTION' || err.errorName === 'REQUEST_TIMED_OUT') this.refreshSoon();
      this.scheduleWake(b.retryAtMs);
      return;
    }
    this.finish(b, err);
  }

  /** Splits a refused batch in two (see handleFailure); its records, callbacks and sequences carry over. */
  private split(b: ProducerBatch): void {
    const records = decodeRecordBatch(b.bytes as Buffer).records;
    const half = Math.ceil(records.length / 2);
    const pieces: ProducerBatch[] = [];
    for (let start = 0; start < records.length; start += half) {
      const part = records.slice(start, start + half);
      const headersOf = (r: (typeof part)[number]): ProducerHeader[] | undefined => (r.headers.length === 0 ? undefined : r.headers.map((h) => ({ key: h.key, value: h.value === null ? null : Buffer.from(h.value) })));
      const estimates = part.map((r) => estimateRecordSize(r.key, r.value, headersOf(r)));
      const piece = new ProducerBatch(b.topic, b.partition, estimates.reduce((x, y) => x + y, 61), b.createdMs);
      part.forEach((r, i) => {
        if (!piece.builder.tryAppend(r.timestamp, r.key, r.value, headersOf(r), estimates[i] as number)) throw new Error('a batch sized for its records must accept them'); // a bug
        piece.callbacks.push(b.callbacks[start + i]);
        piece.timestamps.push(b.timestamps[start + i] as number);
      });
      piece.attempts = b.attempts;
      piece.seal(this.compression, b.producerId, b.producerEpoch, b.baseSequence < 0 ? -1 : (b.baseSequence + start) % 2_147_483_648);
      pieces.push(piece);
    }
    b.done = true; // replaced: its records complete through the pieces
    this.incomplete.delete(b);
    for (const p of pieces) this.incomplete.add(p);
    this.armExpiry(b.createdMs + this.config['delivery.timeout.ms']);
    this.accumulator.splitBack(b, pieces);
    const waiters = this.batchWaiters.get(b);
    if (waiters !== undefined) {
      // flush() waiting on the big batch now waits on every piece.
      this.batchWaiters.delete(b);
      let left = pieces.length;
      for (const p of pieces) this.onBatchDone(p, () => {
        if (--left === 0) for (const w of waiters) w();
      });
    }
    this.scheduleDrain();
  }

  /** Completes or fails a batch for good and returns its memory. */
  private finish(b: ProducerBatch, err: Error | null, baseOffset = -1, logAppendTimeMs = -1): void {
    if (b.done) return;
    if (err === null) b.complete(baseOffset, logAppendTimeMs);
    else {
      b.fail(err);
      // A sequence number that will never be acknowledged leaves a gap: bump the epoch.
      const q = this.accumulator.queue(b.topic, b.partition);
      if (this.idempotent && b.sealed && b.producerEpoch === this.producerEpoch && b.producerId === this.producerId) {
        this.epochBumpPending = true;
        q.rewriteOnBump = true;
      }
      const i = q.batches.indexOf(b);
      if (i >= 0) {
        q.batches.splice(i, 1);
        if (q.batches.length === 0) this.accumulator.nonEmpty.delete(q);
      }
    }
    this.retire(b);
  }

  /** Returns a completed or failed batch's memory and wakes whoever waits for it. */
  private retire(b: ProducerBatch): void {
    this.accumulator.release(b);
    this.incomplete.delete(b);
    const waiters = this.batchWaiters.get(b);
    if (waiters !== undefined) {
      this.batchWaiters.delete(b);
      for (const w of waiters) w();
    }
    this.releaseMemory();
  }

  private onBatchDone(b: ProducerBatch, fn: () => void): void {
    if (b.done) return fn();
    let list = this.batchWaiters.get(b);
    if (list === undefined) {
      list = [];
      this.batchWaiters.set(b, list);
    }
    list.push(fn);
  }

  /**
   * Fails every batch older than delivery.timeout.ms, queued or in flight, and re-arms the timer
   * for the next deadline. Kafka's Sender expires both kinds on each pass
   * (RecordAccumulator.expiredBatches, Sender.getExpiredInflightBatches) and wakes for the next
   * expiry; without the timer a batch in flight failed only when its request ended, up to
   * request.timeout.ms + 5 s later, and a queued one when something else woke the sender.
   */
  private expireBatches(now: number): void {
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiryAtMs = Infinity;
    const limit = this.config['delivery.timeout.ms'];
    const expired: ProducerBatch[] = [];
    let next = Infinity;
    for (const b of this.incomplete) {
      if (now - b.createdMs >= limit) expired.push(b);
      else next = Math.min(next, b.createdMs + limit);
    }
    for (const b of expired) {
      if (b.done) continue; // a callback of an earlier one closed the producer
      if (b.inFlight) this.expireInFlight(b, now);
      else this.finish(b, this.expiryError(b, now));
    }
    if (next !== Infinity) this.armExpiry(next);
  }

  /** Kafka's TimeoutException message for an expired batch. */
  private expiryError(b: ProducerBatch, now: number): StrandError {
    return new StrandError('REQUEST_TIMED_OUT', `Expiring ${b.recordCount} record(s) for ${b.topic}-${b.partition}: ${Math.round(now - b.createdMs)} ms has passed since batch creation (delivery.timeout.ms ${this.config['delivery.timeout.ms']})`);
  }

  /**
   * Fails a batch in flight at its deadline. Its request stays outstanding: the batch counts as
   * in flight for ordering until it is answered, and that late answer completes nothing (the
   * batch is done). Under idempotence its sequence is unresolved until then (see settleInFlight).
   */
  private expireInFlight(b: ProducerBatch, now: number): void {
    if (this.idempotent && b.sealed) this.accumulator.queue(b.topic, b.partition).unresolved.add(b);
    b.fail(this.expiryError(b, now));
    this.retire(b);
  }

  private armExpiry(atMs: number): void {
    if (this.closed || atMs >= this.expiryAtMs) return;
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryAtMs = atMs;
    this.expiryTimer = setTimeout(() => {
      this.expiryTimer = undefined;
      if (this.closed) return;
      this.expireBatches(monotonicMs());
      // A failed sealed batch asks for an epoch bump, which the sender performs.
      this.scheduleDrain();
    }, Math.max(1, Math.ceil(atMs - monotonicMs())));
    // Whatever the producer is waiting on (a request, a metadata refresh, linger) keeps the
    // process alive; this timer must not, for up to delivery.timeout.ms after the last send.
    this.expiryTimer.unref();
  }

  private failAll(err: StrandError): void {
    if (this.closed) return;
    for (const q of this.accumulator.allQueues()) for (const b of [...q.batches]) this.finish(b, err);
  }
}
