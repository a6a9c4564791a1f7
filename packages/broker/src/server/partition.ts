/**
 * One hosted replica: its PartitionLog plus the pure replication core of its current role
 * (PartitionLeader or PartitionFollower) and its idempotent-producer state. This class is the
 * only owner of that state; gRPC handlers and the replica fetcher call into it and it drives the
 * cores: after every input it drains the leader's Ready (high watermark, AlterPartition to send,
 * completed produces) and wakes whoever waits on this partition (parked fetches).
 */
import {
  ErrorCode,
  LOG_OVERHEAD,
  StrandError,
  readBatchHeader,
  validateBatches,
  type ErrorName,
  type RawConfig,
  type ReplicaFetchPartitionResponse,
} from '@strand/protocol';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsyncDirAsync, writeFileAtomic, writeFileSyncedAsync, type PartitionLog, type ReadResult } from '@strand/storage';
import { partitionLogView } from '../log/partition-log-view';
import { PartitionFollower } from '../replication/partition-follower';
import { PartitionLeader, type Acks, type DeleteRecordsCompletion, type LeaderWaiters } from '../replication/partition-leader';
import { NO_PRODUCER_ID, ProducerStateManager, type ProducerStateSnapshot } from '../replication/producer-state';
import type { AlterPartitionRequest, AlterPartitionResponse, FollowerFetchDecision, FollowerFetchRequest, PartitionState, ReplicaLogView } from '../replication/types';

export interface PartitionKey {
  topic: string;
  topicId: string;
  partition: number;
}

export interface PartitionHost {
  readonly brokerId: number;
  nowMs(): number;
  /** Sends an AlterPartition to the controller; the answer comes back through onAlterPartitionResponse. */
  sendAlterPartition(p: Partition, req: AlterPartitionRequest): void;
  replicaLagTimeMaxMs: number;
  maxPendingProduces: number;
  /** A partition's log failed an fdatasync (PartitionLogOptions.onFailure): it refuses writes for good. */
  onLogFailure?(topicPartition: string, error: StrandError): void;
}

export interface ProduceResult {
  errorCode: number;
  errorMessage: string;
  /** Records appended by this produce (0 for a failed or duplicate one). */
  records?: number;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
}

/** One partition's DeleteRecords answer. */
export interface DeleteRecordsResult {
  /** null: deleted, and every live replica's log start has reached the offset. */
  error: ErrorName | null;
  message: string;
  lowWatermark: number;
}

type Waiter = () => void;

export class Partition {
  readonly view: ReplicaLogView;
  /** Idempotent-producer state; rebuilt from the log after a truncation removed batches. */
  producers: ProducerStateManager;
  private leaderCore: PartitionLeader | null = null;
  private followerCore: PartitionFollower | null = null;
  private state: PartitionState | null = null;
  private hw: number;
  private readonly produceWaiters = new Map<number, (error: ErrorName | null) => void>();
  private readonly deleteRecordsWaiters = new Map<number, (r: DeleteRecordsResult) => void>();
  private nextRequestId = 1;
  private readonly waiters = new Set<Waiter>();
  private unsubscribeDurable: () => void;
  private closed = false;
  /** Batches left the log since the last producer-state snapshot (log start moved, compaction). */
  private producerSnapshotDirty = false;
  /** Bumped by every synchronous snapshot write; a periodic write started before one is dropped. */
  private producerSnapshotGeneration = 0;
  /** The producer snapshot file's contents as this partition last read or wrote them (close skips an identical one). */
  private producerSnapshotOnDisk: string | undefined;
  /** Correlation ids of successive follower cores never overlap (see PartitionFollower). */
  private nextFollowerCorrelation = 1;

  constructor(
    readonly key: PartitionKey,
    readonly log: PartitionLog,
    private readonly host: PartitionHost,
    highWatermark: number,
  ) {
    this.view = partitionLogView(log);
    this.hw = Math.min(highWatermark, log.logEndOffset);
    const loaded = loadProducerState(log);
    this.producers = loaded.producers;
    this.producerSnapshotOnDisk = loaded.snapshotText;
    // A snapshot past the log end (a crash lost the tail it had counted) must not stay: once
    // the log grows past it again, under another history, it would be loaded.
    if (loaded.staleSnapshot) this.writeProducerSnapshot();
    this.unsubscribeDurable = log.onDurable(() => this.onLocalLogChanged());
  }

  get topicPartition(): string {
    return `${this.key.topic}-${this.key.partition}`;
  }

  get highWatermark(): number {
    return this.leaderCore?.highWatermark ?? this.followerCore?.highWatermark ?? this.hw;
  }

  get isLeader(): boolean {
    return this.leaderCore !== null;
  }

  /**
   * Whether ListOffsets may answer: a new leader's high watermark may still be below the start
   * of its epoch (it learned the old leader's lazily), and offsets answered from it could go
   * backwards. Kafka answers OFFSET_NOT_AVAILABLE (retriable) until it has caught up.
   */
  get offsetsAvailable(): boolean {
    const l = this.leaderCore;
    return l !== null && l.highWatermark >= l.leaderEpochStartOffset;
  }

  get leader(): PartitionLeader | null {
    return this.leaderCore;
  }

  get follower(): PartitionFollower | null {
    return this.followerCore;
  }

  get metadata(): PartitionState | null {
    return this.state;
  }

  get leaderEpoch(): number {
    return this.state?.leaderEpoch ?? -1;
  }

  // -------------------------------------------------------------------------------------------
  // role changes, from metadata

  /**
   * Applies the controller's view of this partition: becomes leader or follower on a new leader
   * epoch, or passes ISR/partition-epoch changes to the current leader core.
   */
  applyMetadata(state: PartitionState, topicConfig: RawConfig, ineligible: readonly number[], fenced: readonly number[]): void {
    const prev = this.state;
    // Leader epochs only grow: an older state is stale metadata, never a reason to step back.
    if (prev !== null && (state.leaderEpoch < prev.leaderEpoch || (state.leaderEpoch === prev.leaderEpoch && state.partitionEpoch < prev.partitionEpoch))) return;
    this.log.updateConfig(topicConfig);
    this.state = state;
    const me = this.host.brokerId;
    const minIsr = Number(topicConfig['min.insync.replicas'] ?? 1);
    const epochChanged = prev === null || prev.leaderEpoch !== state.leaderEpoch || prev.leader !== state.leader;
    if (state.leader === me) {
      if (epochChanged || this.leaderCore === null) {
        this.hw = this.highWatermark;
        // Still the leader under a new epoch (a reassignment): the waiting acks=all produces and
        // DeleteRecords carry over to the new epoch's core rather than fail.
        const carried = this.leaderCore !== null && !this.leaderCore.isResigned ? this.leaderCore.handOver() : null;
        this.stopRole();
        // The epoch starts at our log end from now on, recorded (and fsynced) before we answer
        // anything as leader (Kafka's makeLeader): OffsetForLeaderEpoch and the divergence check
        // of fetches then answer our epoch with the log end and an epoch we never wrote in with
        // where ours starts, never (-1, -1). If this throws (a failed log), we take no role and
        // the next metadata retries.
        try {
          this.log.assignLeaderEpoch(state.leaderEpoch);
        } catch (e: unknown) {
          if (carried !== null) this.failCarried(carried);
          throw e;
        }
        this.leaderCore = new PartitionLeader({
          localReplicaId: me,
          state,
          log: this.view,
          highWatermark: this.hw,
          nowMs: this.host.nowMs(),
          config: { replicaLagTimeMaxMs: this.host.replicaLagTimeMaxMs, minInsyncReplicas: minIsr, maxPendingProduces: this.host.maxPendingProduces },
        });
        if (carried !== null) this.leaderCore.adoptWaiters(carried);
      } else {
        this.leaderCore.setMinInsyncReplicas(minIsr);
        this.leaderCore.onPartitionState(state);
      }
      this.leaderCore.setIneligibleReplicas(ineligible);
      this.leaderCore.setFencedReplicas(fenced);
      this.drain();
    } else if (epochChanged || (this.followerCore === null && state.leader !== null && state.leader >= 0)) {
      this.hw = this.highWatermark;
      this.stopRole();
      if (state.leader !== null && state.leader >= 0) {
        const first = this.nextFollowerCorrelation;
        this.nextFollowerCorrelation += 1_000_000_000;
        this.followerCore = new PartitionFollower({ localReplicaId: me, leaderId: state.leader, leaderEpoch: state.leaderEpoch, log: this.view, highWatermark: this.hw, firstCorrelationId: first });
      }
    }
    this.wake();
  }

  /** Fails waits handed over by a leader core that no new core took (NOT_LEADER_OR_FOLLOWER). */
  private failCarried(carried: LeaderWaiters): void {
    for (const w of carried.produces) {
      const resolve = this.produceWaiters.get(w.requestId);
      this.produceWaiters.delete(w.requestId);
      resolve?.('NOT_LEADER_OR_FOLLOWER');
    }
    for (const d of carried.deletes) {
      const resolve = this.deleteRecordsWaiters.get(d.requestId);
      this.deleteRecordsWaiters.delete(d.requestId);
      resolve?.({ error: 'NOT_LEADER_OR_FOLLOWER', message: `${this.topicPartition}: leadership ended before every live replica's log start moved`, lowWatermark: -1 });
    }
  }

  /** Stops the current role: a leader fails its waiting produces (NOT_LEADER_OR_FOLLOWER). */
  private stopRole(): void {
    if (this.leaderCore) {
      this.hw = this.leaderCore.highWatermark;
      this.leaderCore.resign();
      this.drain();
      this.leaderCore = null;
    }
    if (this.followerCore) {
      this.hw = this.followerCore.highWatermark;
      this.followerCore = null;
    }
  }

  // -------------------------------------------------------------------------------------------
  // leader: produce

  /**
   * Appends a produce request's batches as leader. Resolves when the acks are satisfied (acks=0
   * and 1: once appended, and durable under flush.policy=fsync; all: once the high watermark
   * passes the batch), with a per-partition error otherwise. Never throws for expected failures.
   */
  async produce(records: Buffer, acks: Acks, timeoutMs: number): Promise<ProduceResult> {
    const fail = (name: ErrorName, message: string): ProduceResult => ({ errorCode: ErrorCode[name], errorMessage: message, baseOffset: -1, logAppendTimeMs: -1, logStartOffset: this.log.logStartOffset });
    const leader = this.leaderCore;
    if (leader === null || this.closed) return fail('NOT_LEADER_OR_FOLLOWER', `broker ${this.host.brokerId} is not the leader of ${this.topicPartition}`);
    const refusal = leader.checkProduce(acks);
    if (refusal !== null) return fail(refusal, refusal === 'NOT_ENOUGH_REPLICAS' ? `the ISR of ${this.topicPartition} (${leader.isr.join(',')}) is below min.insync.replicas` : `cannot accept the produce for ${this.topicPartition}`);
    let info;
    try {
      // Idempotence: a retried batch is answered with the offsets it got the first time. The
      // batches are validated (CRC included) once, here, and appended with these views.
      const validated = this.log.validateForAppend(records);
      const first = validated.views[0];
      // Any idempotent batch must be the request's only one for this partition (as the producer
      // sends them): one behind a plain batch would skip the sequence check below.
      if (validated.views.length > 1 && validated.views.some((v) => v.header.producerId !== NO_PRODUCER_ID)) return fail('INVALID_RECORD', 'an idempotent producer sends one batch per partition per request');
      if (first !== undefined && first.header.producerId !== NO_PRODUCER_ID) {
        const h = first.header;
        const check = this.producers.check(h.producerId, h.producerEpoch, h.baseSequence, h.lastOffsetDelta);
        if (check.kind === 'duplicate') {
          // The original may not be committed yet: acks=all waits for the HW to pass it, exactly as
          // the original would have (answering at once could acknowledge a write still losable),
          // and acks=1 under flush.policy=fsync for the original to be durable here.
          const dup: ProduceResult = { errorCode: 0, errorMessage: '', baseOffset: check.firstOffset, logAppendTimeMs: -1, logStartOffset: this.log.logStartOffset };
          if (acks === 0) return dup;
          if (acks === 1) {
            if (this.log.topicConfig['flush.policy'] === 'fsync') await this.log.waitForDurable(check.lastOffset);
            return dup;
          }
          const error = await this.awaitHighWatermark(leader, check.lastOffset, timeoutMs);
          return error === null ? dup : fail(error, `${this.topicPartition}: duplicate of offsets ${check.firstOffset}..${check.lastOffset} not yet committed: ${error}`);
        }
        if (check.kind === 'error') return fail(check.error, `producer ${h.producerId} epoch ${h.producerEpoch} sequence ${h.baseSequence}: ${check.error}`);
      }
      info = this.log.appendAsLeader(validated.records, leader.leaderEpoch, validated);
      if (first !== undefined && first.header.producerId !== NO_PRODUCER_ID) {
        const h = first.header;
        this.producers.onAppended({ producerId: h.producerId, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence, baseOffset: info.firstOffset, lastOffsetDelta: h.lastOffsetDelta });
      }
    } catch (e: unknown) {
      if (e instanceof StrandError) return fail(e.errorName, e.message);
      throw e;
    }
    leader.onLocalLogChanged();
    this.drain();
    this.wake();
    const ok: ProduceResult = { errorCode: 0, errorMessage: '', records: info.lastOffset - info.firstOffset + 1, baseOffset: info.firstOffset, logAppendTimeMs: info.logAppendTimeMs, logStartOffset: this.log.logStartOffset };
    if (acks === 0) return ok;
    if (acks === 1) {
      if (this.log.topicConfig['flush.policy'] === 'fsync') {
        try {
          await this.log.waitForDurable(info.lastOffset);
        } catch (e: unknown) {
          if (e instanceof StrandError) return fail(e.errorName, e.message);
          throw e;
        }
      }
      return ok;
    }
    const error = await this.awaitHighWatermark(leader, info.lastOffset, timeoutMs);
    if (error !== null) return { ...fail(error, `${this.topicPartition}: ${error} (offsets ${info.firstOffset}..${info.lastOffset} were written on the leader but not acknowledged)`), baseOffset: -1 };
    return ok;
  }

  /** Resolves when the high watermark passes `lastOffset` under `leader` (null), or with the reason it never will. */
  private awaitHighWatermark(leader: PartitionLeader, lastOffset: number, timeoutMs: number): Promise<ErrorName | null> {
    const requestId = this.nextRequestId++;
    return new Promise<ErrorName | null>((resolve) => {
      if (this.leaderCore !== leader) {
        resolve('NOT_LEADER_OR_FOLLOWER');
        return;
      }
      this.produceWaiters.set(requestId, resolve);
      leader.addProduceWaiter(requestId, lastOffset, this.host.nowMs() + timeoutMs);
      this.drain();
    });
  }

  /** The local log grew or became more durable. */
  private onLocalLogChanged(): void {
    if (this.leaderCore) {
      this.leaderCore.onLocalLogChanged();
      this.drain();
    }
    this.wake();
  }

  /** Periodic work: ISR shrink, produce timeouts, AlterPartition retries. */
  tick(): void {
    if (this.leaderCore) {
      this.leaderCore.tick(this.host.nowMs());
      this.drain();
    }
  }

  /** Hands the leader core's outputs to their consumers. */
  private drain(): void {
    const core = this.leaderCore;
    if (core === null) return;
    const ready = core.takeReady();
    if (ready.highWatermark !== null) {
      this.hw = ready.highWatermark;
      this.wake();
    }
    if (ready.alterPartition !== null) this.host.sendAlterPartition(this, ready.alterPartition);
    for (const c of ready.completedProduces) {
      const w = this.produceWaiters.get(c.requestId);
      if (w) {
        this.produceWaiters.delete(c.requestId);
        w(c.error);
      }
    }
    for (const c of ready.completedDeleteRecords) {
      const w = this.deleteRecordsWaiters.get(c.requestId);
      if (w) {
        this.deleteRecordsWaiters.delete(c.requestId);
        w(this.deleteRecordsResult(c));
      }
    }
  }

  onAlterPartitionResponse(req: AlterPartitionRequest, resp: AlterPartitionResponse): void {
    if (this.leaderCore === null || this.leaderCore.leaderEpoch !== req.leaderEpoch) return;
    this.leaderCore.onAlterPartitionResponse(req, resp);
    this.drain();
  }

  // -------------------------------------------------------------------------------------------
  // leader: follower fetches

  /** Answers one partition of a follower's fetch (no waiting: the caller long-polls). */
  /** The host clock (ms) this partition's replication decisions use. */
  nowMs(): number {
    return this.host.nowMs();
  }

  /**
   * Answers a follower's fetch. `fetchTimeMs` is when the fetch arrived (default: now): a fetch
   * the leader holds and re-examines later still counts the follower as caught up only as of its
   * arrival, so a follower that died while its fetch was held leaves the ISR on time. With
   * `maxBytes` 0 (the response is full) the fetch is processed but answered without records.
   */
  answerFollowerFetch(req: FollowerFetchRequest, maxBytes: number, fetchTimeMs?: number): ReplicaFetchPartitionResponse {
    const base: ReplicaFetchPartitionResponse = { partition: this.key.partition, errorCode: 0, highWatermark: -1, logStartOffset: this.log.logStartOffset, leaderEpoch: this.leaderEpoch, divergingEpoch: null, records: EMPTY };
    const leader = this.leaderCore;
    if (leader === null) return { ...base, errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER };
    // A failed log is offline (Kafka: its log directory is): the fetch is refused before it
    // counts, as Kafka's getPartitionOrException refuses an offline partition.
    if (!this.log.isOpen) return { ...base, errorCode: ErrorCode.KAFKA_STORAGE_ERROR };
    const decision = leader.handleFollowerFetch(req, fetchTimeMs ?? this.host.nowMs());
    this.drain();
    switch (decision.kind) {
      case 'error':
        return { ...base, errorCode: ErrorCode[decision.error], leaderEpoch: decision.leaderEpoch, logStartOffset: decision.logStartOffset, ...(decision.logEndOffset === undefined ? {} : { logEndOffset: decision.logEndOffset }) };
      case 'diverging':
        return { ...base, highWatermark: decision.highWatermark, logStartOffset: decision.logStartOffset, divergingEpoch: { epoch: decision.divergingEpoch.epoch, endOffset: decision.divergingEpoch.endOffset } };
      case 'read': {
        if (maxBytes <= 0) return { ...base, highWatermark: decision.highWatermark, logStartOffset: decision.logStartOffset };
        let res: ReadResult;
        try {
          res = this.log.read(decision.fetchOffset, maxBytes);
        } catch (e: unknown) {
          // Corrupt data or a file system error (EIO): this partition answers the error and the
          // rest of the fetch is answered (the follower backs off and asks again).
          const errorCode = readErrorCode(e);
          if (errorCode === null) throw e;
          return { ...base, errorCode, highWatermark: decision.highWatermark };
        }
        return { ...base, highWatermark: decision.highWatermark, logStartOffset: decision.logStartOffset, records: res.records };
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // follower: applying the leader's answers

  /**
   * Applies the leader's answer to this follower's fetch `correlationId`. Returns false if the
   * follower must wait for metadata (fenced / not leader).
   */
  applyFetchResponse(correlationId: number, fetchOffset: number, r: ReplicaFetchPartitionResponse): void {
    const follower = this.followerCore;
    if (follower === null) return;
    const now = this.host.nowMs();
    let decision: FollowerFetchDecision;
    if (r.errorCode !== 0) {
      const name = errorNameOf(r.errorCode);
      if (name === 'FENCED_LEADER_EPOCH' || name === 'UNKNOWN_LEADER_EPOCH' || name === 'NOT_LEADER_OR_FOLLOWER' || name === 'OFFSET_OUT_OF_RANGE') {
        decision = { kind: 'error', error: name, leaderEpoch: r.leaderEpoch, logStartOffset: r.logStartOffset, ...(r.logEndOffset === undefined ? {} : { logEndOffset: r.logEndOffset }) };
      } else {
        // A storage error on the leader (a corrupt batch) or another refusal: ask again after
        // the backoff (replica.fetch.backoff.ms), not at once, or leader and follower spin.
        follower.onApplyFailed(correlationId, now);
        return;
      }
    } else if (r.divergingEpoch !== null) {
      decision = { kind: 'diverging', divergingEpoch: r.divergingEpoch, highWatermark: r.highWatermark, logStartOffset: r.logStartOffset };
    } else {
      decision = { kind: 'read', fetchOffset, highWatermark: r.highWatermark, logStartOffset: r.logStartOffset };
    }
    const action = follower.onFetchResponse(correlationId, decision, now);
    switch (action.kind) {
      case 'append':
        if (r.records.length > 0) {
          const bytes = Buffer.from(r.records.buffer, r.records.byteOffset, r.records.byteLength);
          // An empty log that starts inside the leader's first batch (DeleteRecords to an offset
          // within a batch, then a fresh or fully truncated follower): the leader sends the whole
          // batch, so start the log at the batch's base offset; the leader's log start, adopted
          // below, hides the records before it again (Kafka's UnexpectedAppendOffsetException case).
          const base = readBatchHeader(bytes, 0).baseOffset;
          if (this.log.logEndOffset === this.log.logStartOffset && base < this.log.logEndOffset) this.log.truncateFullyAndStartAt(base);
          this.log.appendAsFollower(bytes);
          // Followers track producer state too, so a new leader deduplicates retries (scenario 11).
          for (let pos = 0; pos < bytes.length; ) {
            const h = readBatchHeader(bytes, pos);
            if (h.producerId !== NO_PRODUCER_ID) this.producers.load({ producerId: h.producerId, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence, baseOffset: h.baseOffset, lastOffsetDelta: h.lastOffsetDelta });
            pos += h.batchLength + LOG_OVERHEAD;
          }
        }
        follower.onAppended(r.highWatermark);
        // The leader's log start (moved by DeleteRecords or its retention) moves ours, as Kafka's
        // follower does, so deleted records do not come back when this replica becomes leader.
        // Offsets below the leader's log start are committed, so they are never truncated away.
        if (r.logStartOffset > this.log.logStartOffset) {
          this.log.deleteRecordsBefore(Math.min(r.logStartOffset, this.log.logEndOffset));
          this.producerSnapshotDirty = true;
        }
        break;
      case 'truncate': {
        const endBefore = this.log.logEndOffset;
        this.log.truncateTo(action.offset);
        follower.onTruncated();
        // At or past the log end no batch went (a former leader that wrote nothing in its epoch
        // drops that epoch): the producer state stands, and rebuilding it would read the whole log.
        if (this.log.logEndOffset === endBefore) break;
        // The log's own batches, plus the producers known only from batches already removed
        // (below the log start) that end before the cut; then a fresh snapshot, so none that
        // describes the cut-off history is left on disk.
        this.producers = ProducerStateManager.afterTruncation(this.producers, replayProducerState(this.log, new ProducerStateManager(), this.log.logStartOffset), action.offset);
        this.writeProducerSnapshot();
        break;
      }
      case 'truncate-fully':
        this.log.truncateFullyAndStartAt(action.offset);
        follower.onTruncated();
        this.producers = new ProducerStateManager();
        this.writeProducerSnapshot();
        break;
      default:
        break;
    }
    this.hw = follower.highWatermark;
    this.wake();
  }

  // -------------------------------------------------------------------------------------------
  // waiting (long-poll fetches)

  /**
   * DeleteRecords as leader (Kafka's deleteRecordsOnLeader and DelayedDeleteRecords): moves the
   * log start to `offset` (at most the high watermark, checked by the caller), then resolves once
   * the low watermark — the smallest log start over this replica and every follower on a live
   * broker — reaches it, answering that low watermark. Answering on our own log start alone let
   * a failover within a fetch round trip elect a follower that still held the deleted records.
   * Fails with REQUEST_TIMED_OUT after `timeoutMs` (with the low watermark as of the request),
   * NOT_LEADER_OR_FOLLOWER when leadership ends, UNKNOWN_TOPIC_OR_PARTITION when the replica is
   * deleted; the log start stays moved in every case. Never throws for expected failures.
   */
  deleteRecords(offset: number, timeoutMs: number): Promise<DeleteRecordsResult> {
    const leader = this.leaderCore;
    if (leader === null || this.closed) return Promise.resolve({ error: 'NOT_LEADER_OR_FOLLOWER', message: `broker ${this.host.brokerId} is not the leader of ${this.topicPartition}`, lowWatermark: -1 });
    // Kafka refuses DeleteRecords on a topic without the delete cleanup policy (UnifiedLog's
    // maybeIncrementLogStartOffset): a compacted topic is a table, its oldest keys' only copy.
    if (!this.log.topicConfig['cleanup.policy'].includes('delete')) return Promise.resolve({ error: 'POLICY_VIOLATION', message: `records of ${this.topicPartition} cannot be deleted: its cleanup.policy is compact (DeleteRecords needs delete)`, lowWatermark: this.log.logStartOffset });
    const refusal = leader.checkDeleteRecords();
    if (refusal !== null) return Promise.resolve({ error: refusal, message: `too many DeleteRecords wait on ${this.topicPartition}`, lowWatermark: -1 });
    try {
      this.deleteRecordsBefore(offset);
    } catch (e: unknown) {
      if (e instanceof StrandError) return Promise.resolve({ error: e.errorName, message: e.message, lowWatermark: this.log.logStartOffset });
      throw e;
    }
    const requestId = this.nextRequestId++;
    return new Promise<DeleteRecordsResult>((resolve) => {
      this.deleteRecordsWaiters.set(requestId, resolve);
      leader.addDeleteRecordsWaiter(requestId, offset, this.host.nowMs() + timeoutMs);
      this.drain();
    });
  }

  private deleteRecordsResult(c: DeleteRecordsCompletion): DeleteRecordsResult {
    switch (c.error) {
      case null:
        return { error: null, message: '', lowWatermark: c.lowWatermark };
      case 'REQUEST_TIMED_OUT':
        return { error: c.error, message: `${this.topicPartition}: the log start moved here, but not on every live replica within the timeout (low watermark ${c.lowWatermark})`, lowWatermark: c.lowWatermark };
      default:
        return { error: c.error, message: `${this.topicPartition}: leadership ended before every live replica's log start moved`, lowWatermark: c.lowWatermark };
    }
  }

  /**
   * Moves the log start to `offset` (at most the high watermark, checked by the caller). Waiting
   * fetches wake, so followers learn the new log start at once.
   */
  deleteRecordsBefore(offset: number): void {
    const before = this.log.logStartOffset;
    this.log.deleteRecordsBefore(offset);
    if (this.log.logStartOffset !== before) this.onLogStartMoved();
  }

  /** Retention below the high watermark; waiting fetches wake if the log start moved. */
  applyRetention(): void {
    const before = this.log.logStartOffset;
    this.log.applyRetention(this.highWatermark);
    if (this.log.logStartOffset !== before) this.onLogStartMoved();
  }

  /** After a compaction pass removed batches: the producers they named stay known. */
  onCompacted(): void {
    this.producerSnapshotDirty = true;
  }

  private onLogStartMoved(): void {
    // Batches below the log start are gone from the log, not from the producer state: the next
    // periodic snapshot keeps their producers for a restart (Kafka keeps producer-state
    // snapshots too).
    this.producerSnapshotDirty = true;
    this.wake();
  }

  /**
   * Writes the producer state as of the log end, atomically and synced, on the event loop:
   * after truncations (rare; no snapshot of a cut-off history may survive) and at close. Best
   * effort: a failure loses only the producers of removed batches at the next restart.
   */
  private writeProducerSnapshot(): void {
    this.producerSnapshotGeneration++;
    this.producerSnapshotDirty = false;
    try {
      const text = JSON.stringify(this.producers.snapshot(this.log.logEndOffset));
      writeFileAtomic(path.join(this.log.dir, PRODUCER_SNAPSHOT_FILE), text);
      this.producerSnapshotOnDisk = text;
    } catch {
      this.producerSnapshotDirty = true;
    }
  }

  /**
   * The periodic snapshot (with the high watermark checkpoint) when batches left the log since
   * the last one: written and synced off the event loop, then renamed into place unless a
   * truncation or close wrote a newer one meanwhile (the check and the rename run in one turn).
   */
  async writeProducerSnapshotIfDirty(): Promise<void> {
    if (!this.producerSnapshotDirty || this.closed) return;
    this.producerSnapshotDirty = false;
    const generation = this.producerSnapshotGeneration;
    const file = path.join(this.log.dir, PRODUCER_SNAPSHOT_FILE);
    const tmp = `${file}.periodic`;
    const text = JSON.stringify(this.producers.snapshot(this.log.logEndOffset));
    try {
      await writeFileSyncedAsync(tmp, text);
      if (generation !== this.producerSnapshotGeneration || this.closed) {
        await fs.promises.rm(tmp, { force: true });
        return;
      }
      fs.renameSync(tmp, file);
      this.producerSnapshotOnDisk = text;
      await fsyncDirAsync(this.log.dir);
    } catch {
      this.producerSnapshotDirty = true;
    }
  }

  /** Calls `w` once, on the next change (append, HW move, log start move, role change) or never if removed. */
  onNextChange(w: Waiter): () => void {
    this.waiters.add(w);
    return () => this.waiters.delete(w);
  }

  private wake(): void {
    if (this.waiters.size === 0) return;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /**
   * Closes the partition: pending produces and DeleteRecords fail, waiters wake. Its files stay, with a fresh
   * producer-state snapshot and the log closed cleanly, unless `deleting`: the caller removes the
   * directory, so the log is dropped without a flush (abandon: Kafka closes a log it deletes
   * without flushing it too); if the removal fails, the next open of the directory recovers it.
   */
  async close(deleting = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A deleted replica answers its waiting DeleteRecords as Kafka's does for a partition no
    // longer hosted; otherwise (shutdown) they fail with the resignation below.
    if (deleting) {
      for (const [, w] of this.deleteRecordsWaiters) w({ error: 'UNKNOWN_TOPIC_OR_PARTITION', message: `${this.topicPartition} was deleted from this broker`, lowWatermark: -1 });
      this.deleteRecordsWaiters.clear();
    }
    this.stopRole();
    for (const [, w] of this.produceWaiters) w('NOT_LEADER_OR_FOLLOWER');
    this.produceWaiters.clear();
    for (const [, w] of this.deleteRecordsWaiters) w({ error: 'NOT_LEADER_OR_FOLLOWER', message: `${this.topicPartition} was closed`, lowWatermark: -1 });
    this.deleteRecordsWaiters.clear();
    this.unsubscribeDurable();
    this.wake();
    if (deleting) {
      this.log.abandon();
      return;
    }
    await this.writeProducerSnapshotAtClose();
    await this.log.close();
  }

  /**
   * The producer snapshot at close, off the event loop: the temp file written and fdatasynced,
   * then renamed into place; the rename is made durable by the log's close, whose directory
   * fsync starts after it (a snapshot lost to a crash only means replaying more of the log at
   * the next start). Skipped when the snapshot on disk already says the same. Best effort, as
   * writeProducerSnapshot.
   */
  private async writeProducerSnapshotAtClose(): Promise<void> {
    this.producerSnapshotGeneration++;
    this.producerSnapshotDirty = false;
    const text = JSON.stringify(this.producers.snapshot(this.log.logEndOffset));
    if (text === this.producerSnapshotOnDisk) return;
    const file = path.join(this.log.dir, PRODUCER_SNAPSHOT_FILE);
    try {
      await writeFileSyncedAsync(`${file}.tmp`, text);
      await fs.promises.rename(`${file}.tmp`, file);
      this.producerSnapshotOnDisk = text;
    } catch {
      this.producerSnapshotDirty = true;
    }
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * The Kafka error a partition answers for a failure reading its log: a StrandError's own code
 * (KAFKA_STORAGE_ERROR for corrupt data or a failed log), KAFKA_STORAGE_ERROR for a system error
 * of the file system (EIO, EBADF... as Kafka maps an IOException); null for anything else (a bug).
 */
export function readErrorCode(e: unknown): number | null {
  if (e instanceof StrandError) return e.code;
  if (e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string') return ErrorCode.KAFKA_STORAGE_ERROR;
  return null;
}

function errorNameOf(code: number): ErrorName {
  return StrandError.fromCode(code).errorName;
}

/** The partition's producer-state snapshot file (JSON, ProducerStateSnapshot). */
export const PRODUCER_SNAPSHOT_FILE = 'producer-state-snapshot';

/**
 * The idempotent-producer state of the log: from its snapshot when that is at or below the log
 * end (a restart after a crash that cut the log below it, or a truncation, rebuilds from the
 * log instead), then the batch headers after it, in offset order.
 */
function loadProducerState(log: PartitionLog): { producers: ProducerStateManager; staleSnapshot: boolean; snapshotText: string | undefined } {
  let snap: ProducerStateSnapshot | undefined;
  let snapshotText: string | undefined;
  try {
    snapshotText = fs.readFileSync(path.join(log.dir, PRODUCER_SNAPSHOT_FILE), 'utf8');
    snap = JSON.parse(snapshotText) as ProducerStateSnapshot;
  } catch {
    snap = undefined; // none yet, or unreadable: the log has it all
  }
  if (snap !== undefined && Number.isSafeInteger(snap.offset) && snap.offset <= log.logEndOffset) {
    try {
      return { producers: replayProducerState(log, ProducerStateManager.fromSnapshot(snap), Math.max(snap.offset, log.logStartOffset)), staleSnapshot: false, snapshotText };
    } catch {
      // A malformed snapshot: rebuild from the log below.
    }
  }
  return { producers: replayProducerState(log, new ProducerStateManager(), log.logStartOffset), staleSnapshot: snap !== undefined, snapshotText };
}

/** Feeds `producers` the batch headers of the log from `from` (one pass over that part). */
function replayProducerState(log: PartitionLog, producers: ProducerStateManager, from: number): ProducerStateManager {
  let offset = from;
  for (let guard = 0; guard < 10_000_000 && offset < log.logEndOffset; guard++) {
    const res = log.read(offset, 4 * 1024 * 1024);
    if (res.batchCount === 0) break;
    for (const v of validateBatches(res.records)) {
      const h = v.header;
      if (h.producerId !== NO_PRODUCER_ID) producers.load({ producerId: h.producerId, producerEpoch: h.producerEpoch, baseSequence: h.baseSequence, baseOffset: h.baseOffset, lastOffsetDelta: h.lastOffsetDelta });
    }
    offset = res.nextOffset;
  }
  return producers;
}
