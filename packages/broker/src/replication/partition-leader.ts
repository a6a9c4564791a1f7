// The leader side of one partition's replication, as a pure state machine (etcd-raft style):
// inputs are follower fetches, local log progress, AlterPartition answers, metadata and the time
// (`nowMs`, always an argument); outputs are collected and handed out by `takeReady()` — a new
// high watermark, an AlterPartition proposal, produce requests that completed. The driver does the
// I/O: reads bytes for fetches, sends the proposal to the controller, answers producers.
//
// Invariants (asserted where a violation is a bug):
// - committedIsr and every proposed ISR contain the leader;
// - maximalIsr = committedIsr ∪ pending.newIsr (KIP-497): while an expansion is in flight the new
//   member already counts; while a shrink is in flight the leaving member still counts. So the
//   high watermark is only ever computed over a superset of any ISR the controller may hold;
// - highWatermark = max(previous, min over maximalIsr of each member's countable (durable) end
//   offset that matches this log), capped by the leader's log end; it never decreases while this
//   object lives (one leadership term);
// - a follower's offsets are only taken from a fetch whose last fetched epoch matched this log, so
//   min(fetchOffset, countableEndOffset) is a prefix of this log that is durable on the follower;
// - at most one AlterPartition is in flight, and it leaves the maximal ISR only when the
//   controller's answer or metadata shows what was committed (never on an ambiguous error);
// - at most `maxPendingProduces` produce waiters, and as many DeleteRecords waiters;
// - a DeleteRecords waiter completes only once the low watermark (the smallest log start offset
//   over this replica and every follower on a live broker) reaches its offset: no replica that
//   could be elected still holds the deleted records (Kafka's DelayedDeleteRecords).

import type { ErrorName } from '@strand/protocol';
import { replicationConfig, type ReplicationConfig } from './config';
import {
  canonicalIsr,
  invariant,
  sameIds,
  type AlterPartitionRequest,
  type AlterPartitionResponse,
  type ConsumerFetchDecision,
  type ConsumerFetchRequest,
  type FollowerFetchDecision,
  type FollowerFetchRequest,
  type PartitionState,
  type ReplicaId,
  type ReplicaLogView,
} from './types';

/** Kafka's `acks`: 0 (fire and forget), 1 (leader only), -1 (all in-sync replicas). */
export type Acks = 0 | 1 | -1;

export interface PartitionLeaderInit {
  readonly localReplicaId: ReplicaId;
  /** The partition's metadata at the moment this broker became leader (leader must be us). */
  readonly state: PartitionState;
  /** The local log (read-only here). */
  readonly log: ReplicaLogView;
  /** The high watermark this replica knew (as follower, or from its checkpoint); clamped to the log. */
  readonly highWatermark: number;
  readonly nowMs: number;
  readonly config?: Partial<ReplicationConfig>;
}

/** What the leader knows of one follower. */
export interface FollowerProgress {
  readonly replicaId: ReplicaId;
  /** Last fetch offset accepted (the follower's log end offset), -1 until it fetches in this term. */
  readonly logEndOffset: number;
  /** min(fetchOffset, countableEndOffset) of the last accepted fetch: durable there AND equal to our log. -1 until known. */
  readonly matchedDurableOffset: number;
  /** Last time the follower was caught up with our log end (Kafka's lastCaughtUpTimeMs). */
  readonly lastCaughtUpTimeMs: number;
  /** The follower's log start offset from its last accepted fetch, -1 until it fetches in this term. */
  readonly logStartOffset: number;
}

export interface ProduceCompletion {
  readonly requestId: number;
  /** null: acknowledged (HW passed the batch with enough in-sync replicas). */
  readonly error: null | Extract<ErrorName, 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' | 'REQUEST_TIMED_OUT' | 'NOT_LEADER_OR_FOLLOWER'>;
}

export interface DeleteRecordsCompletion {
  readonly requestId: number;
  /** null: every live replica's log start reached the offset. */
  readonly error: null | Extract<ErrorName, 'REQUEST_TIMED_OUT' | 'NOT_LEADER_OR_FOLLOWER'>;
  /**
   * What the answer carries (Kafka's): the low watermark at completion; on REQUEST_TIMED_OUT the
   * one at the request; -1 on NOT_LEADER_OR_FOLLOWER.
   */
  readonly lowWatermark: number;
}

/** The outputs accumulated since the last `takeReady()`. */
export interface LeaderReady {
  /** The new high watermark if it moved, else null. */
  readonly highWatermark: number | null;
  /** An AlterPartition to send to the controller (new or a retry), else null. */
  readonly alterPartition: AlterPartitionRequest | null;
  readonly completedProduces: readonly ProduceCompletion[];
  readonly completedDeleteRecords: readonly DeleteRecordsCompletion[];
}

interface MutableProgress {
  replicaId: ReplicaId;
  logEndOffset: number;
  matchedDurableOffset: number;
  lastCaughtUpTimeMs: number;
  lastFetchTimeMs: number;
  lastFetchLeaderLogEndOffset: number;
  /** The follower broker's epoch in its last accepted fetch (KIP-903), -1 if not known. */
  brokerEpoch: number;
  logStartOffset: number;
}

interface Waiter {
  readonly requestId: number;
  readonly lastOffset: number;
  readonly deadlineMs: number;
}

/** The waits a core hands to the next epoch's (handOver, adoptWaiters); opaque to the driver. */
export interface LeaderWaiters {
  readonly produces: readonly Waiter[];
  readonly deletes: readonly DeleteWaiter[];
}

interface DeleteWaiter {
  readonly requestId: number;
  /** The offset the log start was moved to: complete once the low watermark reaches it. */
  readonly offset: number;
  readonly deadlineMs: number;
  /** Answered on timeout, as Kafka's DelayedDeleteRecords does. */
  readonly lowWatermarkAtRequest: number;
}

export class PartitionLeader {
  readonly localReplicaId: ReplicaId;
  readonly leaderEpoch: number;
  private _config: ReplicationConfig;
  private readonly log: ReplicaLogView;
  private readonly replicas: readonly ReplicaId[];
  private _partitionEpoch: number;
  private committed: ReplicaId[];
  /**
   * The proposal in flight. `awaitingMetadata`: the controller answered with an error that does
   * not tell whether an earlier copy of it was applied (INVALID_UPDATE_VERSION after a retry,
   * FENCED_LEADER_EPOCH...): it keeps counting in the maximal ISR, is not re-sent, and is settled
   * by metadata (a new partition epoch) or resignation — Kafka's Partition.handleAlterPartitionError.
   */
  private pending: { request: AlterPartitionRequest; sentAtMs: number; awaitingMetadata: boolean } | null = null;
  /**
   * Set when the controller rejected our proposal at this partition epoch: wait for metadata (a
   * new partition epoch or a change in fenced brokers), or at most alterPartitionRetryMs.
   */
  private blockedAtPartitionEpoch: number | null = null;
  private blockedSinceMs = 0;
  private readonly progress = new Map<ReplicaId, MutableProgress>();
  private hw: number;
  /** Offset where this leader's epoch starts in its log: a follower must reach it to join the ISR. */
  private readonly epochStartOffset: number;
  private ineligible = new Set<ReplicaId>();
  /** Brokers not alive in metadata (fenced or unregistered): the low watermark leaves them out. */
  private fenced = new Set<ReplicaId>();
  /** Sorted by lastOffset ascending. */
  private waiters: Waiter[] = [];
  private deleteWaiters: DeleteWaiter[] = [];
  private resigned = false;
  // Pending outputs.
  private outHw: number | null = null;
  private outAlter: AlterPartitionRequest | null = null;
  private outCompleted: ProduceCompletion[] = [];
  private outDeleted: DeleteRecordsCompletion[] = [];

  constructor(init: PartitionLeaderInit) {
    const s = init.state;
    invariant(s.leader === init.localReplicaId, `leader init for ${init.localReplicaId} but metadata names ${String(s.leader)}`);
    invariant(s.isr.includes(init.localReplicaId), 'a leader must be in the ISR it is elected from');
    this.localReplicaId = init.localReplicaId;
    this.leaderEpoch = s.leaderEpoch;
    this._partitionEpoch = s.partitionEpoch;
    this.replicas = [...s.replicas];
    this.committed = canonicalIsr(s.isr);
    this._config = replicationConfig(init.config);
    this.log = init.log;
    this.hw = Math.max(this.log.logStartOffset, Math.min(init.highWatermark, this.log.logEndOffset));
    this.epochStartOffset = this.log.logEndOffset;
    for (const r of this.replicas) {
      if (r === this.localReplicaId) continue;
      // ISR members get a full lag window from now (Kafka's rule on becoming leader).
      this.progress.set(r, {
        replicaId: r,
        logEndOffset: -1,
        matchedDurableOffset: -1,
        lastCaughtUpTimeMs: this.committed.includes(r) ? init.nowMs : -Infinity,
        lastFetchTimeMs: init.nowMs,
        lastFetchLeaderLogEndOffset: -1,
        brokerEpoch: -1,
        // Unknown until it fetches in this term (Kafka's resetReplicaState for a new leader):
        // until then the low watermark cannot pass -1.
        logStartOffset: -1,
      });
    }
    this.maybeAdvanceHighWatermark();
  }

  // -------------------------------------------------------------------------------------------
  // queries

  get highWatermark(): number {
    return this.hw;
  }

  get partitionEpoch(): number {
    return this._partitionEpoch;
  }

  /** The ISR as last committed by the controller (what min.insync.replicas is checked against). */
  get isr(): readonly ReplicaId[] {
    return this.committed;
  }

  /** The ISR the high watermark is computed over (KIP-497). */
  get maximalIsr(): readonly ReplicaId[] {
    return this.pending === null ? this.committed : canonicalIsr([...this.committed, ...this.pending.request.newIsr]);
  }

  get pendingAlterPartition(): AlterPartitionRequest | null {
    return this.pending?.request ?? null;
  }

  get pendingProduceCount(): number {
    return this.waiters.length;
  }

  get pendingDeleteRecordsCount(): number {
    return this.deleteWaiters.length;
  }

  /**
   * Kafka's `Partition.lowWatermarkIfLeader`: the smallest log start offset over this replica and
   * every follower on a live (not fenced) broker, in the ISR or not, as each reported in its last
   * accepted fetch (-1 for one that has not fetched in this term). No replica that could still
   * be elected holds a record below it, so DeleteRecords is answered only once it reaches the
   * deleted offset: before that, a failover could bring the deleted records back.
   */
  get lowWatermark(): number {
    let lw = this.log.logStartOffset;
    for (const p of this.progress.values()) if (!this.fenced.has(p.replicaId)) lw = Math.min(lw, p.logStartOffset);
    return lw;
  }

  /** Where this leader's epoch starts in its log. */
  get leaderEpochStartOffset(): number {
    return this.epochStartOffset;
  }

  followerProgress(id: ReplicaId): FollowerProgress | undefined {
    const p = this.progress.get(id);
    return p === undefined ? undefined : { ...p };
  }

  /**
   * May a produce with these acks be appended now? acks=all is refused while the committed ISR
   * is smaller than min.insync.replicas (Jepsen 2013, SCENARIOS.md 1), and when too many acks=all
   * produces already wait.
   */
  checkProduce(acks: Acks): null | Extract<ErrorName, 'NOT_ENOUGH_REPLICAS' | 'NOT_LEADER_OR_FOLLOWER' | 'THROTTLING_QUOTA_EXCEEDED'> {
    if (this.resigned) return 'NOT_LEADER_OR_FOLLOWER';
    if (acks !== -1) return null;
    if (this.committed.length < this.config.minInsyncReplicas) return 'NOT_ENOUGH_REPLICAS';
    if (this.waiters.length >= this.config.maxPendingProduces) return 'THROTTLING_QUOTA_EXCEEDED';
    return null;
  }

  /** May a DeleteRecords wait for the low watermark now? Waiters are bounded like produce waiters. */
  checkDeleteRecords(): null | Extract<ErrorName, 'NOT_LEADER_OR_FOLLOWER' | 'THROTTLING_QUOTA_EXCEEDED'> {
    if (this.resigned) return 'NOT_LEADER_OR_FOLLOWER';
    if (this.deleteWaiters.length >= this.config.maxPendingProduces) return 'THROTTLING_QUOTA_EXCEEDED';
    return null;
  }

  // -------------------------------------------------------------------------------------------
  // inputs

  /**
   * Registers a DeleteRecords whose target `offset` the driver has already made our log start
   * (Kafka's deleteRecordsOnLeader). It completes when the low watermark reaches `offset` (at
   * once if it already has), fails with REQUEST_TIMED_OUT at `deadlineMs` and with
   * NOT_LEADER_OR_FOLLOWER on resignation (Kafka's DelayedDeleteRecords).
   */
  addDeleteRecordsWaiter(requestId: number, offset: number, deadlineMs: number): void {
    invariant(!this.resigned, 'DeleteRecords waiter added to a resigned leader');
    invariant(offset <= this.log.logStartOffset, `DeleteRecords waiter for offset ${offset} above the log start ${this.log.logStartOffset}: move the log start first`);
    invariant(this.deleteWaiters.length < this.config.maxPendingProduces, 'checkDeleteRecords() must bound pending DeleteRecords');
    const lw = this.lowWatermark;
    if (lw >= offset) this.outDeleted.push({ requestId, error: null, lowWatermark: lw });
    else this.deleteWaiters.push({ requestId, offset, deadlineMs, lowWatermarkAtRequest: lw });
  }

  /**
   * Brokers that are not alive in metadata (fenced, or not registered): the low watermark does
   * not wait for their replicas, as Kafka's counts only replicas on alive brokers. A fenced
   * broker has left the ISR (unless it is the last member, which the leader is not), so it cannot
   * be elected before it fetches from a leader again and adopts its log start.
   */
  setFencedReplicas(ids: Iterable<ReplicaId>): void {
    const next = new Set(ids);
    const changed = next.size !== this.fenced.size || [...next].some((r) => !this.fenced.has(r));
    this.fenced = next;
    if (changed && !this.resigned) this.completeDeleteWaiters();
  }

  /**
   * Registers an acks=all produce whose batch ends at `lastOffset` (already in the local log, or
   * a duplicate answered with its original offsets). It completes when HW > lastOffset, or fails
   * at `deadlineMs`. A waiter that is already satisfied completes at once.
   */
  addProduceWaiter(requestId: number, lastOffset: number, deadlineMs: number): void {
    invariant(!this.resigned, 'produce waiter added to a resigned leader');
    invariant(lastOffset < this.log.logEndOffset, `produce waiter for offset ${lastOffset} beyond the log end ${this.log.logEndOffset}`);
    invariant(this.waiters.length < this.config.maxPendingProduces, 'checkProduce() must bound pending produces');
    if (lastOffset < this.hw) {
      this.outCompleted.push(this.completionFor(requestId));
      return;
    }
    const w: Waiter = { requestId, lastOffset, deadlineMs };
    let i = this.waiters.length;
    while (i > 0 && (this.waiters[i - 1] as Waiter).lastOffset > lastOffset) i--;
    this.waiters.splice(i, 0, w);
  }

  /** The local log grew or became more durable (after an append or an fsync). */
  onLocalLogChanged(): void {
    if (this.resigned) return;
    this.maybeAdvanceHighWatermark();
    this.completeDeleteWaiters();
  }

  /**
   * Answers a follower's fetch (see FollowerFetchDecision) and updates what we know of it:
   * its offsets, whether it is caught up, whether it may rejoin the ISR, the high watermark.
   */
  handleFollowerFetch(req: FollowerFetchRequest, nowMs: number): FollowerFetchDecision {
    const logStartOffset = this.log.logStartOffset;
    if (this.resigned) return { kind: 'error', error: 'NOT_LEADER_OR_FOLLOWER', leaderEpoch: this.leaderEpoch, logStartOffset };
    // KIP-320 fencing: an older epoch is a follower that missed a leader change; a newer one means
    // the controller moved on and we have not heard yet (the follower backs off and retries).
    if (req.currentLeaderEpoch < this.leaderEpoch) return { kind: 'error', error: 'FENCED_LEADER_EPOCH', leaderEpoch: this.leaderEpoch, logStartOffset };
    if (req.currentLeaderEpoch > this.leaderEpoch) return { kind: 'error', error: 'UNKNOWN_LEADER_EPOCH', leaderEpoch: this.leaderEpoch, logStartOffset };
    const p = this.progress.get(req.replicaId);
    if (p === undefined) return { kind: 'error', error: 'NOT_LEADER_OR_FOLLOWER', leaderEpoch: this.leaderEpoch, logStartOffset };
    // Divergence (KIP-101/KIP-279/KIP-595): the follower's last epoch must exist here and extend
    // at least to its fetch offset; otherwise tell it where that epoch ends in our log.
    if (req.lastFetchedEpoch >= 0) {
      const eo = this.log.endOffsetForEpoch(req.lastFetchedEpoch);
      if (eo.epoch < req.lastFetchedEpoch || eo.endOffset < req.fetchOffset) {
        return { kind: 'diverging', divergingEpoch: eo, highWatermark: this.hw, logStartOffset };
      }
    }
    const leo = this.log.logEndOffset;
    if (req.fetchOffset < logStartOffset || req.fetchOffset > leo) {
      // With our log end, so a follower past it (an unclean election) can truncate to it.
      return { kind: 'error', error: 'OFFSET_OUT_OF_RANGE', leaderEpoch: this.leaderEpoch, logStartOffset, logEndOffset: leo };
    }
    // Accepted: the follower's log up to fetchOffset equals ours.
    const matched = Math.min(req.fetchOffset, Math.max(req.countableEndOffset, -1));
    // Kafka's Replica.updateFetchState, on durable offsets: caught up if it reached our log end
    // now, or our log end as of its previous fetch (then it was caught up at that fetch's time).
    if (matched >= leo) p.lastCaughtUpTimeMs = Math.max(p.lastCaughtUpTimeMs, nowMs);
    else if (matched >= p.lastFetchLeaderLogEndOffset && p.lastFetchLeaderLogEndOffset >= 0) p.lastCaughtUpTimeMs = Math.max(p.lastCaughtUpTimeMs, p.lastFetchTimeMs);
    p.lastFetchLeaderLogEndOffset = leo;
    p.lastFetchTimeMs = nowMs;
    p.logEndOffset = req.fetchOffset;
    p.matchedDurableOffset = matched;
    p.brokerEpoch = req.brokerEpoch ?? -1;
    // Kafka takes the latest report, not the largest: a follower that restarted with less (its
    // disk replaced) holds those records again. It cannot start past its own log end.
    p.logStartOffset = Math.min(req.logStartOffset, req.fetchOffset);
    this.maybeExpandIsr(p, nowMs);
    this.maybeAdvanceHighWatermark();
    this.completeDeleteWaiters();
    return { kind: 'read', fetchOffset: req.fetchOffset, highWatermark: this.hw, logStartOffset };
  }

  /**
   * Checks a consumer's fetch: leader epoch fencing (KIP-320: FENCED_LEADER_EPOCH if the
   * consumer's epoch is older, UNKNOWN_LEADER_EPOCH if newer), range (OFFSET_OUT_OF_RANGE outside
   * [log start, log end]), and bounds the read by the high watermark. An offset between the HW
   * and the log end is valid and reads nothing yet.
   */
  handleConsumerFetch(req: ConsumerFetchRequest): ConsumerFetchDecision {
    const logStartOffset = this.log.logStartOffset;
    if (this.resigned) return { kind: 'error', error: 'NOT_LEADER_OR_FOLLOWER', leaderEpoch: this.leaderEpoch, logStartOffset };
    if (req.currentLeaderEpoch >= 0 && req.currentLeaderEpoch < this.leaderEpoch) return { kind: 'error', error: 'FENCED_LEADER_EPOCH', leaderEpoch: this.leaderEpoch, logStartOffset };
    if (req.currentLeaderEpoch > this.leaderEpoch) return { kind: 'error', error: 'UNKNOWN_LEADER_EPOCH', leaderEpoch: this.leaderEpoch, logStartOffset };
    if (req.fetchOffset < logStartOffset || req.fetchOffset > this.log.logEndOffset) return { kind: 'error', error: 'OFFSET_OUT_OF_RANGE', leaderEpoch: this.leaderEpoch, logStartOffset };
    return { kind: 'read', fetchOffset: req.fetchOffset, maxOffset: this.hw, highWatermark: this.hw, logStartOffset };
  }

  /** Periodic work: ISR shrink after replica.lag.time.max.ms, produce timeouts, AlterPartition retry. */
  tick(nowMs: number): void {
    if (this.resigned) return;
    if (this.waiters.some((w) => w.deadlineMs <= nowMs)) {
      // One pass (waiters are sorted by offset, not deadline).
      const kept: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.deadlineMs <= nowMs) this.outCompleted.push({ requestId: w.requestId, error: 'REQUEST_TIMED_OUT' });
        else kept.push(w);
      }
      this.waiters = kept;
    }
    if (this.deleteWaiters.some((w) => w.deadlineMs <= nowMs)) {
      const kept: DeleteWaiter[] = [];
      for (const w of this.deleteWaiters) {
        if (w.deadlineMs <= nowMs) this.outDeleted.push({ requestId: w.requestId, error: 'REQUEST_TIMED_OUT', lowWatermark: w.lowWatermarkAtRequest });
        else kept.push(w);
      }
      this.deleteWaiters = kept;
    }
    if (this.pending !== null) {
      if (!this.pending.awaitingMetadata && nowMs - this.pending.sentAtMs >= this.config.alterPartitionRetryMs) {
        this.pending.sentAtMs = nowMs;
        this.outAlter = this.pending.request;
      }
      return;
    }
    if (this.blockedAtPartitionEpoch !== null && nowMs - this.blockedSinceMs >= this.config.alterPartitionRetryMs) this.blockedAtPartitionEpoch = null;
    const lagging = this.committed.filter((r) => {
      if (r === this.localReplicaId) return false;
      const p = this.progress.get(r);
      return p === undefined || nowMs - p.lastCaughtUpTimeMs > this.config.replicaLagTimeMaxMs;
    });
    if (lagging.length > 0) this.propose(this.committed.filter((r) => !lagging.includes(r)), nowMs);
  }

  /**
   * The controller answered `request`. Only the answer to the proposal still pending counts: a
   * late answer to an earlier proposal must not clear a newer one, or the HW would stop counting
   * a member the controller may be adding right now.
   */
  onAlterPartitionResponse(request: AlterPartitionRequest, resp: AlterPartitionResponse): void {
    if (this.resigned || this.pending === null) return;
    const p = this.pending.request;
    if (request.leaderEpoch !== p.leaderEpoch || request.partitionEpoch !== p.partitionEpoch || !sameIds(request.newIsr, p.newIsr)) return;
    if (resp.error === 'INELIGIBLE_REPLICA' || resp.error === 'INVALID_REQUEST') {
      // The controller checked our partition epoch first, so it says: current epoch, proposal
      // not applied. Only then is it safe to fall back to the committed ISR. Do not propose again
      // until metadata moves, the fenced set changes, or the retry interval passes.
      this.blockedAtPartitionEpoch = this._partitionEpoch;
      this.blockedSinceMs = this.pending.sentAtMs;
      this.pending = null;
      this.maybeAdvanceHighWatermark();
      return;
    }
    if (resp.error !== null) {
      // INVALID_UPDATE_VERSION, FENCED_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER: an earlier copy of
      // this very proposal may have been applied (its answer lost, this one a retry's). Keep
      // counting it until metadata tells the committed ISR.
      this.pending.awaitingMetadata = true;
      return;
    }
    if (resp.leaderEpoch !== this.leaderEpoch || resp.partitionEpoch <= this._partitionEpoch) return; // stale answer
    this.commitIsr(resp.isr, resp.partitionEpoch);
  }

  get config(): ReplicationConfig {
    return this._config;
  }

  /**
   * A new `min.insync.replicas` (IncrementalAlterConfigs) applies from the next acks=all append
   * and completion on, as Kafka reads it on every append: raising it on a live leader must not
   * keep acknowledging writes with fewer replicas in sync.
   */
  setMinInsyncReplicas(minInsyncReplicas: number): void {
    if (minInsyncReplicas !== this._config.minInsyncReplicas) this._config = replicationConfig({ ...this._config, minInsyncReplicas });
  }

  /**
   * Metadata from the controller for this partition. The same leader epoch with a newer
   * partition epoch carries a committed ISR (ours, or the controller's removal of a fenced
   * broker). A newer leader epoch means we are no longer leader: the driver must `resign()`.
   */
  onPartitionState(state: PartitionState): void {
    if (this.resigned || state.leaderEpoch !== this.leaderEpoch || state.partitionEpoch <= this._partitionEpoch) return;
    this.commitIsr(state.isr, state.partitionEpoch);
  }

  /** Brokers the controller fenced or that are shutting down may not join the ISR (KIP-841). */
  setIneligibleReplicas(ids: Iterable<ReplicaId>): void {
    const next = new Set(ids);
    const changed = next.size !== this.ineligible.size || [...next].some((r) => !this.ineligible.has(r));
    this.ineligible = next;
    // An INELIGIBLE_REPLICA rejection may be obsolete now.
    if (changed) this.blockedAtPartitionEpoch = null;
  }

  /**
   * A new leader epoch with this broker still the leader (a reassignment changed the replicas):
   * ends this core like resign(), but returns its waiting produces and DeleteRecords for the new
   * epoch's core to take over (adoptWaiters) instead of failing them. Kafka's delayed produces
   * keep waiting across makeLeader while the broker stays leader; failing them made producers
   * retry every acks=all batch in flight at each reassignment step.
   */
  handOver(): LeaderWaiters {
    invariant(!this.resigned, 'handOver() of a resigned leader');
    const carried: LeaderWaiters = { produces: this.waiters, deletes: this.deleteWaiters };
    this.waiters = [];
    this.deleteWaiters = [];
    this.resign();
    return carried;
  }

  /**
   * Takes over the previous epoch's waiters (see handOver): each completes under this epoch's
   * high watermark and ISR, or at its original deadline. A produce whose batch is no longer in
   * the log (never the case while the same broker stays leader) fails NOT_LEADER_OR_FOLLOWER.
   */
  adoptWaiters(carried: LeaderWaiters): void {
    invariant(!this.resigned, 'waiters adopted by a resigned leader');
    for (const w of carried.produces) {
      if (w.lastOffset >= this.log.logEndOffset) this.outCompleted.push({ requestId: w.requestId, error: 'NOT_LEADER_OR_FOLLOWER' });
      else if (w.lastOffset < this.hw) this.outCompleted.push(this.completionFor(w.requestId));
      else {
        let i = this.waiters.length;
        while (i > 0 && (this.waiters[i - 1] as Waiter).lastOffset > w.lastOffset) i--;
        this.waiters.splice(i, 0, w);
      }
    }
    for (const d of carried.deletes) {
      if (d.offset > this.log.logStartOffset) this.outDeleted.push({ requestId: d.requestId, error: 'NOT_LEADER_OR_FOLLOWER', lowWatermark: -1 });
      else this.deleteWaiters.push(d);
    }
    this.completeDeleteWaiters();
  }

  /** Leadership ended: every waiting produce and DeleteRecords fails with NOT_LEADER_OR_FOLLOWER. */
  resign(): void {
    if (this.resigned) return;
    this.resigned = true;
    for (const w of this.waiters) this.outCompleted.push({ requestId: w.requestId, error: 'NOT_LEADER_OR_FOLLOWER' });
    this.waiters = [];
    for (const w of this.deleteWaiters) this.outDeleted.push({ requestId: w.requestId, error: 'NOT_LEADER_OR_FOLLOWER', lowWatermark: -1 });
    this.deleteWaiters = [];
    this.pending = null;
  }

  get isResigned(): boolean {
    return this.resigned;
  }

  /** Hands out (and clears) the outputs accumulated since the last call. */
  takeReady(): LeaderReady {
    const r: LeaderReady = { highWatermark: this.outHw, alterPartition: this.outAlter, completedProduces: this.outCompleted, completedDeleteRecords: this.outDeleted };
    this.outHw = null;
    this.outAlter = null;
    this.outCompleted = [];
    this.outDeleted = [];
    return r;
  }

  // -------------------------------------------------------------------------------------------
  // internals

  private commitIsr(isr: readonly ReplicaId[], partitionEpoch: number): void {
    invariant(isr.includes(this.localReplicaId), `committed ISR ${isr.join(',')} lacks leader ${this.localReplicaId} in the same leader epoch`);
    this.committed = canonicalIsr(isr);
    this._partitionEpoch = partitionEpoch;
    this.pending = null;
    this.blockedAtPartitionEpoch = null;
    // A shrink that committed can let the HW move; a committed expansion cannot lower it.
    this.maybeAdvanceHighWatermark();
  }

  private propose(newIsr: readonly ReplicaId[], nowMs: number): void {
    if (this.blockedAtPartitionEpoch === this._partitionEpoch) return;
    const isr = canonicalIsr(newIsr);
    invariant(isr.includes(this.localReplicaId), 'a proposed ISR must contain the leader');
    if (sameIds(isr, this.committed)) return;
    const newIsrBrokerEpochs = isr.flatMap((replicaId) => {
      const brokerEpoch = replicaId === this.localReplicaId ? -1 : (this.progress.get(replicaId)?.brokerEpoch ?? -1);
      return brokerEpoch >= 0 ? [{ replicaId, brokerEpoch }] : [];
    });
    const request: AlterPartitionRequest = { leaderId: this.localReplicaId, leaderEpoch: this.leaderEpoch, partitionEpoch: this._partitionEpoch, newIsr: isr, ...(newIsrBrokerEpochs.length > 0 ? { newIsrBrokerEpochs } : {}) };
    this.pending = { request, sentAtMs: nowMs, awaitingMetadata: false };
    this.outAlter = request;
    // An expansion counts the new member at once (it may be elected as soon as it commits).
    this.maybeAdvanceHighWatermark();
  }

  /**
   * A follower rejoins once its durable, matching offset reaches the high watermark and the
   * start of our epoch (it then holds everything acknowledged), unless fenced or shutting down.
   */
  private maybeExpandIsr(p: MutableProgress, nowMs: number): void {
    if (this.pending !== null || this.committed.includes(p.replicaId) || this.ineligible.has(p.replicaId)) return;
    if (p.matchedDurableOffset < this.hw || p.matchedDurableOffset < this.epochStartOffset) return;
    this.propose([...this.committed, p.replicaId], nowMs);
  }

  private maybeAdvanceHighWatermark(): void {
    let min = this.log.countableEndOffset;
    for (const r of this.maximalIsr) {
      if (r === this.localReplicaId) continue;
      const p = this.progress.get(r);
      min = Math.min(min, p === undefined ? -1 : p.matchedDurableOffset);
    }
    const next = Math.min(min, this.log.logEndOffset);
    if (next <= this.hw) return;
    this.hw = next;
    this.outHw = next;
    let n = 0;
    while (n < this.waiters.length && (this.waiters[n] as Waiter).lastOffset < next) n++;
    for (const w of this.waiters.splice(0, n)) this.outCompleted.push(this.completionFor(w.requestId));
  }

  /** Completes the DeleteRecords waiters the low watermark has reached (at that low watermark). */
  private completeDeleteWaiters(): void {
    if (this.deleteWaiters.length === 0) return;
    const lw = this.lowWatermark;
    const kept: DeleteWaiter[] = [];
    for (const w of this.deleteWaiters) {
      if (w.offset <= lw) this.outDeleted.push({ requestId: w.requestId, error: null, lowWatermark: lw });
      else kept.push(w);
    }
    this.deleteWaiters = kept;
  }

  /** Kafka: a batch below the HW is acknowledged, with an error if the ISR is below min.insync.replicas. */
  private completionFor(requestId: number): ProduceCompletion {
    return { requestId, error: this.committed.length < this.config.minInsyncReplicas ? 'NOT_ENOUGH_REPLICAS_AFTER_APPEND' : null };
  }
}
