/**
 * The Consumer: manual assignment (assign/seek/pause/resume) or group subscription (subscribe),
 * records by poll() (the batch API) or `for await`, auto or manual commits.
 *
 * Fetching is pipelined: poll() returns buffered records and, before returning, sends the next
 * Fetch to every leader that has no fetch in flight, so the broker long-polls while the
 * application processes. At most one fetch per broker is in flight, and no partition is fetched
 * while it still has unconsumed buffered data; buffered bytes are bounded by
 * `fetch.buffer.max.bytes`. Batches stay bytes until consumed: a batch is decoded only when
 * poll() reaches it.
 *
 * Positions: the position of a partition is the offset of the next record to return. It starts
 * at the committed offset (groups), else by `auto.offset.reset`, and moves past each returned
 * record; commits store the position and the leader epoch of the last returned record. A fetch
 * whose offset no longer equals the position (seek, rebalance) is discarded.
 *
 * Group rebalances are driven from poll() (eager protocol): before rejoining, the consumer
 * commits (with auto commit), calls onPartitionsRevoked, and drops its fetch state; after the
 * join it calls onPartitionsAssigned. A lost membership (session expired) calls
 * onPartitionsLost and does not commit: those partitions may already be someone else's.
 */
import { StrandError, isControlBatch, isStrandError, readBatchHeader, validateBatch, BASE_OFFSET_OFFSET, BATCH_LENGTH_OFFSET, LAST_OFFSET_DELTA_OFFSET, LOG_OVERHEAD, PARTITION_LEADER_EPOCH_OFFSET, RECORD_BATCH_OVERHEAD } from '@strand/protocol';
import type { FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataResponse, RecordHeader } from '@strand/protocol';
import { Cluster } from '../cluster/cluster';
import type { UnaryMethod } from '../cluster/connection';
import { defaultClientId, parseConsumerConfig } from '../config';
import type { ClientConfigInput, ConsumerConfig } from '../config';
import { toStrandError } from '../errors';
import { backoffMs, monotonicMs, sleep } from '../retry';
import { BUILT_IN_ASSIGNORS } from './assignors';
import type { Assignor, TopicPartition } from './assignors';
import { FetchStream } from './fetch-stream';
import { GroupMembership } from './group-membership';
import { decodeBatchInto } from './record-decoder';
import type { CommittedOffset, OffsetToCommit } from './group-membership';

export interface ConsumerRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  timestamp: number;
  timestampType: 'CreateTime' | 'LogAppendTime';
  /** Leader epoch of the batch the record was written in (-1 unknown). */
  leaderEpoch: number;
}

export interface RebalanceListener {
  onPartitionsRevoked?(partitions: TopicPartition[]): void | Promise<void>;
  onPartitionsAssigned?(partitions: TopicPartition[]): void | Promise<void>;
  /** Partitions taken away without a chance to commit (membership lost). */
  onPartitionsLost?(partitions: TopicPartition[]): void | Promise<void>;
}

export interface ConsumerOptions {
  /** Extra assignors (by name) besides the built-in range and roundrobin. */
  assignors?: Assignor[];
}

type ResetStrategy = { kind: 'earliest' } | { kind: 'latest' } | { kind: 'timestamp'; timestampMs: number } | { kind: 'committed' };

interface PartitionState {
  tp: TopicPartition;
  /** Offset of the next record to return; undefined until initialized or reset. */
  position: number | undefined;
  /** Epoch of the last returned record's batch (-1 unknown). */
  leaderEpoch: number;
  paused: boolean;
  reset: ResetStrategy | undefined;
  fetchInFlight: boolean;
  /** Fetched, not yet consumed data of this partition. */
  buffered: Buffered | undefined;
  highWatermark: number;
  /**
   * A fetch error only the application can resolve (out of range, or a detected truncation,
   * with auto.offset.reset=none): poll() raises it every time until a seek or reset clears it,
   * and the partition is not fetched meanwhile (the answer would only be the same again).
   */
  error: StrandError | undefined;
  /** After a partition error in a fetch answer: consecutive ones, and when to fetch it again (monotonic ms). */
  fetchFailures: number;
  retryAtMs: number;
  /**
   * Fetch session of this partition: unique across the consumer's life, renewed whenever its
   * buffered data is thrown away (seek, reset, truncation, reassignment). A fetch response is
   * used only if the partition is still in the session the request was sent in, and still wants
   * data from the offset the request asked for.
   */
  session: number;
  /**
   * Place in the fetch order (lower first): renewed, so the partition goes to the end, whenever a
   * fetch answer brings it data or an error, as Kafka's SubscriptionState.movePartitionToEnd. The
   * broker lets only the first partition with data in a request exceed max.partition.fetch.bytes
   * (KIP-74); a partition whose next batch is larger stays ahead of those that got data, so it
   * reaches the front of its broker's next request instead of waiting behind them for ever.
   */
  fetchOrder: number;
}

interface Buffered {
  bytes: Buffer;
  /** Next batch position in `bytes`. */
  pos: number;
  /** Records of the batch being consumed, and the next index. */
  records: ConsumerRecord[];
  next: number;
  /** Last offset of the batch being consumed (the position moves past it when done). */
  batchLastOffset: number;
  /**
   * Leader epoch of the batch being consumed: the position's epoch once it moves past the batch,
   * also when none of its records is returned (an empty or control batch), as Kafka's
   * CompletedFetch.lastEpoch. Kept at the last record's epoch, a position past an empty batch
   * of a newer epoch would present an epoch the leader says ends before it: a false truncation.
   */
  batchEpoch: number;
  /** Later responses, consumed after `bytes` (prefetched while `bytes` was being consumed). */
  queued: Buffer[];
  /** Bytes of `bytes` and `queued` (counted in the consumer's buffered total). */
  size: number;
  /** Offset after the last complete batch buffered: where the next fetch starts. */
  endOffset: number;
  /** Leader epoch of the last complete batch buffered (the next fetch's lastFetchedEpoch). */
  endEpoch: number;
}

/** Offset after the last complete batch of fetched `bytes`, and that batch's epoch; undefined if none is complete. */
function bufferEnd(bytes: Buffer): { endOffset: number; endEpoch: number } | undefined {
  let pos = 0;
  let end: { endOffset: number; endEpoch: number } | undefined;
  while (pos + RECORD_BATCH_OVERHEAD <= bytes.length) {
    const size = bytes.readInt32BE(pos + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD;
    if (pos + size > bytes.length) break;
    const base = bytes.readUInt32BE(pos + BASE_OFFSET_OFFSET) * 4294967296 + bytes.readUInt32BE(pos + BASE_OFFSET_OFFSET + 4);
    end = { endOffset: base + bytes.readInt32BE(pos + LAST_OFFSET_DELTA_OFFSET) + 1, endEpoch: bytes.readInt32BE(pos + PARTITION_LEADER_EPOCH_OFFSET) };
    pos += size;
  }
  return end;
}

const tpKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * Partition errors of a fetch answer that are retried (after a backoff, with a metadata refresh
 * where they say it is stale), as Kafka's FetchCollector.handleInitializeErrors. Any other (such
 * as TOPIC_AUTHORIZATION_FAILED, CORRUPT_MESSAGE, or a code it does not expect there) is raised
 * by poll() once per answer that carries it; OFFSET_OUT_OF_RANGE has its own handling.
 */
const RETRIED_FETCH_ERRORS: ReadonlySet<string> = new Set([
  'NOT_LEADER_OR_FOLLOWER',
  'REPLICA_NOT_AVAILABLE',
  'KAFKA_STORAGE_ERROR',
  'FENCED_LEADER_EPOCH',
  'OFFSET_NOT_AVAILABLE',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'UNKNOWN_TOPIC_ID',
  'INCONSISTENT_TOPIC_ID',
  'UNKNOWN_LEADER_EPOCH',
  'UNKNOWN_SERVER_ERROR',
]);

/** Resolves on notify() or after a timeout: how poll() waits without busy loops or fixed sleeps. */
class Wakeup {
  private waiters: (() => void)[] = [];
  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      const self = this;
      function done(): void {
        clearTimeout(timer);
        const i = self.waiters.indexOf(done);
        if (i >= 0) self.waiters.splice(i, 1);
        resolve();
      }
      this.waiters.push(done);
    });
  }
}

export class Consumer implements AsyncIterable<ConsumerRecord> {
  readonly config: ConsumerConfig;
  readonly cluster: Cluster;
  private readonly partitions = new Map<string, PartitionState>();
  private subscription: { topics: string[] } | { pattern: RegExp } | undefined;
  private listener: RebalanceListener = {};
  private readonly group: GroupMembership | undefined;
  private readonly wakeup = new Wakeup();
  private readonly nodeFetchInFlight = new Set<number>();
  /** One FetchStream per broker, opened on first use. */
  private readonly streams = new Map<number, FetchStream>();
  /** Per broker after failed fetches: consecutive failures and when the next fetch may go. */
  private readonly nodeBackoff = new Map<number, { failures: number; untilMs: number }>();
  private backoffTimer: NodeJS.Timeout | undefined;
  /** Set from refreshSoon() until its refresh is done. */
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastRefreshStartMs = -Infinity;
  private sessionSeq = 0;
  private bufferedBytes = 0;
  private fetchOrderSeq = 0;
  private nextAutoCommitMs = 0;
  private autoCommitInFlight = false;
  private rotate = 0;
  private polling = false;
  /** Records the async iterator took from poll(), how many it yielded, and per partition the epoch before that poll(). */
  private iteration: { records: ConsumerRecord[]; next: number; marks: Map<PartitionState, { epochBefore: number }> } | undefined;
  private closed = false;
  private readonly pending = new Set<Promise<unknown>>();
  private pendingError: StrandError | undefined;
  /** Fires max.poll.interval.ms after the last poll (group members only). */
  private pollTimer: NodeJS.Timeout | undefined;
  /** A LeaveGroup sent because the application stopped polling; the next join waits for it. */
  private leaving: Promise<void> | undefined;
  /** The group join in progress (ensureGroupActive), possibly outliving the poll() that started it. */
  private joining: Promise<'active' | 'failed'> | undefined;
  /** Errors thrown by the rebalance listener (see listen()). */
  private readonly listenerErrors = new WeakSet<object>();
  /** Consecutive retriable join failures (the backoff before the next attempt). */
  private joinFailures = 0;
  /** Bumped by subscribe(), unsubscribe() and close(): a join started before is stale. */
  private subscriptionVersion = 0;
  /**
   * Partitions (tpKey) a rebalance of the current subscription took from this member and has not
   * given back: commit() refuses offsets of them (see there).
   */
  private readonly revoked = new Set<string>();

  constructor(config: ClientConfigInput = {}, options: ConsumerOptions = {}) {
    this.config = parseConsumerConfig(config);
    if (this.config['client.id'] === '') this.config['client.id'] = defaultClientId('consumer', this.config['group.id']);
    // No receive cap: a fetch answer may exceed fetch.max.bytes by its first batch (KIP-74, up to
    // the topic's max.message.bytes); capped, the same answer would fail forever.
    this.cluster = new Cluster(this.config, { maxReceiveBytes: -1, allowAutoTopicCreation: true });
    const assignors = { ...BUILT_IN_ASSIGNORS };
    for (const a of options.assignors ?? []) assignors[a.name] = a;
    const chosen = this.config['partition.assignment.strategy'].map((name) => {
      const a = assignors[name];
      if (a === undefined) throw new StrandError('INVALID_CONFIG', `partition.assignment.strategy: unknown assignor ${name}`);
      return a;
    });
    if (this.config['group.id'] !== '') this.group = new GroupMembership(this.config['group.id'], this.cluster, this.config, chosen, () => this.wakeup.notify());
    this.nextAutoCommitMs = monotonicMs() + this.config['auto.commit.interval.ms'];
  }

  // ---- assignment --------------------------------------------------------------------------

  /** Manually assigns partitions (no group membership). Replaces any previous assignment. */
  assign(partitions: readonly TopicPartition[]): void {
    this.ensureOpen();
    if (this.subscription !== undefined) throw new StrandError('INVALID_REQUEST', 'assign() cannot be mixed with subscribe(); call unsubscribe() first');
    this.setAssignment(partitions);
    this.cluster.addInterest(partitions.map((p) => p.topic));
  }

  /** Subscribes to topics (or a pattern) as a member of `group.id`; assignment comes from the group. */
  subscribe(topics: readonly string[] | RegExp, listener: RebalanceListener = {}): void {
    this.ensureOpen();
    if (this.group === undefined) throw new StrandError('INVALID_GROUP_ID', 'subscribe() needs group.id');
    if (!(topics instanceof RegExp) && topics.length === 0) throw new StrandError('INVALID_REQUEST', 'subscribe() needs at least one topic');
    if (this.subscription === undefined && this.partitions.size > 0) throw new StrandError('INVALID_REQUEST', 'subscribe() cannot be mixed with assign(); call unsubscribe() first');
    this.subscription = topics instanceof RegExp ? { pattern: topics } : { topics: [...topics] };
    this.revoked.clear();
    this.listener = listener;
    this.subscriptionVersion++;
    this.group.rejoinNeeded = true;
    if (!(topics instanceof RegExp)) this.cluster.addInterest(topics);
  }

  /** Leaves the group (if subscribed) and drops every assigned partition. */
  async unsubscribe(): Promise<void> {
    this.subscriptionVersion++;
    this.group?.cancelJoin();
    if (this.subscription !== undefined && this.group !== undefined) {
      if (this.leaving !== undefined) await this.leaving;
      if (this.group.memberLost) {
        // Out of the group already (poll timeout, fenced): lost, not revoked, and no commit, as
        // close() and Kafka's onLeavePrepare (which calls the listener only when it owns some).
        const owned = this.assignment();
        if (owned.length > 0) await this.listen(() => this.listener.onPartitionsLost?.(owned));
        this.setAssignment([]);
        this.group.memberLost = false;
      } else await this.revoke();
      await this.group.leave();
    }
    this.subscription = undefined;
    this.setAssignment([]);
    this.revoked.clear();
  }

  /** Currently assigned partitions. */
  assignment(): TopicPartition[] {
    return [...this.partitions.values()].map((s) => s.tp);
  }

  private setAssignment(partitions: readonly TopicPartition[]): void {
    const next = new Map<string, PartitionState>();
    for (const tp of partitions) {
      const k = tpKey(tp.topic, tp.partition);
      const old = this.partitions.get(k);
      next.set(k, old ?? { tp: { topic: tp.topic, partition: tp.partition }, position: undefined, leaderEpoch: -1, paused: false, reset: undefined, fetchInFlight: false, buffered: undefined, highWatermark: -1, error: undefined, fetchFailures: 0, retryAtMs: 0, session: ++this.sessionSeq, fetchOrder: ++this.fetchOrderSeq });
    }
    for (const [k, s] of this.partitions) {
      if (next.has(k)) continue;
      this.dropBuffered(s);
      if (this.subscription !== undefined) this.revoked.add(k);
    }
    for (const k of next.keys()) this.revoked.delete(k);
    this.partitions.clear();
    for (const [k, s] of next) this.partitions.set(k, s);
  }

  private state(tp: TopicPartition): PartitionState {
    const s = this.partitions.get(tpKey(tp.topic, tp.partition));
    if (s === undefined) throw new StrandError('INVALID_REQUEST', `partition ${tp.topic}-${tp.partition} is not assigned to this consumer`);
    return s;
  }

  /** Throws away buffered data and starts a new fetch session (in-flight answers are ignored). */
  private dropBuffered(s: PartitionState): void {
    this.releaseBuffered(s);
    s.session = ++this.sessionSeq;
  }

  /** Forgets buffered data that has been consumed (the fetch session goes on). */
  private releaseBuffered(s: PartitionState): void {
    if (s.buffered !== undefined) this.bufferedBytes -= s.buffered.size;
    s.buffered = undefined;
  }

  // ---- positions ---------------------------------------------------------------------------

  /** Sets the next offset to fetch. */
  seek(tp: TopicPartition, offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new StrandError('INVALID_REQUEST', `seek offset must be a non-negative integer, got ${offset}`);
    const s = this.state(tp);
    this.dropBuffered(s);
    this.iteration?.marks.delete(s);
    s.error = undefined;
    s.position = offset;
    s.leaderEpoch = -1;
    s.reset = undefined;
  }

  seekToBeginning(tps: readonly TopicPartition[] = this.assignment()): void {
    for (const tp of tps) this.markReset(this.state(tp), { kind: 'earliest' });
  }

  seekToEnd(tps: readonly TopicPartition[] = this.assignment()): void {
    for (const tp of tps) this.markReset(this.state(tp), { kind: 'latest' });
  }

  /** Starts at the first record with a timestamp at or after `timestampMs` (ListOffsets). */
  seekToTimestamp(tps: readonly TopicPartition[], timestampMs: number): void {
    for (const tp of tps) this.markReset(this.state(tp), { kind: 'timestamp', timestampMs });
  }

  private markReset(s: PartitionState, reset: ResetStrategy): void {
    this.dropBuffered(s);
    this.iteration?.marks.delete(s);
    s.error = undefined;
    s.position = undefined;
    s.leaderEpoch = -1;
    s.reset = reset;
  }

  /**
   * The next offset poll() returns for `tp` (an assigned partition). As Kafka's
   * `position(partition, timeout)`, a partition with no position yet gets it now, without a
   * poll: its committed offset (group.id set), else `auto.offset.reset` or a pending
   * seekTo...; with `none` and no commit it throws OFFSET_OUT_OF_RANGE (Kafka's
   * NoOffsetForPartitionException). Retriable failures (no leader, coordinator moving) are
   * retried with backoff until `timeoutMs` (default.api.timeout.ms), then REQUEST_TIMED_OUT.
   */
  async position(tp: TopicPartition, timeoutMs: number = this.config['default.api.timeout.ms']): Promise<number> {
    this.ensureOpen();
    const deadline = monotonicMs() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const s = this.state(tp);
      const known = this.unyielded().get(s)?.offset ?? s.position;
      if (known !== undefined) return known;
      if (s.error !== undefined) throw s.error;
      let failure: StrandError | undefined;
      try {
        await this.initPositions();
      } catch (e: unknown) {
        failure = toStrandError(e, 'position lookup');
        if (!failure.retriable) throw failure;
        if (failure.hasStaleMetadata || failure.errorName === 'NETWORK_EXCEPTION' || failure.errorName === 'REQUEST_TIMED_OUT') this.cluster.requestRefresh();
      }
      const after = this.state(tp);
      const found = this.unyielded().get(after)?.offset ?? after.position;
      if (found !== undefined) return found;
      const left = deadline - monotonicMs();
      if (left <= 0 || this.closed) {
        throw new StrandError('REQUEST_TIMED_OUT', `position of ${tp.topic}-${tp.partition} not known within ${timeoutMs} ms${failure === undefined ? '' : ` (last failure: ${failure.message})`}`);
      }
      await sleep(Math.min(left, backoffMs(attempt, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'] })), this.cluster.closeSignal).catch(() => undefined);
    }
  }

  /**
   * Stops returning records of `tps` until resume(); their buffered data is kept. Inside a
   * `for await` loop the records it still holds for them count as not returned (as poll()
   * returns nothing of a paused partition): the partition moves back to the first of them, so
   * resume() brings them again.
   */
  pause(tps: readonly TopicPartition[]): void {
    const held = this.unyielded();
    for (const tp of tps) {
      const s = this.state(tp);
      s.paused = true;
      const start = held.get(s);
      if (start === undefined) continue;
      // The buffered data starts after the held records: thrown away, fetched again on resume.
      this.dropBuffered(s);
      this.iteration?.marks.delete(s);
      s.position = start.offset;
      s.leaderEpoch = start.leaderEpoch;
    }
  }

  resume(tps: readonly TopicPartition[]): void {
    for (const tp of tps) this.state(tp).paused = false;
    this.wakeup.notify();
  }

  paused(): TopicPartition[] {
    return [...this.partitions.values()].filter((s) => s.paused).map((s) => s.tp);
  }

  // ---- polling -----------------------------------------------------------------------------

  /**
   * Returns up to `max.poll.records` records, waiting up to `timeoutMs` for some. Drives group
   * membership, position initialization, auto commit and fetch pipelining.
   */
  async poll(timeoutMs = 1000): Promise<ConsumerRecord[]> {
    this.ensureOpen();
    if (this.polling) throw new StrandError('INVALID_REQUEST', 'poll() is already running: a Consumer is used by one loop at a time');
    this.polling = true;
    this.touchPollTimer();
    try {
      const deadline = monotonicMs() + timeoutMs;
      for (;;) {
        if (this.pendingError !== undefined) {
          const e = this.pendingError;
          this.pendingError = undefined;
          throw e;
        }
        if (this.subscription !== undefined) {
          // A rebalance (or a coordinator still unavailable) must not hold poll() past its
          // timeout: it goes on in the background and the next poll() picks it up (Kafka's
          // poll(Duration) returns empty then). Its failure is raised by the next loop turn.
          const group = await this.groupActiveWithin(deadline);
          if (group === 'pending') return [];
          if (group === 'failed') continue; // thrown at the top of the loop, or joined again
        }
        for (const s of this.partitions.values()) if (s.error !== undefined && !s.paused) throw s.error;
        try {
          await this.initPositions();
        } catch (e: unknown) {
          // As the Java client's poll(): a retriable failure (coordinator or leader unavailable)
          // leaves those positions unknown and is tried again, never thrown; the other partitions
          // keep being consumed meanwhile.
          const err = toStrandError(e, 'position lookup');
          if (!err.retriable) throw err;
          if (err.hasStaleMetadata || err.errorName === 'NETWORK_EXCEPTION' || err.errorName === 'REQUEST_TIMED_OUT') this.cluster.requestRefresh();
        }
        this.maybeAutoCommit();
        const records = this.drainBuffered(this.config['max.poll.records']);
        this.sendFetches();
        if (records.length > 0) return records;
        const left = deadline - monotonicMs();
        if (left <= 0 || this.closed) return [];
        await this.wakeup.wait(Math.min(left, this.config['retry.backoff.max.ms'] * 5));
      }
    } finally {
      this.polling = false;
      this.touchPollTimer();
    }
  }

  /** Restarts the max.poll.interval.ms countdown (group members only). */
  private touchPollTimer(): void {
    if (this.group === undefined || this.closed) return;
    if (this.pollTimer === undefined) {
      this.pollTimer = setTimeout(() => this.onPollTimeout(), this.config['max.poll.interval.ms']);
      this.pollTimer.unref();
    } else this.pollTimer.refresh();
  }

  /**
   * The application did not call poll() within max.poll.interval.ms: like the Java client, the
   * member leaves the group (LeaveGroup) so the coordinator hands its partitions to live members
   * at once instead of stalling the group until the session times out. The partitions count as
   * lost (no commit: they may be someone else's by now); the next poll() calls
   * onPartitionsLost and rejoins.
   */
  private onPollTimeout(): void {
    const group = this.group;
    if (this.closed || group === undefined) return;
    if (this.polling) {
      this.touchPollTimer();
      return;
    }
    if (this.subscription === undefined || this.leaving !== undefined || group.generationId < 0) return;
    group.rejoinNeeded = true;
    group.memberLost = true;
    this.leaving = group
      .leave(`consumer poll timeout has expired (no poll() for max.poll.interval.ms=${this.config['max.poll.interval.ms']})`)
      .finally(() => {
        group.memberLost = true;
        this.leaving = undefined;
      });
    this.track(this.leaving);
  }

  /**
   * `for await (const record of consumer)`: polls forever until close() or break. A record counts
   * as consumed once the loop has received it: poll() moved the positions past every record it
   * returned, so leaving the loop early (break, a throw) or closing the consumer while the loop
   * holds records it has not reached yet moves those partitions back to the first record not
   * handed out, and commit() meanwhile commits only what the loop received. Otherwise a commit
   * (auto commit on close, or commit()) would count records the application never saw. A seek
   * (or seekTo...) inside the loop drops the records it still holds for that partition: the next
   * one it yields is from the new position.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<ConsumerRecord> {
    try {
      while (!this.closed) {
        const epochsBefore = new Map<PartitionState, number>();
        for (const s of this.partitions.values()) epochsBefore.set(s, s.leaderEpoch);
        const records = await this.poll(this.config['fetch.max.wait.ms'] + 500).catch((e: unknown) => {
          if (this.closed) return [] as ConsumerRecord[];
          throw e;
        });
        const marks = new Map<PartitionState, { epochBefore: number }>();
        for (const r of records) {
          const s = this.partitions.get(tpKey(r.topic, r.partition));
          if (s !== undefined && !marks.has(s)) marks.set(s, { epochBefore: epochsBefore.get(s) ?? -1 });
        }
        const iteration = { records, next: 0, marks };
        this.iteration = iteration;
        while (iteration.next < records.length && !this.closed) {
          const r = records[iteration.next++] as ConsumerRecord;
          // A partition sought or reset inside the loop (its mark is gone) is at its new position:
          // the records still held for it were fetched before, and Kafka never hands out a record
          // fetched before a seek. One paused inside the loop was moved back to its first held
          // record (pause()): they come again after resume().
          const s = this.partitions.get(tpKey(r.topic, r.partition));
          if (s === undefined || !marks.has(s)) continue;
          yield r;
        }
        this.iteration = undefined;
      }
    } finally {
      this.rewindIteration();
    }
  }

  /**
   * Per partition with records the async iterator took from poll() but has not yielded, the
   * first of those and the leader epoch of the record before it, when that is below the
   * position. A partition sought or reset since (by the application or auto.offset.reset) is
   * left out: its new position stands.
   */
  private unyielded(): Map<PartitionState, { offset: number; leaderEpoch: number }> {
    const out = new Map<PartitionState, { offset: number; leaderEpoch: number }>();
    const it = this.iteration;
    if (it === undefined) return out;
    const lastEpoch = new Map<PartitionState, number>();
    const settled = new Set<PartitionState>();
    for (let i = 0; i < it.records.length; i++) {
      const r = it.records[i] as ConsumerRecord;
      const s = this.partitions.get(tpKey(r.topic, r.partition));
      if (s === undefined || settled.has(s)) continue;
      const mark = it.marks.get(s);
      if (mark === undefined) continue;
      if (i < it.next) {
        lastEpoch.set(s, r.leaderEpoch);
        continue;
      }
      settled.add(s);
      // Not when a detected truncation already moved the position back to or below it.
      if (s.position !== undefined && r.offset < s.position) out.set(s, { offset: r.offset, leaderEpoch: lastEpoch.get(s) ?? mark.epochBefore });
    }
    return out;
  }

  /** Moves partitions back to the first record the async iterator did not hand out (see above). */
  private rewindIteration(): void {
    for (const [s, start] of this.unyielded()) {
      this.dropBuffered(s);
      s.position = start.offset;
      s.leaderEpoch = start.leaderEpoch;
    }
    this.iteration = undefined;
  }

  /** ensureGroupActive() in the background; whether it finished by `deadline` (monotonic ms). */
  private async groupActiveWithin(deadline: number): Promise<'active' | 'failed' | 'pending'> {
    this.joining ??= this.ensureGroupActive().then(
      () => {
        this.joining = undefined;
        this.joinFailures = 0;
        return 'active' as const;
      },
      async (e: unknown) => {
        const err = toStrandError(e, 'JoinGroup');
        if (err.retriable && !this.closed && !(typeof e === 'object' && e !== null && this.listenerErrors.has(e))) {
          // As the Java client's poll(): a retriable failure (a metadata or coordinator lookup)
          // is tried again after a backoff, never thrown.
          if (err.hasStaleMetadata || err.errorName === 'NETWORK_EXCEPTION' || err.errorName === 'REQUEST_TIMED_OUT') this.cluster.requestRefresh();
          await sleep(backoffMs(this.joinFailures++, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'] }), this.cluster.closeSignal).catch(() => undefined);
        } else this.pendingError ??= err;
        this.joining = undefined;
        return 'failed' as const;
      },
    );
    const joining = this.joining;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([joining, new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), Math.max(0, deadline - monotonicMs()))))]);
    clearTimeout(timer);
    return outcome;
  }

  private async ensureGroupActive(): Promise<void> {
    const group = this.group as GroupMembership;
    // Fenced (another process took this group.instance.id): fatal, as in the Java client; the
    // buffered records of partitions that now belong to the other process are not returned.
    if (group.fatal !== undefined) throw group.fatal;
    if (this.leaving !== undefined) await this.leaving;
    if (group.isStable && !this.assignmentOutdated() && !(await this.patternChanged())) return;
    let owned: TopicPartition[];
    let version: number;
    let result: Awaited<ReturnType<GroupMembership['join']>>;
    for (;;) {
      if (group.memberLost) {
        // Lost, not revoked: another member may own these already, so no commit.
        await this.listen(() => this.listener.onPartitionsLost?.(this.assignment()));
        this.setAssignment([]);
        group.memberLost = false;
      } else if (!group.cooperative) await this.revoke();
      owned = this.assignment();
      const topics = await this.subscribedTopics();
      // The join may outlive the poll() that started it: subscribe(), unsubscribe() or close()
      // meanwhile make its result stale (a new subscription needs another join; an unsubscribed
      // or closed consumer must not take partitions).
      version = this.subscriptionVersion;
      try {
        result = await group.join(topics, (ts) => this.partitionCounts(ts), owned);
        break;
      } catch (e: unknown) {
        if (version !== this.subscriptionVersion || this.closed) return;
        // The join found this member out of the group while it owned partitions: give them up
        // as lost (above), then join again owning nothing.
        if (group.memberLost && owned.length > 0 && isStrandError(e) && (e.errorName === 'UNKNOWN_MEMBER_ID' || e.errorName === 'ILLEGAL_GENERATION')) continue;
        throw e;
      }
    }
    if (version !== this.subscriptionVersion || this.closed) {
      group.rejoinNeeded = true;
      return;
    }
    const next = new Set(result.assignment.map((tp) => tpKey(tp.topic, tp.partition)));
    const kept = new Set(owned.map((tp) => tpKey(tp.topic, tp.partition)).filter((k) => next.has(k)));
    const revoked = owned.filter((tp) => !next.has(tpKey(tp.topic, tp.partition)));
    if (revoked.length > 0) {
      // Cooperative: give up only what moves, then rejoin at once so it can be handed out.
      if (this.config['enable.auto.commit']) await this.commitPartitions(revoked).catch(() => undefined);
      await this.listen(() => this.listener.onPartitionsRevoked?.(revoked));
      group.rejoinNeeded = true;
    }
    this.setAssignment(result.assignment);
    const added = result.assignment.filter((tp) => !kept.has(tpKey(tp.topic, tp.partition)));
    for (const tp of added) {
      const s = this.state(tp);
      this.dropBuffered(s);
      s.position = undefined;
      s.reset = { kind: 'committed' };
    }
    this.cluster.addInterest(result.assignment.map((tp) => tp.topic));
    await this.listen(() => this.listener.onPartitionsAssigned?.(added));
  }

  /**
   * Whether this member led the last rebalance and the metadata no longer matches what that
   * assignment was computed from (a subscribed topic gained partitions, was created or deleted):
   * the group must rebalance, or those partitions would never be consumed (Kafka's leader does
   * the same; metadata is refreshed every metadata.max.age.ms).
   */
  private assignmentOutdated(): boolean {
    const snapshot = this.group?.assignmentSnapshot;
    if (snapshot === undefined) return false;
    for (const [topic, count] of snapshot) if ((this.cluster.topics.get(topic)?.partitions.length ?? 0) !== count) return true;
    return false;
  }

  private lastPatternTopics = '';

  private async patternChanged(): Promise<boolean> {
    if (this.subscription === undefined || !('pattern' in this.subscription) || !this.cluster.needsRefresh) return false;
    const now = (await this.subscribedTopics()).join(',');
    return now !== this.lastPatternTopics;
  }

  private async subscribedTopics(): Promise<string[]> {
    const sub = this.subscription;
    if (sub === undefined) return [];
    if ('topics' in sub) return [...sub.topics].sort();
    const conn = this.cluster.anyConnection();
    const res = await conn.unary(conn.client.metadata as UnaryMethod<{ topics: string[] }, MetadataResponse>, { topics: [] }, this.config['request.timeout.ms'], 'Metadata', this.cluster.closeSignal);
    const topics = res.topics.filter((t) => t.errorCode === 0 && !t.name.startsWith('__') && sub.pattern.test(t.name)).map((t) => t.name).sort();
    this.lastPatternTopics = topics.join(',');
    this.cluster.addInterest(topics);
    return topics;
  }

  private async partitionCounts(topics: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (topics.length > 0) await this.cluster.refresh(topics).catch(() => undefined);
    for (const t of topics) {
      const info = this.cluster.topics.get(t);
      if (info !== undefined && info.partitions.length > 0) out.set(t, info.partitions.length);
    }
    return out;
  }

  /**
   * Calls the application's rebalance listener. What it throws is the application's: poll()
   * raises it, even a retriable StrandError, which a failure of the client's own would not be.
   */
  private async listen(call: () => void | Promise<void>): Promise<void> {
    try {
      await call();
    } catch (e: unknown) {
      if (typeof e === 'object' && e !== null) this.listenerErrors.add(e);
      throw e;
    }
  }

  /** Gives up the whole assignment before an eager rejoin: commit, then tell the app. */
  private async revoke(): Promise<void> {
    const owned = this.assignment();
    if (owned.length === 0) return;
    if (this.config['enable.auto.commit']) await this.commit().catch(() => undefined);
    await this.listen(() => this.listener.onPartitionsRevoked?.(owned));
    this.setAssignment([]);
  }

  private commitPartitions(tps: readonly TopicPartition[]): Promise<void> {
    const list: OffsetToCommit[] = [];
    for (const tp of tps) {
      const s = this.partitions.get(tpKey(tp.topic, tp.partition));
      if (s?.position !== undefined) list.push({ topic: tp.topic, partition: tp.partition, offset: s.position, leaderEpoch: s.leaderEpoch });
    }
    return (this.group as GroupMembership).commit(list, true);
  }

  /** Initializes positions of partitions that have none: committed offset, else the reset policy. */
  private async initPositions(): Promise<void> {
    const missing = [...this.partitions.values()].filter((s) => s.position === undefined);
    if (missing.length === 0) return;
    const needCommitted = missing.filter((s) => s.reset === undefined || s.reset.kind === 'committed');
    if (needCommitted.length > 0 && this.group !== undefined) {
      const committed = await this.group.fetchCommitted(needCommitted.map((s) => s.tp));
      for (const s of needCommitted) {
        const c = committed.get(tpKey(s.tp.topic, s.tp.partition));
        // Not over a seek (or a seekTo...) the application made while the lookup was out.
        if (c !== undefined && s.position === undefined && (s.reset === undefined || s.reset.kind === 'committed')) {
          s.position = c.offset;
          s.leaderEpoch = c.leaderEpoch;
          s.reset = undefined;
        }
      }
    }
    const toReset = missing.filter((s) => s.position === undefined);
    if (toReset.length === 0) return;
    const policy = this.config['auto.offset.reset'];
    const targets = new Map<PartitionState, number>();
    for (const s of toReset) {
      const r = s.reset !== undefined && s.reset.kind !== 'committed' ? s.reset : undefined;
      if (r === undefined && policy === 'none') throw new StrandError('OFFSET_OUT_OF_RANGE', `no committed offset for ${s.tp.topic}-${s.tp.partition} and auto.offset.reset=none`);
      const ts = r === undefined ? (policy === 'earliest' ? -2 : -1) : r.kind === 'earliest' ? -2 : r.kind === 'latest' ? -1 : r.timestampMs;
      targets.set(s, ts);
    }
    await this.listOffsetsInto(targets);
  }

  private async listOffsetsInto(targets: Map<PartitionState, number>): Promise<void> {
    // A seek or another seekTo... while the request is out replaces `reset`: its answer is stale.
    const resets = new Map([...targets.keys()].map((s) => [s, s.reset]));
    await this.cluster.refreshIfNeeded().catch(() => undefined);
    const byNode = new Map<number, PartitionState[]>();
    for (const s of targets.keys()) {
      let leader = this.cluster.leaderOf(s.tp.topic, s.tp.partition);
      if (leader === undefined) {
        await this.cluster.topic(s.tp.topic, monotonicMs() + this.config['request.timeout.ms']);
        leader = this.cluster.leaderOf(s.tp.topic, s.tp.partition);
      }
      if (leader === undefined) {
        this.cluster.requestRefresh();
        continue;
      }
      const l = byNode.get(leader) ?? [];
      l.push(s);
      byNode.set(leader, l);
    }
    await Promise.all(
      [...byNode].map(async ([node, states]) => {
        const topics = new Map<string, ListOffsetsRequest['topics'][number]>();
        for (const s of states) {
          const t = topics.get(s.tp.topic) ?? { name: s.tp.topic, partitions: [] };
          t.partitions.push({ partition: s.tp.partition, timestamp: targets.get(s) as number, currentLeaderEpoch: -1 });
          topics.set(s.tp.topic, t);
        }
        try {
          const conn = this.cluster.connection(node);
          const res = await conn.unary(conn.client.listOffsets as UnaryMethod<ListOffsetsRequest, ListOffsetsResponse>, { isolationLevel: this.isolation(), topics: [...topics.values()] }, this.config['request.timeout.ms'], 'ListOffsets', this.cluster.closeSignal);
          for (const t of res.topics) {
            for (const p of t.partitions) {
              const s = this.partitions.get(tpKey(t.name, p.partition));
              if (s === undefined || s.position !== undefined || !resets.has(s) || s.reset !== resets.get(s)) continue;
              if (p.errorCode !== 0) {
                const err = StrandError.fromCode(p.errorCode);
                if (err.hasStaleMetadata) this.cluster.requestRefresh();
                if (!err.retriable) throw err;
                continue;
              }
              if (p.offset < 0) {
                // No record at or after the timestamp: continue from the end (Kafka's
                // offsetsForTimes gives null; KIP-1106's timestamp reset falls back to latest).
                // Any other -1 would become an OFFSET_OUT_OF_RANGE and a replay.
                if (s.reset?.kind === 'timestamp') s.reset = { kind: 'latest' };
                continue;
              }
              s.position = p.offset;
              s.reset = undefined;
            }
          }
        } catch (e: unknown) {
          const err = toStrandError(e, 'ListOffsets');
          if (!err.retriable) throw err;
          this.cluster.requestRefresh();
        }
      }),
    );
  }

  private isolation(): number {
    return this.config['isolation.level'] === 'read_committed' ? 1 : 0;
  }

  /**
   * Sends a fetch to each leader that has fetchable partitions and no fetch in flight (and is not
   * backing off after a failure). A partition is fetchable when it has a position, is not paused,
   * has no fetch in flight and at most one response buffered: while the application consumes a
   * response, the next one is fetched from where the buffered data ends.
   */
  private sendFetches(): void {
    if (this.closed) return;
    if (this.bufferedBytes >= this.config['fetch.buffer.max.bytes']) {
      // Paused partitions' buffered data waits for resume(); it must not stop the others.
      let active = this.bufferedBytes;
      for (const s of this.partitions.values()) if (s.paused && s.buffered !== undefined) active -= s.buffered.size;
      if (active >= this.config['fetch.buffer.max.bytes']) return;
    }
    const now = monotonicMs();
    const byNode = new Map<number, PartitionState[]>();
    let missingLeader = false;
    for (const s of this.partitions.values()) {
      if (s.paused || s.position === undefined || s.error !== undefined || s.fetchInFlight || (s.buffered !== undefined && s.buffered.queued.length > 0)) continue;
      if (s.retryAtMs > now) {
        this.wakeAt(s.retryAtMs);
        continue;
      }
      const leader = this.cluster.leaderOf(s.tp.topic, s.tp.partition);
      if (leader === undefined) {
        missingLeader = true;
        continue;
      }
      if (this.nodeFetchInFlight.has(leader)) continue;
      const backoff = this.nodeBackoff.get(leader);
      if (backoff !== undefined && now < backoff.untilMs) {
        this.wakeAt(backoff.untilMs);
        continue;
      }
      const l = byNode.get(leader) ?? [];
      l.push(s);
      byNode.set(leader, l);
    }
    if (missingLeader || this.cluster.needsRefresh) this.refreshSoon();
    for (const [node, states] of byNode) this.fetchFrom(node, states);
  }

  /**
   * Refreshes metadata, one refresh at a time and at most one per retry.backoff.ms, then fetches
   * and wakes poll(). While a partition has no leader (an election) or its leader keeps
   * answering NOT_LEADER_OR_FOLLOWER, every poll turn and every fetch would otherwise ask again
   * at once: metadata requests back to back for as long as the election lasts.
   */
  private refreshSoon(): void {
    if (this.refreshTimer !== undefined || this.closed) return;
    const wait = Math.max(0, this.lastRefreshStartMs + backoffMs(0, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'] }) - monotonicMs());
    this.refreshTimer = setTimeout(() => {
      this.lastRefreshStartMs = monotonicMs();
      this.track(
        this.cluster
          .refresh()
          .catch(() => undefined)
          .finally(() => {
            this.refreshTimer = undefined;
            this.sendFetches();
            this.wakeup.notify();
          }),
      );
    }, wait);
  }

  /** Calls sendFetches() (and wakes poll) at `atMs`, when a broker's backoff ends. */
  private wakeAt(atMs: number): void {
    if (this.backoffTimer !== undefined || this.closed) return;
    this.backoffTimer = setTimeout(
      () => {
        this.backoffTimer = undefined;
        this.sendFetches();
        this.wakeup.notify();
      },
      Math.max(0, atMs - monotonicMs()),
    );
    this.backoffTimer.unref();
  }

  private fetchFrom(node: number, states: PartitionState[]): void {
    const topics: FetchRequest['topics'] = [];
    const sent = new Map<PartitionState, { session: number; offset: number }>();
    // The broker fills the answer in request order and only the first partition with data may
    // exceed the budget (KIP-74): partitions go in fetch order (those that got data last go
    // last), so a partition with a deep backlog cannot starve the rest. A topic is repeated
    // rather than its partitions regrouped, which would undo that order.
    for (const s of [...states].sort((a, b) => a.fetchOrder - b.fetchOrder)) {
      let t = topics[topics.length - 1];
      if (t === undefined || t.name !== s.tp.topic) {
        t = { name: s.tp.topic, partitions: [] };
        topics.push(t);
      }
      const epoch = this.cluster.topics.get(s.tp.topic)?.partitions[s.tp.partition]?.leaderEpoch ?? -1;
      const b = s.buffered;
      const fetchOffset = b !== undefined ? b.endOffset : (s.position as number);
      t.partitions.push({ partition: s.tp.partition, fetchOffset, partitionMaxBytes: this.config['max.partition.fetch.bytes'], currentLeaderEpoch: epoch, lastFetchedEpoch: b !== undefined ? b.endEpoch : s.leaderEpoch });
      sent.set(s, { session: s.session, offset: fetchOffset });
      s.fetchInFlight = true;
    }
    const request: FetchRequest = { maxWaitMs: this.config['fetch.max.wait.ms'], minBytes: this.config['fetch.min.bytes'], maxBytes: this.config['fetch.max.bytes'], isolationLevel: this.isolation(), topics, replicaId: -1 };
    this.nodeFetchInFlight.add(node);
    let p: Promise<FetchResponse>;
    try {
      const conn = this.cluster.connection(node);
      let stream = this.streams.get(node);
      if (stream === undefined) {
        stream = new FetchStream(node);
        this.streams.set(node, stream);
      }
      p = stream.fetch(conn, request, this.config['fetch.max.wait.ms'] + this.config['request.timeout.ms'], this.cluster.closeSignal);
    } catch (e: unknown) {
      p = Promise.reject(e);
    }
    this.track(
      p
        .then(
          (res) => {
            this.nodeBackoff.delete(node);
            this.handleFetch(res, sent);
          },
          (e: unknown) => {
            if (this.closed) return;
            const err = toStrandError(e, 'Fetch');
            if (err.hasStaleMetadata || err.errorName === 'NETWORK_EXCEPTION' || err.errorName === 'REQUEST_TIMED_OUT') this.cluster.requestRefresh();
            // Back off before the next fetch from this broker (the stream reopens then).
            const b = this.nodeBackoff.get(node) ?? { failures: 0, untilMs: 0 };
            b.untilMs = monotonicMs() + backoffMs(b.failures, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'] });
            b.failures++;
            this.nodeBackoff.set(node, b);
          },
        )
        .finally(() => {
          this.nodeFetchInFlight.delete(node);
          for (const s of states) s.fetchInFlight = false;
          // Keep the pipeline full without waiting for the next poll().
          this.sendFetches();
          this.wakeup.notify();
        }),
    );
  }

  private handleFetch(res: FetchResponse, sent: Map<PartitionState, { session: number; offset: number }>): void {
    if (res.errorCode !== 0) {
      const err = StrandError.fromCode(res.errorCode);
      if (err.hasStaleMetadata) this.cluster.requestRefresh();
      return;
    }
    for (const t of res.topics) {
      for (const p of t.partitions) {
        const s = this.partitions.get(tpKey(t.name, p.partition));
        const req = s === undefined ? undefined : sent.get(s);
        // Discard answers for partitions no longer ours, seeked or reset meanwhile, or asked for
        // data they no longer want.
        if (s === undefined || req === undefined || s.session !== req.session || s.position === undefined) continue;
        if ((s.buffered !== undefined ? s.buffered.endOffset : s.position) !== req.offset) continue;
        s.highWatermark = p.highWatermark;
        if (p.errorCode !== 0 || p.records.length > 0) s.fetchOrder = ++this.fetchOrderSeq;
        if (p.errorCode !== 0) {
          const err = StrandError.fromCode(p.errorCode);
          if (err.errorName === 'OFFSET_OUT_OF_RANGE') {
            if (s.buffered !== undefined) {
              // A prefetch past data not consumed yet: start over from the position.
              this.dropBuffered(s);
              continue;
            }
            const policy = this.config['auto.offset.reset'];
            if (policy === 'none') {
              // Surfaced by the next poll(); the application decides where to seek.
              s.error = new StrandError('OFFSET_OUT_OF_RANGE', `offset ${s.position} of ${t.name}-${p.partition} is out of range (log ${p.logStartOffset}..${p.highWatermark}) and auto.offset.reset=none`);
              continue;
            }
            this.markReset(s, policy === 'earliest' ? { kind: 'earliest' } : { kind: 'latest' });
          } else {
            if (err.hasStaleMetadata) this.cluster.requestRefresh();
            // Back off this partition (retry.backoff.ms doubling, as Kafka's fetcher since
            // KAFKA-15415): a leader that answers at once would otherwise be asked again at once,
            // for as long as the metadata still names it.
            s.retryAtMs = monotonicMs() + backoffMs(s.fetchFailures++, { initialMs: this.config['retry.backoff.ms'], maxMs: this.config['retry.backoff.max.ms'] });
            // Not one a retry can cure: the application hears of it (the partition is still
            // fetched after the backoff, and raises again while the broker answers the same).
            if (!RETRIED_FETCH_ERRORS.has(err.errorName)) this.pendingError ??= new StrandError(err.errorName, `fetch of ${t.name}-${p.partition} at offset ${req.offset} failed: ${err.message}`);
          }
          continue;
        }
        s.fetchFailures = 0;
        s.retryAtMs = 0;
        const div = p.divergingEpoch;
        if (div !== null && div !== undefined && (div.endOffset < 0 || div.epoch < 0)) {
          // The leader knows no epoch at or before the one we last fetched (its history was
          // replaced): nothing to validate the position against. As Kafka: reset by policy.
          this.dropBuffered(s);
          const policy = this.config['auto.offset.reset'];
          if (policy === 'none') s.error = new StrandError('OFFSET_OUT_OF_RANGE', `cannot validate position ${s.position} of ${t.name}-${p.partition}: the leader has no history for epoch ${s.leaderEpoch}, and auto.offset.reset=none`);
          else this.markReset(s, policy === 'earliest' ? { kind: 'earliest' } : { kind: 'latest' });
          continue;
        }
        if (div !== null && div !== undefined && div.endOffset >= req.offset) {
          // An epoch older than ours runs past where we asked: the position is inside the
          // leader's history (Kafka completes the validation). Stop sending that epoch, or the
          // same answer would come back for ever.
          if (s.buffered !== undefined) s.buffered.endEpoch = -1;
          else s.leaderEpoch = -1;
          continue;
        }
        if (div !== null && div !== undefined && div.endOffset >= 0 && div.endOffset < req.offset) {
          // KIP-320: the leader's log for the epoch we last fetched ends before where we asked
          // (an unclean election truncated it). Prefetched data beyond it is thrown away; if
          // records already returned are gone too, continue where the logs agree, or fail when
          // auto.offset.reset=none, as the Java client's LogTruncationException does.
          this.dropBuffered(s);
          if (div.endOffset >= s.position) continue;
          if (this.config['auto.offset.reset'] === 'none') {
            s.error = new StrandError('OFFSET_OUT_OF_RANGE', `log truncation detected on ${t.name}-${p.partition}: epoch ${div.epoch} ends at ${div.endOffset}, before position ${s.position}`);
            continue;
          }
          s.position = div.endOffset;
          s.leaderEpoch = -1;
          continue;
        }
        if (p.records.length === 0) continue;
        // A view of the response's bytes, not a copy.
        const bytes = Buffer.isBuffer(p.records) ? p.records : Buffer.from(p.records.buffer, p.records.byteOffset, p.records.byteLength);
        const end = bufferEnd(bytes);
        if (end === undefined) continue;
        const b = s.buffered;
        if (b === undefined) s.buffered = { bytes, pos: 0, records: [], next: 0, batchLastOffset: -1, batchEpoch: -1, queued: [], size: bytes.length, endOffset: end.endOffset, endEpoch: end.endEpoch };
        else {
          b.queued.push(bytes);
          b.size += bytes.length;
          b.endOffset = end.endOffset;
          b.endEpoch = end.endEpoch;
        }
        this.bufferedBytes += bytes.length;
      }
    }
  }

  /** Takes up to `max` buffered records, round-robin over partitions so none starves. */
  private drainBuffered(max: number): ConsumerRecord[] {
    const out: ConsumerRecord[] = [];
    const states = [...this.partitions.values()];
    if (states.length === 0) return out;
    const start = this.rotate++ % states.length;
    for (let i = 0; i < states.length && out.length < max; i++) {
      const s = states[(start + i) % states.length] as PartitionState;
      if (s.paused || s.buffered === undefined || s.position === undefined) continue;
      this.takeFrom(s, out, max);
    }
    return out;
  }

  private takeFrom(s: PartitionState, out: ConsumerRecord[], max: number): void {
    const b = s.buffered as Buffered;
    const checkCrc = this.config['check.crcs'];
    let position = s.position as number;
    let epoch = s.leaderEpoch;
    while (out.length < max) {
      if (b.next < b.records.length) {
        const r = b.records[b.next++] as ConsumerRecord;
        if (r.offset < position) continue;
        out.push(r);
        position = r.offset + 1;
        epoch = r.leaderEpoch;
        continue;
      }
      // The current batch is used up: its last offset is behind us (compaction may leave gaps).
      if (position <= b.batchLastOffset) {
        position = b.batchLastOffset + 1;
        epoch = b.batchEpoch;
      }
      const size = b.pos + RECORD_BATCH_OVERHEAD <= b.bytes.length ? b.bytes.readInt32BE(b.pos + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD : Infinity;
      if (b.pos + size > b.bytes.length) {
        // This response is used up (a partial batch at its end is fetched again in full).
        const nextBytes = b.queued.shift();
        if (nextBytes === undefined) break;
        this.bufferedBytes -= b.bytes.length;
        b.size -= b.bytes.length;
        b.bytes = nextBytes;
        b.pos = 0;
        continue;
      }
      const header = readBatchHeader(b.bytes, b.pos);
      const batchPos = b.pos;
      const previousLast = b.batchLastOffset;
      const previousEpoch = b.batchEpoch;
      b.pos += size;
      b.records = [];
      b.next = 0;
      b.batchLastOffset = header.baseOffset + header.lastOffsetDelta;
      b.batchEpoch = header.partitionLeaderEpoch;
      if (b.batchLastOffset < position || isControlBatch(header.attributes)) continue;
      try {
        if (checkCrc) validateBatch(b.bytes, batchPos);
        decodeBatchInto(b.bytes, batchPos, header, s.tp.topic, s.tp.partition, b.records);
      } catch (e: unknown) {
        // Stay in front of the bad batch: every poll raises it until the application seeks past
        // it (Kafka); the records taken before it are returned first, not lost.
        b.pos = batchPos;
        b.records = [];
        b.batchLastOffset = previousLast;
        b.batchEpoch = previousEpoch;
        s.position = position;
        s.leaderEpoch = epoch;
        const err = toStrandError(e, 'Fetch');
        if (out.length === 0) throw err;
        this.pendingError ??= err;
        return;
      }
    }
    s.position = position;
    s.leaderEpoch = epoch;
    if (b.next >= b.records.length && b.queued.length === 0) {
      if (position <= b.batchLastOffset) {
        position = b.batchLastOffset + 1;
        epoch = b.batchEpoch;
      }
      if (b.pos + RECORD_BATCH_OVERHEAD > b.bytes.length || b.pos + b.bytes.readInt32BE(b.pos + BATCH_LENGTH_OFFSET) + LOG_OVERHEAD > b.bytes.length) {
        // Everything buffered is consumed: the position is where the buffered data ended, so a
        // prefetch in flight (sent from there) is still wanted.
        if (position < b.endOffset) {
          position = b.endOffset;
          epoch = b.endEpoch;
        }
        s.position = position;
        s.leaderEpoch = epoch;
        this.releaseBuffered(s);
      }
    }
  }

  // ---- commits -----------------------------------------------------------------------------

  private maybeAutoCommit(): void {
    if (!this.config['enable.auto.commit'] || this.group === undefined || this.autoCommitInFlight) return;
    const now = monotonicMs();
    if (now < this.nextAutoCommitMs) return;
    this.nextAutoCommitMs = now + this.config['auto.commit.interval.ms'];
    this.autoCommitInFlight = true;
    this.track(
      this.commit()
        .catch(() => undefined) // the next interval, a revoke or close() commits again
        .finally(() => {
          this.autoCommitInFlight = false;
        }),
    );
  }

  /**
   * Commits offsets: the given ones, or every assigned partition's position. Under a group
   * subscription the commit is fenced by this member's generation, and given offsets must not be
   * of a partition a rebalance took from this member (and did not give back): a rebalance may
   * complete between two poll() calls here (the join goes on in the background), so the
   * generation alone would let offsets of records polled before it land under the new
   * generation, over the new owner's progress. Such a commit fails with REBALANCE_IN_PROGRESS
   * while this member rejoins and ILLEGAL_GENERATION after (Kafka's RebalanceInProgressException
   * and CommitFailedException for a commit made across a rebalance); nothing is committed.
   * Offsets of partitions this member never owned are committed as Kafka does.
   */
  async commit(offsets?: readonly OffsetToCommit[]): Promise<void> {
    if (this.group === undefined) throw new StrandError('INVALID_GROUP_ID', 'commit() needs group.id');
    if (offsets !== undefined && this.subscription !== undefined && this.revoked.size > 0) {
      const foreign = offsets.filter((o) => this.revoked.has(tpKey(o.topic, o.partition))).map((o) => `${o.topic}-${o.partition}`);
      if (foreign.length > 0) {
        if (this.joining !== undefined || !this.group.isStable) {
          throw new StrandError('REBALANCE_IN_PROGRESS', `commit failed: ${foreign.join(', ')} was revoked from this member, which is rejoining group ${this.group.groupId}; poll() completes the rebalance`);
        }
        throw new StrandError('ILLEGAL_GENERATION', `commit failed: a rebalance of group ${this.group.groupId} took ${foreign.join(', ')} from this member (see onPartitionsRevoked); another member may own it now`);
      }
    }
    // Inside a `for await` loop, only what the loop received counts as consumed.
    const unyielded = this.unyielded();
    const list: OffsetToCommit[] =
      offsets !== undefined
        ? [...offsets]
        : [...this.partitions.values()]
            .filter((s) => s.position !== undefined)
            .map((s) => {
              const u = unyielded.get(s);
              return { topic: s.tp.topic, partition: s.tp.partition, offset: u?.offset ?? (s.position as number), leaderEpoch: u?.leaderEpoch ?? s.leaderEpoch };
            });
    await this.group.commit(list, this.subscription !== undefined);
  }

  /** Committed offsets of `partitions` for this consumer's group. */
  async committed(partitions: readonly TopicPartition[]): Promise<Map<string, CommittedOffset>> {
    if (this.group === undefined) throw new StrandError('INVALID_GROUP_ID', 'committed() needs group.id');
    return this.group.fetchCommitted(partitions);
  }

  /** Group generation and member id (for tests and diagnostics). */
  groupMetadata(): { generationId: number; memberId: string } | undefined {
    return this.group === undefined ? undefined : { generationId: this.group.generationId, memberId: this.group.memberId };
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  private track<T>(p: Promise<T>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private ensureOpen(): void {
    if (this.closed) throw new StrandError('NETWORK_EXCEPTION', 'consumer is closed');
  }

  /** Commits (auto commit), leaves the group, and releases connections and timers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.subscriptionVersion++;
    this.group?.cancelJoin();
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    // Closed from outside a `for await` loop that still holds records: they were not consumed.
    this.rewindIteration();
    if (this.group !== undefined) {
      if (this.leaving !== undefined) await this.leaving;
      // A member whose group is rebalancing still owns its partitions until it rejoins, and the
      // coordinator accepts commits of the current generation while it waits for the rejoins (as
      // Kafka's does; revoke() relies on it too): commit then, or another member re-reads what
      // this one processed. Only a lost membership must not commit.
      if (this.config['enable.auto.commit'] && (this.subscription === undefined || (this.group.generationId >= 0 && !this.group.memberLost))) await this.commit().catch(() => undefined);
      if (this.subscription !== undefined) {
        // As Kafka's onLeavePrepare: the listener is called only when there are partitions to
        // give up (not for a member that never joined or was assigned nothing).
        const owned = this.assignment();
        if (owned.length > 0 && this.group.memberLost) await this.listener.onPartitionsLost?.(owned);
        else if (owned.length > 0) await this.listener.onPartitionsRevoked?.(owned);
        await this.group.leave();
      }
      this.group.close();
    }
    this.closed = true;
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    if (this.backoffTimer !== undefined) clearTimeout(this.backoffTimer);
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    for (const stream of this.streams.values()) stream.close();
    this.wakeup.notify();
    this.cluster.close();
    await Promise.allSettled([...this.pending]);
  }
}
